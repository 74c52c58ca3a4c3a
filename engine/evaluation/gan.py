"""`popmusicnet eval gan`: found by studio/cli/commands/eval.py; the measuring code lives in
engine/training/gan/evaluate.py (numpy + ONNX Runtime, plus the corpus loaders for the test split).
No heavy imports at module level."""

from __future__ import annotations

import argparse

KIND = "gan"
HELP = "GAN bars: Liu & Huo Table 1 (EB, UPC, QN) on 2,000 bars (docs/RESULTS.md)"


def register(p: argparse.ArgumentParser) -> None:
    from engine.training.gan.evaluate import add_eval_arguments

    add_eval_arguments(p)


def run_cli(args: argparse.Namespace) -> int:
    from engine.training.gan.evaluate import run_eval

    return run_eval(args)
