"""`popmusicnet eval gan`: Table 1 of Liu & Huo for the installed GANs (found by the eval
dispatcher). No torch at module level."""

from __future__ import annotations

import argparse

KIND = "gan"
HELP = "GAN bars: Liu & Huo Table 1 (EB, UPC, QN) on 2,000 bars (docs/RESULTS.md)"


def register(p: argparse.ArgumentParser) -> None:
    from engine.training.gan.evaluate import add_eval_arguments

    add_eval_arguments(p)


def run(args: argparse.Namespace) -> int:
    from engine.training.gan.evaluate import run_eval

    return run_eval(args)
