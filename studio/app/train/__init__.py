"""Train: run `popmusicnet train KIND ...` as a child process (QProcess), plot its JSON-line
losses live with progress and ETA, and make the new model selectable when it finishes."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path



def kinds() -> tuple[str, ...]:
    """The training kinds the CLI offers (`popmusicnet train KIND`), found the way it finds them."""
    from studio.cli.commands.train import kind_modules

    return tuple(m.KIND for m in kind_modules())


# The stages a kind's training goes through, in order (its JSON lines name them): the progress
# bar shows the whole run, not one stage at a time.
STAGES = {"accompanist": ("vae", "melody_rnn", "acc_rnn")}
DATASETS = ("corpus:bach", "folder:", "lpd5:")


def train_command(kind: str, *, name: str, epochs: int, device: str, models_dir: Path,
                  work_dir: Path, data: str = "", extra: str = "") -> list[str]:
    """The argv (after the Python executable) of a training run that installs its model where
    the studio finds it (the user models folder)."""
    args = ["-m", "studio.launcher", "train", kind, "--epochs", str(epochs), "--device", device,
            "--name", name]
    if kind == "accompanist":
        # The accompanist keeps its checkpoint in --out and copies the model with --install.
        args += ["--out", str(work_dir / name), "--install"]
        if data:
            args += ["--data", data]
    else:
        args += ["--out", str(models_dir)]
    return args + shlex.split(extra)


def python() -> str:
    return sys.executable


@dataclass
class ProgressState:
    """What the JSON lines said so far."""

    points: list[tuple[str, float, float]] = field(default_factory=list)  # series, x, y
    stage: str = ""
    epoch: int = 0
    epochs: int = 0
    eta_seconds: float | None = None
    seconds: float = 0.0
    n_epochs_seen: int = 0
    last_event: str = ""
    stages: tuple[str, ...] = ()  # the kind's stages, when known (STAGES)
    seen_stages: list[str] = field(default_factory=list)

    def overall(self) -> float | None:
        """Fraction of the whole run done (0..1), or None before the first epoch ends."""
        if not self.epochs or not self.stage:
            return None
        order = list(self.stages) + [s for s in self.seen_stages if s not in self.stages]
        n = max(len(order), 1)
        index = order.index(self.stage) if self.stage in order else 0
        return min(1.0, (index + (self.epoch + 1) / self.epochs) / n)

    def feed(self, line: str) -> bool:
        """Parse one stdout line; False if it is not a JSON progress object."""
        line = line.strip()
        if not line.startswith("{"):
            return False
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            return False
        if not isinstance(rec, dict):
            return False
        self.last_event = str(rec.get("event", ""))
        self.seconds = float(rec.get("seconds") or self.seconds)
        if "stage" in rec and rec["stage"]:
            self.stage = str(rec["stage"])
            if "epoch" in rec and self.stage not in self.seen_stages:
                self.seen_stages.append(self.stage)
        if rec.get("eta_seconds") is not None:
            self.eta_seconds = float(rec["eta_seconds"])
        if "epoch" in rec and "losses" in rec:
            self.epoch = int(rec["epoch"])
            self.epochs = int(rec.get("epochs") or self.epochs)
            self.n_epochs_seen += 1
            for key, value in (rec.get("losses") or {}).items():
                if isinstance(value, (int, float)):
                    label = f"{self.stage} {key}" if self.stage else key
                    self.points.append((label, float(self.n_epochs_seen), float(value)))
        return True

    def describe(self) -> str:
        parts = []
        if self.stage:
            order = list(self.stages) or self.seen_stages
            parts.append(f"stage {order.index(self.stage) + 1}/{len(order)} {self.stage}"
                         if self.stage in order and len(order) > 1 else self.stage)
        if self.epochs:
            parts.append(f"epoch {self.epoch + 1}/{self.epochs}")
        if self.eta_seconds is not None:
            parts.append(f"ETA {format_seconds(self.eta_seconds)}")
        parts.append(f"elapsed {format_seconds(self.seconds)}")
        return ", ".join(parts)


def format_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}"
