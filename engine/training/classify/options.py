"""Options that both parsers of the audio classifier's training take (`popmusicnet train
classifier --arch audio` and `python -m engine.training.classify.train_audio`). No heavy imports:
the CLI's parser is built from it."""

from __future__ import annotations

import argparse

#: `--programs` values; engine.training.classify.audio_data.PROGRAM_CHOICES maps them to programs.
PROGRAM_CHOICE_NAMES = ("default", "wide")


def add_render_options(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """--programs, --other-soundfont and --init; `prefix` starts each help text (e.g. "audio: "
    in a parser shared with the MIDI classifiers)."""
    p.add_argument("--programs", choices=PROGRAM_CHOICE_NAMES, default="default",
                   help=f"{prefix}GM programs of the training renders: default (14 classical and "
                        "folk instruments) or wide (every melodic program, 0-111)")
    p.add_argument("--other-soundfont", type=float, default=0.0, metavar="SHARE",
                   help=f"{prefix}share of the training renders made with an installed soundfont "
                        "other than the finder's (default 0)")
    p.add_argument("--init", default=None, metavar="MODEL",
                   help=f"{prefix}start from this audio classifier (name or card path) instead "
                        "of random weights")
