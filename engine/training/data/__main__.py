"""Build or inspect the data caches: `python -m engine.training.data build chorales|styles`.

The training commands call the loaders themselves (a current cache loads in milliseconds, a
missing one is built on first use); this command builds them ahead of time and prints counts.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter


def _chorales(args: argparse.Namespace) -> None:
    from engine.training.data.chorales import describe, load_chorales

    t0 = time.perf_counter()
    pieces = load_chorales(args.cache_dir, rebuild=args.rebuild)
    seconds = time.perf_counter() - t0
    print(f"chorales: {len(pieces)} pieces, {len({p.group for p in pieces})} groups "
          f"in {seconds:.1f} s")
    print(describe(pieces))


def _styles(args: argparse.Namespace) -> None:
    from engine.training.data.styles import STYLES, describe, load_styles

    t0 = time.perf_counter()
    styles = args.styles or list(STYLES)
    pieces = load_styles(styles, cache_dir=args.cache_dir, rebuild=args.rebuild,
                         max_per_class=args.max_per_class)
    seconds = time.perf_counter() - t0
    print(f"styles: {len(pieces)} pieces in {seconds:.1f} s "
          f"({dict(Counter(p.label for p in pieces))})")
    print(describe(pieces))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.training.data",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="parse a corpus into the cache (or load it) and "
                                         "print counts")
    build.add_argument("corpus", choices=["chorales", "styles"])
    build.add_argument("--cache-dir", default=None,
                       help="default: $POPMUSICNET_CACHE or ~/.cache/popmusicnet/data")
    build.add_argument("--rebuild", action="store_true", help="parse again even if cached")
    build.add_argument("--max-per-class", type=int, default=150,
                       help="styles: pieces per class at most (default 150)")
    build.add_argument("--styles", nargs="*", default=None,
                       help="styles: which classes (default: all)")
    build.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.corpus == "chorales":
        _chorales(args)
    else:
        _styles(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
