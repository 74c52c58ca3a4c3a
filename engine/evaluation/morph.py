"""`popmusicnet eval morph`: found by studio/cli/commands/eval.py; the measuring code lives in
engine/training/morph/evaluate.py (numpy + ONNX Runtime, plus the corpus loaders for the test split).
No heavy imports at module level."""

from __future__ import annotations

import argparse

KIND = "morph"
HELP = "morph model: reconstruction F1, smoothness, decode latency (docs/RESULTS.md)"


def register(p: argparse.ArgumentParser) -> None:
    from engine.training.morph.evaluate import add_eval_arguments

    add_eval_arguments(p)


def run_cli(args: argparse.Namespace) -> int:
    from engine.training.morph.evaluate import run_eval

    return run_eval(args)
