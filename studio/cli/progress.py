"""A progress line on stderr for long commands: redrawn in place on a terminal, one line per
10 % otherwise (when asked with --progress), nothing when neither."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, enabled: bool | None = None, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = self.tty if enabled is None else enabled
        self.label = label
        self._last = -1
        self._t0 = time.perf_counter()

    def __call__(self, fraction: float) -> None:
        if not self.enabled:
            return
        pct = int(max(0.0, min(fraction, 1.0)) * 100)
        step = 1 if self.tty else 10
        if pct // step == self._last // step and pct < 100:
            return
        if pct == self._last:
            return
        self._last = pct
        elapsed = time.perf_counter() - self._t0
        line = f"{self.label}: {pct:3d}% ({elapsed:.1f} s)"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if pct >= 100 else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def add_progress_option(parser) -> None:
    parser.add_argument("--progress", action="store_true", default=None,
                        help="show progress on stderr even when it is not a terminal")
