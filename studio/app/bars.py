"""Bar numbers and the pickup as musicians count them, over `engine.music`'s meter map.

A pickup (anacrusis) is a first bar shorter than the bar after it, written as its own meter at
tick 0 (1/4 then 3/4 for one beat before a 3/4 tune), which is how MIDI files carry it. Such a
bar is bar 0, so that the first full bar is bar 1 and its downbeat is beat 1. Pure functions (no
Qt): the ruler, the transport and the undo commands share them.
"""

from __future__ import annotations

from engine.music import MeterChange, Song


def pickup_ticks(song: Song) -> int:
    """Length of the pickup bar (0: none). Read from the meter map alone, so an empty song
    with a pickup has one too."""
    m = song.meters
    if len(m) < 2:
        return 0
    first = min(m[0].bar_ticks(song.ticks_per_beat), m[1].tick)
    return first if 0 < first < m[1].bar_ticks(song.ticks_per_beat) else 0


def first_bar_number(song: Song) -> int:
    return 0 if pickup_ticks(song) else 1


def main_meter(song: Song) -> MeterChange:
    """The meter the song is in: the first full bar's (a pickup's own meter is not it)."""
    return song.meters[1] if pickup_ticks(song) else song.meters[0]


def beat_ticks(meter: MeterChange, ticks_per_beat: int) -> int:
    return ticks_per_beat * 4 // meter.denominator


def pickup_beats(song: Song) -> int:
    """The pickup's length in beats of the song's meter (0: none)."""
    return pickup_ticks(song) // beat_ticks(main_meter(song), song.ticks_per_beat)


def meters_with_pickup(song: Song, beats: int) -> list[MeterChange]:
    """The meter map with a pickup of `beats` beats of the song's meter (0 removes it). Notes
    stay where they are: the bar lines move, so a tune that starts on an upbeat has its
    downbeats on beat 1."""
    main = main_meter(song)
    tpb = song.ticks_per_beat
    old = pickup_ticks(song)
    rest = [m for m in song.meters if m.tick > (old if old else 0)]
    beats = max(0, min(int(beats), main.numerator - 1))
    if beats == 0:
        return [MeterChange(0, main.numerator, main.denominator)] + rest
    ticks = beats * beat_ticks(main, tpb)
    return ([MeterChange(0, beats, main.denominator),
             MeterChange(ticks, main.numerator, main.denominator)]
            + [m for m in rest if m.tick > ticks])


def meters_with_main(song: Song, numerator: int, denominator: int) -> list[MeterChange]:
    """The meter map with the song's meter changed, its pickup kept when it still fits."""
    tpb = song.ticks_per_beat
    pick = pickup_ticks(song)
    new = MeterChange(0, numerator, denominator)
    if not pick:
        return [new] + song.meters[1:]
    beat = beat_ticks(new, tpb)
    rest = song.meters[2:]
    if pick % beat or pick // beat >= numerator:
        return [new] + rest
    return [MeterChange(0, pick // beat, denominator),
            MeterChange(pick, numerator, denominator)] + rest


def numbered_bars(song: Song, end: int) -> list[tuple[int, int, int, MeterChange]]:
    """(number, start, end, meter) of every bar up to `end`, the pickup numbered 0."""
    first = first_bar_number(song)
    return [(i + first, s, e, m) for i, (s, e, m) in enumerate(song.bars(end))]


def position_text(song: Song, tick: float) -> str:
    """'bar.beat.sixteenth' as DAWs show it, following the meter map. In a pickup the beats
    are counted as the full bar's last beats (a one-beat pickup in 3/4 is 0.3)."""
    tick = max(0, int(tick))
    tpb = song.ticks_per_beat
    pick = pickup_ticks(song)
    for number, start, end, meter in numbered_bars(song, tick + 1):
        if start <= tick < end:
            if number == 0 and pick:
                meter = main_meter(song)
                start -= meter.bar_ticks(tpb) - pick  # where the full bar would have begun
            beat = beat_ticks(meter, tpb)
            into = tick - start
            return f"{number}.{into // beat + 1}.{(into % beat) * 4 // beat + 1}"
    return f"{first_bar_number(song)}.1.1"
