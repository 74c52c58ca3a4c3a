"""`popmusicnet train KIND ...`: train a model of one kind; a small dispatcher over kinds.

How kinds are found (so each team adds its own without editing this file): every package
`engine/training/<pkg>/` that has a `cli.py` module is a kind. That module defines

    KIND = "accompanist"            # the word after `train`
    HELP = "one line for --help"
    def register(parser): ...       # its options (argparse), no heavy imports
    def run(args) -> int: ...       # imports torch inside, trains, prints JSON lines

Modules are found with importlib.util.find_spec (nothing is imported until listed) and imported
only to build the parser: they must not import torch at module level, so `popmusicnet --help`
stays fast and works without the training extras. A kind whose module fails to import is a broken
install: the error stops the CLI instead of the kind quietly leaving the menu.

Every kind's `--out` folder is staged (see `run`): a kind writes into the folder it is given,
and the dispatcher installs it all or nothing.

Training output is one JSON object per line on stdout (stage, epoch, step, losses, seconds,
eta_seconds), which the studio's training tab reads. Every kind runs under
`torchrun --nproc_per_node=N -m studio train KIND ...` (DistributedDataParallel).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import pkgutil

NAME = "train"
HELP = "train a model (accompanist, ...) on a corpus or your own MIDI files"


def kind_modules():
    """Each training kind's CLI module (engine/training/<kind>/cli.py), by name."""
    import engine.training as training

    for info in sorted(pkgutil.iter_modules(training.__path__), key=lambda i: i.name):
        if not info.ispkg or info.name.startswith("_"):
            continue
        dotted = f"engine.training.{info.name}.cli"
        if importlib.util.find_spec(dotted) is not None:
            yield importlib.import_module(dotted)


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    for mod in kind_modules():
        kp = sub.add_parser(mod.KIND, help=mod.HELP, description=mod.HELP)
        mod.register(kp)
        kp.set_defaults(_train=mod.run)


class _Failed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def run(args: argparse.Namespace) -> int:
    """Run the kind with its `--out` folder staged (engine.fileio.staged_folder): the kind
    writes into a temporary folder beside it, installed into `--out` only when training
    succeeds. A failure, Ctrl-C or SIGTERM leaves nothing half-built there. `args.final_out`
    is that folder (what a card records and a message names, and where a resumable checkpoint
    goes)."""
    if not hasattr(args, "out"):
        return int(args._train(args) or 0)
    from pathlib import Path

    from engine.fileio import staged_folder

    if args.out is None:
        from engine.models.runtime import user_models_dir

        final = user_models_dir()
    else:
        final = Path(args.out)
    args.final_out = final
    given = args.out
    try:
        with staged_folder(final) as stage:
            args.out = stage if isinstance(args.out, Path) else str(stage)
            code = int(args._train(args) or 0)
            if code != 0:
                raise _Failed(code)
    except _Failed as failed:
        return failed.code
    finally:
        args.out = given
    return 0
