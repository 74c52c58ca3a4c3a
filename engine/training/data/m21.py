"""music21 streams -> engine.music Songs (the one place this package reads music21 objects).

Rules, shared by every music21-based corpus here:
- Ties are merged (as `stripTies` does, in one pass) so a tied note is one Note; grace notes are skipped (they have no
  duration on the grid); chords become one Note per pitch; rests and unpitched notes are dropped.
- Times: quarter lengths -> integer ticks at `ticks_per_beat` (480), rounded (triplets land within
  a tick of where they belong).
- Meters come from the measures of one reference part: every measure whose real length differs
  from its time signature's bar (a pickup, a half bar before a repeat) becomes its own short meter,
  followed by the meter in force again. That is how engine.music writes a pickup (see its
  docstring: a 1/4 bar at tick 0, then 4/4), and it keeps every later bar line where the score
  has it. The last measure may be short without a meter change (nothing follows it).
- Tempo: the score's metronome marks if it has any, else engine.music's default (120 BPM).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from fractions import Fraction

from engine.music import (
    DEFAULT_TPB,
    ROLE_ACCOMPANIMENT,
    MeterChange,
    Note,
    Song,
    TempoChange,
    Track,
)

log = logging.getLogger(__name__)


def ql_to_ticks(ql, ticks_per_beat: int = DEFAULT_TPB) -> int:
    return int(round(float(ql) * ticks_per_beat))


def ql_to_meter(ql) -> tuple[int, int] | None:
    """A bar length in quarter notes -> the simplest (numerator, denominator): 1.0 -> 1/4,
    1.5 -> 3/8, 0.25 -> 1/16, 3.0 -> 3/4. None when no meter with a numerator <= 64 fits."""
    frac = Fraction(ql).limit_denominator(64)
    if frac <= 0:
        return None
    for den in (4, 8, 16, 32, 64):
        num = frac * den / 4
        if num.denominator == 1 and 1 <= num.numerator <= 64:
            return int(num.numerator), den
    return None


def part_notes(part, ticks_per_beat: int = DEFAULT_TPB) -> list[Note]:
    """Every sounding note of a music21 Part (ties merged, grace notes skipped), sorted.

    Ties are merged here in one pass over the flattened part instead of with music21's
    `stripTies`, which re-sorts the stream for every tie: 6-11 s for one part of a Beethoven
    quartet movement against ~0.1 s here, with the same notes (checked on the chorales in
    tests/test_data_chorales.py). A tie continues a note only if it starts where that note ends.
    """
    flat = part.flatten()
    notes: list[Note] = []
    pending: dict[int, list[int]] = {}  # midi pitch -> [start, end, velocity] of a tied note

    def emit(start: int, end: int, midi: int, vel: int) -> None:
        if end > start >= 0:
            notes.append(Note(start, end, midi, vel))

    for el in flat.notes:
        if el.duration.isGrace:
            continue
        start = ql_to_ticks(el.offset, ticks_per_beat)
        end = ql_to_ticks(el.offset + el.duration.quarterLength, ticks_per_beat)
        vel = getattr(el.volume, "velocity", None) if el.hasVolumeInformation() else None
        vel = max(1, min(127, int(vel))) if vel is not None else 80
        if hasattr(el, "notes") and not hasattr(el, "pitch"):  # a chord: ties per chord note
            components = [(n.pitch, n.tie or el.tie) for n in el.notes]
        elif hasattr(el, "pitch"):
            components = [(el.pitch, el.tie)]
        else:
            continue  # unpitched percussion
        for pitch, tie in components:
            midi = int(round(pitch.ps))
            if not 0 <= midi <= 127:
                continue
            kind = tie.type if tie is not None else None
            held = pending.get(midi)
            if held is not None and kind in ("stop", "continue") and abs(held[1] - start) <= 1:
                held[1] = end
                if kind == "stop":
                    emit(*held[:2], midi, held[2])
                    del pending[midi]
                continue
            if held is not None:  # a tie that never arrived: the held note ends as written
                emit(*held[:2], midi, held[2])
                del pending[midi]
            if kind in ("start", "continue"):
                pending[midi] = [start, end, vel]
            else:
                emit(start, end, midi, vel)
    for midi, (start, end, vel) in pending.items():
        emit(start, end, midi, vel)
    notes.sort()
    return notes


def part_meters(part, ticks_per_beat: int = DEFAULT_TPB) -> list[MeterChange]:
    """The meter map of a Part, short measures (pickups, half bars) as their own meters; two
    short measures that add up to one bar (a bar split by a repeat sign) stay one bar."""
    from music21 import meter as m21meter
    from music21 import stream

    measures = list(part.getElementsByClass(stream.Measure))
    if not measures:
        sigs = part.flatten().getElementsByClass(m21meter.TimeSignature)
        out = [MeterChange(ql_to_ticks(ts.offset, ticks_per_beat), min(ts.numerator, 64),
                           ts.denominator) for ts in sigs if _valid_ts(ts)]
        return out or [MeterChange(0, 4, 4)]
    # (offset, real length, meter in force, has its own time signature) of every measure
    rows = []
    current = None
    for m in measures:
        own = m.timeSignature is not None and _valid_ts(m.timeSignature)
        if own:
            current = m.timeSignature
        num, den = (current.numerator, current.denominator) if current is not None else (4, 4)
        rows.append((Fraction(m.offset).limit_denominator(960),
                     Fraction(m.duration.quarterLength).limit_denominator(960), num, den, own))
    changes: list[MeterChange] = []
    i = 0
    while i < len(rows):
        offset, actual, num, den, own = rows[i]
        bar_ql = Fraction(num * 4, den)
        tick = ql_to_ticks(offset, ticks_per_beat)
        is_last = i == len(rows) - 1
        if (i > 0 and not is_last and actual < bar_ql and not rows[i + 1][4]
                and actual + rows[i + 1][1] == bar_ql):
            # A bar split in two around a repeat sign (3 beats, then the 1-beat upbeat after
            # the repeat): one bar as heard, so no meter change. Not the pickup (i == 0).
            if own:
                changes.append(MeterChange(tick, num, den))
            i += 2
            continue
        short = ql_to_meter(actual) if actual != bar_ql and not is_last else None
        if short is not None:
            changes.append(MeterChange(tick, *short))
            changes.append(MeterChange(ql_to_ticks(offset + actual, ticks_per_beat), num, den))
        elif i == 0 or own:
            changes.append(MeterChange(tick, num, den))
        i += 1
    return changes or [MeterChange(0, 4, 4)]


def _valid_ts(ts) -> bool:
    return (1 <= ts.numerator <= 64) and ts.denominator in (1, 2, 4, 8, 16, 32, 64)


def part_tempos(part, ticks_per_beat: int = DEFAULT_TPB) -> list[TempoChange]:
    from music21 import tempo

    out = []
    for mm in part.flatten().getElementsByClass(tempo.MetronomeMark):
        bpm = mm.getQuarterBPM()
        if bpm is not None and 1.0 <= bpm <= 1000.0:
            out.append(TempoChange(ql_to_ticks(mm.offset, ticks_per_beat), float(bpm)))
    return out


def parts_to_song(parts: Sequence, *, names: Sequence[str], roles: Sequence[str] | None = None,
                  programs: Sequence[int] | None = None, title: str = "",
                  ticks_per_beat: int = DEFAULT_TPB) -> Song:
    """A Song with one Track per music21 Part; meters and tempo from the first part."""
    roles = roles or [ROLE_ACCOMPANIMENT] * len(parts)
    programs = programs or [0] * len(parts)
    tracks = [Track(name=n, program=pr, role=r, notes=part_notes(p, ticks_per_beat))
              for p, n, r, pr in zip(parts, names, roles, programs)]
    song = Song(tracks=tracks, ticks_per_beat=ticks_per_beat,
                meters=part_meters(parts[0], ticks_per_beat), title=title)
    tempos = part_tempos(parts[0], ticks_per_beat)
    if tempos:
        song.tempos = tempos
        song.normalise_maps()
    return song
