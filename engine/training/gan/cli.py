"""`popmusicnet train gan`: options and entry (found by studio/cli/commands/train.py).
No torch at module level (the CLI's parser is built without it)."""

from __future__ import annotations

import argparse

KIND = "gan"
HELP = "train a bar GAN (CNN or Bi-LSTM generator vs a bi-LSTM discriminator)"


def register(p: argparse.ArgumentParser) -> None:
    from engine.training.gan.train import add_arguments

    add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from engine.errors import UserInputError
    from engine.training.gan.train import train

    if args.epochs < 1 or args.minutes <= 0:
        raise UserInputError("--epochs must be at least 1 and --minutes positive")
    try:
        path = train(args)
    except ValueError as exc:  # no usable data for the options given
        raise UserInputError(str(exc)) from None
    print(f"wrote {path}")
    return 0
