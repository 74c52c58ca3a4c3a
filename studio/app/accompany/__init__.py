"""Accompany: offline accompaniment of a track or a selection into new tracks, and the Live
toggle (the realtime engine plays along, its planned next bar drawn before it sounds)."""

from __future__ import annotations

from collections.abc import Iterable

from engine.music import Note, Song, Track


def melody_excerpt(song: Song, melody: int, notes: Iterable[Note]) -> tuple[Song, int, int]:
    """A copy of `song` whose melody track holds only `notes` (the selection), and the range
    (start, end) of whole bars they cover, where the accompaniment will be kept."""
    notes = sorted(notes)
    out = song.copy()
    out.tracks = [Track(out.tracks[melody].name, out.tracks[melody].program, False, "melody",
                        list(notes))]
    bars = song.bars(max(n.end for n in notes))
    start = max((s for s, _, _ in bars if s <= notes[0].start), default=0)
    end = min((e for _, e, _ in bars if e >= max(n.end for n in notes)), default=bars[-1][1])
    return out, start, end


def new_tracks(accompanied: Song, n_before: int, keep: tuple[int, int] | None) -> list[Track]:
    """The tracks the model added (after the first `n_before`), cut to `keep` if given."""
    added = accompanied.tracks[n_before:]
    if keep is not None:
        a, b = keep
        for t in added:
            t.notes = [n for n in t.notes if a <= n.start < b]
    return added
