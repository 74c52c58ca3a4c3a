"""`popmusicnet eval continuation`: held-out bar metrics vs "repeat the last bar" and the
JSB-like figure (found by the eval dispatcher). No torch at module level."""

from __future__ import annotations

import argparse

KIND = "continuation"
HELP = "LSTM continuation: Hamming-like accuracy and note F1 vs repeat-last-bar; JSB-like NLL"


def register(p: argparse.ArgumentParser) -> None:
    from engine.training.continuation.evaluate import add_eval_arguments

    add_eval_arguments(p)


def run(args: argparse.Namespace) -> int:
    from engine.training.continuation.evaluate import run_eval

    return run_eval(args)
