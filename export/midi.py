"""Normalised MIDI export: type 1, 480 ticks per beat where that is exact, clean maps.

"Normalised" means: a conductor track with the title, tempo and meter maps; one track per part
on its own channel (drums on 10) with name, role marker, program, volume and pan at tick 0; notes
sorted, same-pitch overlaps trimmed; duplicate or redundant tempo/meter changes removed (the Song
model does that). The resolution becomes 480 ticks per beat only when every time in the song
lands on a whole tick at 480; otherwise the song's own resolution is kept, so that nothing moves.
"""

from __future__ import annotations

import dataclasses
import logging
from fractions import Fraction
from pathlib import Path

from engine.midi_io import write_midi
from engine.music import DEFAULT_TPB, Note, Song

log = logging.getLogger(__name__)


def _all_ticks(song: Song):
    for t in song.tempos:
        yield t.tick
    for m in song.meters:
        yield m.tick
    for track in song.tracks:
        for n in track.notes:
            yield n.start
            yield n.end


def rescaled(song: Song, ticks_per_beat: int = DEFAULT_TPB) -> Song | None:
    """A copy of `song` at `ticks_per_beat`, or None if some time would not be a whole tick."""
    if song.ticks_per_beat == ticks_per_beat:
        return song.copy()
    ratio = Fraction(ticks_per_beat, song.ticks_per_beat)
    if any((tick * ratio).denominator != 1 for tick in _all_ticks(song)):
        return None

    def s(tick: int) -> int:
        return int(tick * ratio)

    out = song.copy()
    out.ticks_per_beat = ticks_per_beat
    out.tempos = [dataclasses.replace(t, tick=s(t.tick)) for t in song.tempos]
    out.meters = [dataclasses.replace(m, tick=s(m.tick)) for m in song.meters]
    for track in out.tracks:
        track.notes = [Note(s(n.start), s(n.end), n.pitch, n.velocity) for n in track.notes]
    return out


def normalise(song: Song) -> Song:
    out = rescaled(song, DEFAULT_TPB)
    if out is None:
        log.info("keeping %d ticks per beat: not every time is a whole tick at %d",
                 song.ticks_per_beat, DEFAULT_TPB)
        out = song.copy()
    out.normalise_maps()
    for track in out.tracks:
        track.sort()
    return out


def export_midi(song: Song, path: str | Path) -> Path:
    """Write a normalised type-1 MIDI file of `song`, atomically."""
    return write_midi(normalise(song), path)
