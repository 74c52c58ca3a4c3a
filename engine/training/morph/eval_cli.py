"""`popmusicnet eval morph`: measure the installed morph model (found by the eval dispatcher).
No torch at module level."""

from __future__ import annotations

import argparse

KIND = "morph"
HELP = "morph model: reconstruction F1, smoothness, decode latency (docs/RESULTS.md)"


def register(p: argparse.ArgumentParser) -> None:
    from engine.training.morph.evaluate import add_eval_arguments

    add_eval_arguments(p)


def run(args: argparse.Namespace) -> int:
    from engine.training.morph.evaluate import run_eval

    return run_eval(args)
