"""`popmusicnet eval continuation`: found by studio/cli/commands/eval.py; the measuring code lives in
engine/training/continuation/evaluate.py (numpy + ONNX Runtime, plus the corpus loaders for the test split).
No heavy imports at module level."""

from __future__ import annotations

import argparse

KIND = "continuation"
HELP = "LSTM continuation: Hamming-like accuracy and note F1 vs repeat-last-bar; JSB-like NLL"


def register(p: argparse.ArgumentParser) -> None:
    from engine.training.continuation.evaluate import add_eval_arguments

    add_eval_arguments(p)


def run_cli(args: argparse.Namespace) -> int:
    from engine.training.continuation.evaluate import run_eval

    return run_eval(args)
