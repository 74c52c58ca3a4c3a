"""What the player is given: the song as heard (mute/solo applied, metronome, count-in).

Pure functions on `engine.music` (no Qt), so they are tested directly. The count-in shifts the
material: playback starts at tick 0 of the returned song, which is `offset` ticks before the
editor's start tick; the editor's position is `player_tick + offset`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from engine.music import MeterChange, Note, Song, TempoChange, Track

CLICK_HIGH, CLICK_LOW = 76, 77  # GM percussion: hi and low wood block


@dataclass(frozen=True, slots=True)
class Playback:
    song: Song
    offset: int  # editor tick = player tick + offset
    start_tick: int  # where the player starts, in its own ticks
    loop: tuple[int, int] | None  # in the player's ticks


def click_track(song: Song, start: int, end: int) -> Track:
    """Metronome clicks on every beat (the meter's denominator) from `start` to `end`."""
    notes = []
    for bar_start, bar_end, meter in song.bars(end):
        beat = song.ticks_per_beat * 4 // meter.denominator
        for t in range(bar_start, bar_end, beat):
            if start <= t < end:
                pitch = CLICK_HIGH if t == bar_start else CLICK_LOW
                notes.append(Note(t, t + beat // 4, pitch, 110 if t == bar_start else 80))
    return Track(name="Metronome", program=0, is_drum=True, notes=notes)


RECORD_SPAN_BARS = 200


def open_end_track(song: Song, end: int) -> Track:
    """SongPlayer stops after its last event; while recording it must run until stopped. A
    silent event (note-on with velocity 0 is a note-off) far ahead keeps its clock running."""
    return Track(name="(record span)", notes=[Note(end, end + 1, 0, 0)])


def build_playback(song: Song, audible: list[int], *, start_tick: int = 0,
                   loop: tuple[int, int] | None = None, metronome: bool = False,
                   count_in_bars: int = 0, open_end: bool = False) -> Playback:
    tracks = [song.tracks[i] for i in audible]
    base = dataclasses.replace(song, tracks=[dataclasses.replace(t, notes=list(t.notes))
                                             for t in tracks])
    end = max(song.end, (loop[1] if loop else 0), start_tick + 1)
    if open_end and loop is None:
        end = max(end, start_tick) + RECORD_SPAN_BARS * song.meter_at(start_tick).bar_ticks(
            song.ticks_per_beat)
        base.tracks.append(open_end_track(base, end))
    if count_in_bars <= 0 or loop is not None:
        # Count-in is for starting from the cursor; a loop restarts at its start (as DAWs do).
        if metronome:
            base.tracks.append(click_track(base, 0, end))
        return Playback(base, 0, start_tick, loop)
    # Start on the bar line at or before the cursor, so the clicks fall on the song's beats.
    start_tick = max([s for s in song.bar_starts(start_tick + 1) if s <= start_tick], default=0)
    meter = song.meter_at(start_tick)
    lead = meter.bar_ticks(song.ticks_per_beat) * count_in_bars
    shift = lead - start_tick  # editor tick start_tick -> player tick `lead`
    shifted = Song(
        tracks=[dataclasses.replace(t, notes=[n.shifted(shift) for n in t.notes
                                              if n.start >= start_tick]) for t in base.tracks],
        ticks_per_beat=song.ticks_per_beat,
        tempos=[TempoChange(0, song.tempo_at(start_tick))] +
               [TempoChange(c.tick + shift, c.bpm) for c in song.tempos if c.tick > start_tick],
        meters=[MeterChange(0, meter.numerator, meter.denominator)] +
               [dataclasses.replace(m, tick=m.tick + shift) for m in song.meters
                if m.tick > start_tick],
        title=song.title)
    clicks = click_track(shifted, 0, lead if not metronome else end + shift)
    shifted.tracks.append(clicks)
    return Playback(shifted, -shift, 0, None)
