"""`engine.music.Song` -> Standard MIDI File, through mido (engine.midi_io reads them back).

Type 1; track 0 holds the title, tempo and meter maps; then one track per `Track` with its name,
role marker, program, CC7, CC10 and notes on its own channel (drums on 9). Same-pitch overlaps,
which a file cannot hold, are trimmed (and logged). Written atomically: never a half file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from engine.errors import MidiFileError
from engine.fileio import atomic_path, check_writable
from engine.music import ROLE_OTHER, Note, Song, Track

log = logging.getLogger(__name__)

DRUM_CHANNEL = 9
ROLE_MARKER = "popmusicnet:role="  # + the role, in a text event: how a file says a track's role


def assign_channels(tracks: list[Track], path: str | Path = "<song>") -> list[int]:
    """A MIDI channel per track: drums on 9, the others on 0..15 skipping 9.

    With more than 15 pitched tracks, a track shares the channel of an earlier track with the
    same program, volume and pan (they sound identical there); otherwise MidiFileError.
    """
    free = [c for c in range(16) if c != DRUM_CHANNEL]
    by_sound: dict[tuple[int, int, int], int] = {}
    out = []
    pitched = sum(1 for t in tracks if not t.is_drum)
    for t in tracks:
        if t.is_drum:
            out.append(DRUM_CHANNEL)
            continue
        sound = (t.program, t.volume, t.pan)
        if pitched > len(free) + len(by_sound) and sound in by_sound:
            out.append(by_sound[sound])
            continue
        if not free:
            if sound in by_sound:
                out.append(by_sound[sound])
                continue
            raise MidiFileError(path, f"too many instruments: more than {15} pitched tracks "
                                      "with different program/volume/pan")
        ch = free.pop(0)
        by_sound.setdefault(sound, ch)
        out.append(ch)
    return out


def _track_notes_without_overlaps(track: Track) -> list[Note]:
    """Notes of one track with same-pitch overlaps trimmed (a file cannot hold them)."""
    notes = sorted(track.notes)
    last: dict[int, int] = {}
    out: list[Note] = []
    trimmed = 0
    for n in notes:
        j = last.get(n.pitch)
        if j is not None and out[j].end > n.start:
            prev = out[j]
            if n.start > prev.start:
                out[j] = Note(prev.start, n.start, prev.pitch, prev.velocity)
            else:  # same start: keep the longer one
                out[j] = max(prev, n, key=lambda x: x.end)
                trimmed += 1
                continue
            trimmed += 1
        last[n.pitch] = len(out)
        out.append(n)
    if trimmed:
        log.warning("track %r: trimmed %d overlapping same-pitch note(s) on writing",
                    track.name, trimmed)
    return out


def song_to_midifile(song: Song, path: str | Path = "<song>"):
    """Build a type-1 `mido.MidiFile` from a Song (see the module docstring)."""
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=song.ticks_per_beat)
    conductor = []
    if song.title:
        conductor.append((0, 0, mido.MetaMessage("track_name", name=song.title)))
    for m in song.meters:
        conductor.append((m.tick, 1, mido.MetaMessage(
            "time_signature", numerator=m.numerator, denominator=m.denominator,
            clocks_per_click=24, notated_32nd_notes_per_beat=8)))
    for t in song.tempos:
        conductor.append((t.tick, 2, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(t.bpm))))
    mid.tracks.append(_to_track(conductor))

    channels = assign_channels(song.tracks, path)
    for track, ch in zip(song.tracks, channels):
        events = [(0, 0, mido.MetaMessage("track_name", name=track.name))]
        if track.role != ROLE_OTHER:
            events.append((0, 1, mido.MetaMessage("text", text=ROLE_MARKER + track.role)))
        events.append((0, 2, mido.Message("program_change", channel=ch, program=track.program)))
        events.append((0, 3, mido.Message("control_change", channel=ch, control=7,
                                          value=track.volume)))
        events.append((0, 4, mido.Message("control_change", channel=ch, control=10,
                                          value=track.pan)))
        for n in _track_notes_without_overlaps(track):
            # At equal ticks: offs (5) before ons (6), so re-struck notes are unambiguous.
            events.append((n.start, 6, mido.Message("note_on", channel=ch, note=n.pitch,
                                                    velocity=max(n.velocity, 1))))
            events.append((n.end, 5, mido.Message("note_off", channel=ch, note=n.pitch,
                                                  velocity=0)))
        mid.tracks.append(_to_track(events))
    return mid


def _to_track(events):
    import mido

    track = mido.MidiTrack()
    now = 0
    for tick, _order, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def write_midi(song: Song, path: str | Path) -> Path:
    """Write `song` as a type-1 MIDI file, atomically (never a half-written file)."""
    path = check_writable(path)
    mid = song_to_midifile(song, path)
    with atomic_path(path) as tmp:
        mid.save(tmp)
    log.info("wrote %s (%d tracks, %d notes)", path, len(song.tracks), song.n_notes)
    return path
