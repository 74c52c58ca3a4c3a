"""`popmusicnet bench NAME`: benchmarks that print numbers and write their section of
docs/RESULTS.md.

Each benchmark is a module in `studio.cli.benchmarks` defining `NAME`, `HELP`,
`register(parser)` and `run(args) -> int`, exactly like a command; it is found at start-up, so
adding `bench live` means adding `studio/cli/benchmarks/live.py`, not editing this file.
`bench all` (what `make bench` runs) runs every benchmark with its default options, one after
the other, and fails if any fails.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

NAME = "bench"
HELP = "run a benchmark (render, ...) and record its numbers in docs/RESULTS.md"


def benchmark_modules():
    from studio.cli import benchmarks

    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"studio.cli.benchmarks.{info.name}")


def register(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for mod in benchmark_modules():
        bp = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.register(bp)
        bp.set_defaults(_bench=mod.run)
    sub.add_parser("all", help="run every benchmark with its default options").set_defaults(
        _bench=run_all)


def run_all(args: argparse.Namespace) -> int:
    """Each benchmark with the defaults of its own parser; exit status: the worst one."""
    worst = 0
    for mod in benchmark_modules():
        parser = argparse.ArgumentParser(prog=f"popmusicnet bench {mod.NAME}")
        mod.register(parser)
        sub_args = parser.parse_args([])
        sub_args.command, sub_args.benchmark, sub_args.verbose = "bench", mod.NAME, args.verbose
        print(f"== bench {mod.NAME} ==", flush=True)
        worst = max(worst, int(mod.run(sub_args) or 0))
    return worst


def run(args: argparse.Namespace) -> int:
    return int(args._bench(args) or 0)
