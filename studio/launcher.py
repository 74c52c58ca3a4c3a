"""Entry point of the `popmusicnet` command: a subcommand runs the CLI, none opens the studio."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from studio import cli

    return cli.main(sys.argv[1:] if argv is None else argv)


def gui_main() -> int:
    return main(["studio"])


if __name__ == "__main__":
    sys.exit(main())
