"""`popmusicnet train band`: the band model's chord networks (found by studio/cli/commands/train.py).

    popmusicnet train band --epochs 30 --hidden 96 --dropout 0.3 --threads 1 --seed 0 --out DIR

No torch at module level (the CLI's parser is built without it).
"""

from __future__ import annotations

import argparse

KIND = "band"
HELP = "train the band model's chord networks (melody -> chords) on the chordified chorales"


def register(p: argparse.ArgumentParser) -> None:
    import importlib

    importlib.import_module("engine.training.band.options").add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from engine.errors import UserInputError
    from engine.training.band.train import train

    if args.epochs < 1 or args.minutes <= 0 or args.hidden < 4 or args.threads < 1:
        raise UserInputError("--epochs, --threads must be at least 1, --hidden at least 4 and "
                             "--minutes positive")
    try:
        path = train(args)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    from engine.fileio import final_name

    print(f"wrote {final_name(path)}")
    return 0
