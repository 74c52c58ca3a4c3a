"""`popmusicnet studio [FILE]`: open the studio window (the default without a subcommand)."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.errors import UserInputError

NAME = "studio"
HELP = "open the studio window (a project .pmn or a MIDI file optional)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="project (.pmn) or MIDI file to open")


def run(args: argparse.Namespace) -> int:
    from studio.app.main import check_display

    path = getattr(args, "file", None)
    if path is not None and not Path(path).is_file():
        raise UserInputError(f"{path}: no such file")
    check_display()
    from studio.app.main import run as run_studio

    return run_studio(path)
