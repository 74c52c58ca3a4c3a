"""What the `train` dispatcher needs from a kind whose module `train.py` defines
`add_arguments(parser)` and `train(args) -> Path` (the generators): one definition, not a copy
per kind. No torch at import time: the CLI's parser is built without it."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable


def epochs_and_minutes_kind(train_module: str) -> tuple[Callable, Callable]:
    """(register, run) for a kind trained by `train_module`, whose options include `--epochs`
    and `--minutes` (a wall-clock budget)."""

    def register(p: argparse.ArgumentParser) -> None:
        importlib.import_module(train_module).add_arguments(p)

    def run(args: argparse.Namespace) -> int:
        from engine.errors import UserInputError

        if args.epochs < 1 or args.minutes <= 0:
            raise UserInputError("--epochs must be at least 1 and --minutes positive")
        try:
            path = importlib.import_module(train_module).train(args)
        except ValueError as exc:  # no usable data for the options given
            raise UserInputError(str(exc)) from None
        from engine.fileio import final_name

        print(f"wrote {final_name(path)}")
        return 0

    return register, run
