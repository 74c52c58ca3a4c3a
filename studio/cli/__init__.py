"""The command line. One module per subcommand in `studio.cli.commands`, found at start-up.

Each command module defines `NAME`, `HELP`, `register(parser)` (adds its arguments) and
`run(args) -> int`. Modules import heavy libraries (ONNX Runtime, the synth, Qt) inside `run`, so
`popmusicnet --help` stays fast. Exit codes: 0 ok, 2 bad input or usage, 1 internal error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from engine import __version__
from engine.errors import UserInputError

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2

log = logging.getLogger("popmusicnet")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; keep one line on stderr
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _command_modules():
    from studio.cli import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"studio.cli.commands.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="popmusicnet",
                     description="PopMusicNet Studio: play, accompany, generate, edit and export "
                                 "music with machine-learned models. Without a command, opens "
                                 "the studio window.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.register(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        args = parser.parse_args(["studio", *argv])
    try:
        return int(args._run(args) or EXIT_OK)
    except UserInputError as exc:
        print(f"popmusicnet {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `popmusicnet info x.mid | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        from engine.fileio import ENVIRONMENT_ERRNOS, os_reason

        # Permission denied, a full disk, a name too long: the user's environment, not a bug.
        if exc.errno in ENVIRONMENT_ERRNOS and exc.filename:
            print(f"popmusicnet {args.command}: error: {exc.filename}: {os_reason(exc)}",
                  file=sys.stderr)
            return EXIT_USAGE
        log.debug("internal error", exc_info=True)
        print(f"popmusicnet {args.command}: internal error: {type(exc).__name__}: {exc} "
              "(run with -vv for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print(f"popmusicnet {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line by default, the traceback with -vv
        log.debug("internal error", exc_info=True)
        print(f"popmusicnet {args.command}: internal error: {type(exc).__name__}: {exc} "
              "(run with -vv for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
