"""Where the accompanist's training songs come from: the `--data` argument parsed into
(id, split, Song) triples and a description for the progress log and the model card."""

from __future__ import annotations

from pathlib import Path

from engine.errors import UserInputError
from engine.training.accompanist.data import toy_songs


def load_source(spec: str) -> tuple[list[tuple[str, str, object]], str]:
    """`corpus:bach`, `folder:PATH`, `lpd5:PATH` or `toy:N` (tiny songs made in code, tests only)
    -> ((id, split, Song) triples, a description)."""
    kind, _, arg = spec.partition(":")
    if kind == "corpus":
        if arg not in ("bach", "chorales"):
            raise UserInputError(f"--data corpus:{arg}: only corpus:bach is known")
        from engine.training.data import load_chorales

        pieces = load_chorales()
        return [(p.id, p.split, p.song) for p in pieces], "Bach chorales (music21 corpus), S/A/T/B"
    if kind in ("folder", "lpd5"):
        if not arg or not Path(arg).exists():
            raise UserInputError(f"--data {spec}: {arg or 'PATH'} does not exist")
        from engine.training import data as d

        pieces = d.load_folder(arg) if kind == "folder" else d.load_lpd5(arg)
        return [(p.id, p.split, p.song) for p in pieces], f"{kind} {arg}"
    if kind == "toy":
        n = int(arg or 10)
        return toy_songs(n), f"{n} toy songs made in code"
    raise UserInputError(f"--data must be corpus:bach, folder:PATH or lpd5:PATH, got {spec!r}")
