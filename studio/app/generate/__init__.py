"""Generate / Continue: GAN bars or an LSTM continuation into the selected track at the cursor."""

from __future__ import annotations

from engine.music import Note, Song


def bar_start_at_or_before(song: Song, tick: int) -> int:
    return max([s for s in song.bar_starts(tick + 1) if s <= tick], default=0)


def context_before(song: Song, track: int, cursor: int) -> Song:
    """The song cut to the selected track's notes that start before the cursor (what the
    continuation model reads)."""
    out = song.copy()
    t = out.tracks[track]
    t.notes = [n for n in t.notes if n.start < cursor]
    out.tracks = [t]
    t.role = "melody"
    return out


def rescaled(notes: list[Note], from_tpb: int, to_tpb: int) -> list[Note]:
    """Notes from a song with another resolution (ticks per beat) in this song's ticks."""
    if from_tpb == to_tpb:
        return list(notes)
    out = []
    for n in notes:
        start = round(n.start * to_tpb / from_tpb)
        out.append(Note(start, max(round(n.end * to_tpb / from_tpb), start + 1), n.pitch,
                        n.velocity))
    return out


def placed(notes: list[Note], at: int) -> list[Note]:
    """Generated notes (from tick 0) moved to start at `at`."""
    return [n.shifted(at) for n in notes]
