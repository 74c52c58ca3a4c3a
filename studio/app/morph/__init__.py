"""Morph: between two sources (a captured clip of notes, or a style), decoded live into a
preview while the slider moves; Apply makes it a track."""

from __future__ import annotations

from collections.abc import Iterable

from engine.music import Note, Song, Track


def clip_song(song: Song, notes: Iterable[Note]) -> Song:
    """The notes as a song of their own, starting at the bar line at or before the first one
    (the morph model reads whole bars)."""
    notes = sorted(notes)
    start = max([s for s in song.bar_starts(notes[0].start + 1) if s <= notes[0].start],
                default=0)
    return Song(tracks=[Track("clip", role="melody", notes=[n.shifted(-start) for n in notes])],
                ticks_per_beat=song.ticks_per_beat, tempos=[song.tempos[0]],
                meters=[song.meter_at(start)], title="clip")
