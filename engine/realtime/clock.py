"""Musical time from the audio sample clock: ticks <-> sample frames, bars, beats, metronome clicks.

The engine never reads wall time to decide *when* something sounds: every note is placed at a
sample frame computed here from the tempo map, and the only "now" it reads is the synth's sample
clock (or a test's virtual clock). Tempo and meter change only at bar lines (the engine applies
them when it prepares the next bar), so the map is a list of (tick, frame, bpm, meter) segments
that only grows forward.

Frames are computed with exact fractions from the start of the current segment, so the grid does
not drift with rounding however long the performance is.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


def parse_meter(text: str) -> tuple[int, int]:
    """'6/8' -> (6, 8). Raises ValueError naming the problem."""
    try:
        num_s, den_s = text.strip().split("/")
        num, den = int(num_s), int(den_s)
    except ValueError:
        raise ValueError(f"meter must look like 4/4, 3/4 or 6/8, got {text!r}") from None
    if not 1 <= num <= 32 or den not in (1, 2, 4, 8, 16):
        raise ValueError(f"meter must be N/D with N in 1..32 and D one of 1, 2, 4, 8, 16, got {text!r}")
    return num, den


def bar_ticks(meter: tuple[int, int], ticks_per_beat: int) -> int:
    num, den = meter
    return num * ticks_per_beat * 4 // den


def click_ticks(meter: tuple[int, int], ticks_per_beat: int) -> list[int]:
    """Where the metronome clicks in one bar (ticks from the bar line).

    Compound meters (6/8, 9/8, 12/8) click on the dotted quarter, others on each written beat.
    """
    num, den = meter
    if den == 8 and num % 3 == 0 and num > 3:
        step = 3 * ticks_per_beat // 2
        n = num // 3
    else:
        step = ticks_per_beat * 4 // den
        n = num
    return [i * step for i in range(n)]


@dataclass(frozen=True, slots=True)
class Segment:
    tick: int  # first tick of the segment (a bar line)
    frame: int  # its sample frame
    bpm: float
    meter: tuple[int, int]


class TempoMap:
    """Tick <-> frame for a live performance. Tick 0 is the first bar after the count-in."""

    def __init__(self, sample_rate: int, ticks_per_beat: int, bpm: float,
                 meter: tuple[int, int], origin_frame: int) -> None:
        if not 20.0 <= bpm <= 400.0:
            raise ValueError(f"tempo must be in range 20..400 BPM, got {bpm:g}")
        self.sample_rate = int(sample_rate)
        self.ticks_per_beat = int(ticks_per_beat)
        self.segments: list[Segment] = [Segment(0, int(origin_frame), float(bpm), tuple(meter))]

    @property
    def origin_frame(self) -> int:
        return self.segments[0].frame

    def _segment_at_tick(self, tick: float) -> Segment:
        seg = self.segments[0]
        for s in self.segments:
            if s.tick <= tick:
                seg = s
            else:
                break
        return seg

    def _frames_per_tick(self, bpm: float) -> Fraction:
        return Fraction(60 * self.sample_rate) / (Fraction(bpm) * self.ticks_per_beat)

    def frame_at(self, tick: int) -> int:
        """The sample frame of `tick` (ticks before 0 extend the first segment backwards)."""
        seg = self._segment_at_tick(tick)
        return seg.frame + round((tick - seg.tick) * self._frames_per_tick(seg.bpm))

    def tick_at(self, frame: float) -> float:
        seg = self.segments[0]
        for s in self.segments:
            if s.frame <= frame:
                seg = s
            else:
                break
        return seg.tick + float((Fraction(frame) - seg.frame) / self._frames_per_tick(seg.bpm))

    def bpm_at(self, tick: float) -> float:
        return self._segment_at_tick(tick).bpm

    def meter_at(self, tick: float) -> tuple[int, int]:
        return self._segment_at_tick(tick).meter

    def bar_ticks_at(self, tick: float) -> int:
        return bar_ticks(self.meter_at(tick), self.ticks_per_beat)

    def change(self, tick: int, *, bpm: float | None = None,
               meter: tuple[int, int] | None = None) -> None:
        """Tempo and/or meter from `tick` (a bar line not before the last segment) on."""
        last = self.segments[-1]
        if tick < last.tick:
            raise ValueError("tempo map changes must move forward")
        if bpm is not None and not 20.0 <= bpm <= 400.0:
            raise ValueError(f"tempo must be in range 20..400 BPM, got {bpm:g}")
        seg = Segment(tick, self.frame_at(tick), float(bpm if bpm is not None else last.bpm),
                      tuple(meter) if meter is not None else last.meter)
        if tick == last.tick:
            self.segments[-1] = seg
        else:
            self.segments.append(seg)

    def beat_frames(self, tick: float) -> float:
        return float(self._frames_per_tick(self.bpm_at(tick)) * self.ticks_per_beat)


def quantise(ticks: int, ticks_per_beat: int, steps_per_beat: int) -> int:
    """Nearest grid step, in ticks (the model's grid: steps_per_beat per quarter)."""
    step = Fraction(ticks_per_beat, steps_per_beat)
    return int(round(Fraction(ticks) / step) * step)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


__all__ = ["TempoMap", "Segment", "parse_meter", "bar_ticks", "click_ticks", "quantise",
           "ceil_div"]
