"""What every command that reads a MIDI file shares: the strict/lenient choice, and messages
that name the file.

Reading is lenient by default: overlapping, zero-length and unterminated notes (which every DAW
plays) are repaired with a warning on stderr; `--strict` refuses such a file instead. `--lenient`
is still accepted (it is the default).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path


def add_reading_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--strict", action="store_true",
                       help="refuse MIDI files with overlapping, zero-length or unterminated "
                            "notes instead of repairing them (with a warning)")
    group.add_argument("--lenient", action="store_true", help=argparse.SUPPRESS)


def lenient(args: argparse.Namespace) -> bool:
    return not getattr(args, "strict", False)


@contextlib.contextmanager
def about(path: str | Path | None) -> Iterator[None]:
    """Errors about the song raised inside name `path` (the input being worked on) when they do
    not already: "the song has no melody notes" becomes "tune.mid: the song has ...". Errors
    that name their own culprit (a file, a model, a soundfont, a device) pass unchanged."""
    from engine.errors import UserInputError

    try:
        yield
    except UserInputError as exc:
        if type(exc) is not UserInputError or path is None or str(path) in str(exc):
            raise
        raise UserInputError(f"{path}: {exc}") from None
