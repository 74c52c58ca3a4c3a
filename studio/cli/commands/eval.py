"""`popmusicnet eval KIND ...`: measure a model on its held-out split and write its section of
docs/RESULTS.md; a small dispatcher over kinds.

How kinds are found (each team adds its own without editing this file): every module
`engine/evaluation/<name>.py` that defines

    KIND = "accompanist"            # the word after `eval`
    HELP = "one line for --help"
    def register(parser): ...       # its options (argparse), no heavy imports at module level
    def run_cli(args) -> int: ...   # measures, prints, calls report.update_section(...)

is a kind. Modules without KIND (report.py, metric helpers) are skipped. A module that fails to
import is an error, not a kind left out: it stops the command with its ImportError (kinds import
their heavy dependencies inside run_cli, so this is a broken module or install).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

NAME = "eval"
HELP = "evaluate a model on its test split and update docs/RESULTS.md"


def _kind_modules():
    import engine.evaluation as evaluation

    for info in sorted(pkgutil.iter_modules(evaluation.__path__), key=lambda i: i.name):
        if info.ispkg or info.name.startswith("_") or info.name == "report":
            continue
        mod = importlib.import_module(f"engine.evaluation.{info.name}")
        if all(hasattr(mod, a) for a in ("KIND", "HELP", "register", "run_cli")):
            yield mod


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    for mod in _kind_modules():
        kp = sub.add_parser(mod.KIND, help=mod.HELP, description=mod.HELP)
        mod.register(kp)
        kp.set_defaults(_eval=mod.run_cli)
    sub.add_parser("all", help="every kind above with its defaults (what `make eval` runs)")


def _run_all() -> int:
    """Each kind with its default options, one after the other; exit status: the worst one."""
    worst = 0
    for mod in _kind_modules():
        kp = argparse.ArgumentParser(prog=f"popmusicnet eval {mod.KIND}")
        mod.register(kp)
        print(f"== eval {mod.KIND}", flush=True)
        worst = max(worst, int(mod.run_cli(kp.parse_args([])) or 0))
    return worst


def run(args: argparse.Namespace) -> int:
    if args.kind == "all":
        return _run_all()
    return int(args._eval(args) or 0)
