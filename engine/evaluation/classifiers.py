"""`popmusicnet eval classifiers`: the style classifiers on held-out corpus pieces.

Balanced accuracy and confusion matrix per installed classifier (MIDI and audio), at piece
level, through ONNX Runtime, on the whole scores, their top parts and texture-changed copies
(folk tunes with chords, scores reduced to one line or to melody + bass), and for the audio model
timbre-changed renders (GM programs its training never used, a second installed soundfont);
writes the "classifiers" section of docs/RESULTS.md. The work is in
engine.training.classify.evaluate (no torch: it reuses the training split and data code).
"""

from __future__ import annotations

import argparse

KIND = "classifiers"
HELP = "style classifiers: balanced accuracy and confusion matrix on held-out pieces"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", default=None, metavar="NAME",
                   help="evaluate only this classifier (repeatable; default: all installed)")
    p.add_argument("--no-write", action="store_true",
                   help="print only; leave docs/RESULTS.md alone")
    p.add_argument("--no-audio-ood", action="store_true",
                   help="skip the audio model's texture- and timbre-changed renders (minutes "
                        "of rendering)")


def run_cli(args: argparse.Namespace) -> int:
    from engine.training.classify.evaluate import run

    return run(names=args.model, write=not args.no_write,
               audio_ood=not getattr(args, "no_audio_ood", False))
