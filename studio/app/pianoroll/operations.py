"""Note operations behind the Edit menu, as pure functions (notes in, notes out), so they are
easy to test and the editor only turns their results into undo commands."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from engine.music import Note


def span(notes: Iterable[Note]) -> tuple[int, int]:
    notes = list(notes)
    return min(n.start for n in notes), max(n.end for n in notes)


def duplicated(notes: Sequence[Note], bar_ticks: int) -> list[Note]:
    """Copies placed right after the selection, rounded up to whole bars as DAWs do (or a
    beat-grid length when the selection is shorter than a bar... kept simple: whole bars)."""
    a, b = span(notes)
    length = max(bar_ticks, -(-(b - a) // bar_ticks) * bar_ticks)
    return [n.shifted(length) for n in notes]


def relative(notes: Sequence[Note]) -> list[Note]:
    """Notes moved so that the earliest starts at tick 0 (the clipboard form)."""
    a = min(n.start for n in notes)
    return [n.shifted(-a) for n in notes]


def pasted(clip: Sequence[Note], at: int) -> list[Note]:
    return [n.shifted(at) for n in clip]


def transposed(notes: Sequence[Note], semitones: int) -> list[Note] | None:
    """None if any note would leave MIDI 0..127 (the edit is refused, not clipped)."""
    if any(not 0 <= n.pitch + semitones <= 127 for n in notes):
        return None
    return [n.shifted(semitones=semitones) for n in notes]


def nudged(notes: Sequence[Note], ticks: int) -> list[Note] | None:
    if any(n.start + ticks < 0 for n in notes):
        return None
    return [n.shifted(ticks) for n in notes]


def quantized(notes: Sequence[Note], grid: int) -> list[Note] | None:
    """Starts moved to the nearest grid line, lengths kept (None when nothing moves)."""
    out = []
    for n in notes:
        start = max(0, int(round(n.start / grid)) * grid)
        out.append(Note(start, start + (n.end - n.start), n.pitch, n.velocity))
    return None if out == list(notes) else out
