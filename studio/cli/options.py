"""Option values that need parsing beyond argparse's types (a key, a meter): one way to turn a
parser's ValueError into the CLI's one-line error naming the option (exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def parsed(flag: str, parse: Callable[[str], T], text: str | None) -> T | None:
    """`parse(text)`, None for None; a ValueError becomes a UserInputError naming `flag`."""
    from engine.errors import UserInputError

    if text is None:
        return None
    try:
        return parse(text)
    except ValueError as exc:
        raise UserInputError(f"{flag}: {exc}") from None
