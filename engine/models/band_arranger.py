"""The band's arranger: chords (engine.models.band_chords) played as a band, comping piano or
guitar, bass and drums (channel 10), in the song's meter, bar by bar.

The patterns come from engine.models.band_patterns (a table: drums, bass and comping per meter
and style). The comping chord is voiced nearest the previous voicing, the bass takes root,
fifth and approach notes, velocities follow accents and four-bar phrases. `arrange` plays a
whole song's chords; a live session calls `Arranger.bar` for each bar as it is planned.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from engine.errors import UserInputError
from engine.models import band_patterns as P
from engine.models.band_chords import Chord, chord_index, chord_label
from engine.music import ROLE_ACCOMPANIMENT, Note, Song, Track

STYLES = tuple(P.STYLES)


def _meter_name(num: int, den: int) -> str:
    return f"{num}/{den}"


def resolve_style(style: str | None, meter: str) -> str:
    if style in (None, "", "auto"):
        return P.AUTO_STYLE.get(meter, "pop")
    if style not in P.STYLES:
        raise UserInputError(f"style must be one of auto, {', '.join(P.STYLES)}; got {style!r}")
    return style


@functools.lru_cache(maxsize=None)
def _voicings(root: int, quality: str) -> tuple[tuple[tuple[int, ...], float], ...]:
    """Every close voicing of the chord within COMP_RANGE, from each chord tone at the bottom
    up (the next tone above each), with its mean pitch."""
    pcs = [(root + t) % 12 for t in P.QUALITY_TONES[quality]]
    lo, hi = P.COMP_RANGE
    out = []
    for bottom in range(lo, hi - 6):
        if bottom % 12 not in pcs:
            continue
        v = [bottom]
        k = pcs.index(bottom % 12)
        while len(v) < len(pcs):
            k = (k + 1) % len(pcs)
            nxt = v[-1] + 1
            while nxt % 12 != pcs[k]:
                nxt += 1
            v.append(nxt)
        if v[-1] <= hi:
            out.append((tuple(v), sum(v) / len(v)))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def _bass_pitches(pc: int) -> tuple[int, ...]:
    lo, hi = P.BASS_RANGE
    return tuple(p for p in range(lo, hi + 1) if p % 12 == pc)


@functools.lru_cache(maxsize=None)
def _swell(phrase_bar: int, at: float) -> float:
    """The velocity factor at `at` quarters into bar `phrase_bar` (0-3) of a four-bar phrase."""
    return 0.92 + 0.08 * np.sin(np.pi * (phrase_bar + at / 4) / 4)


class Arranger:
    """Realises chords as a band, bar by bar; keeps the voicing and bass note it played last."""

    def __init__(self, style: str, tpb: int, seed: int = 0) -> None:
        self.style = P.STYLES[style]
        self.style_name = style
        self.tpb = tpb
        self.voicing: list[int] | None = None
        self.bass_last: int | None = None
        self.rng = np.random.default_rng(seed)
        self._jitter: list[int] = []
        self._layouts: dict[tuple[int, str], tuple] = {}

    # voicing: the chord's tones within COMP_RANGE, 3-4 notes, nearest the previous voicing
    def voice(self, root: int, quality: str) -> list[int]:
        cands = _voicings(root % 12, quality)
        if not cands:
            return [60 + ((root + t) % 12 - 60) % 12 for t in P.QUALITY_TONES[quality]]
        prev = self.voicing
        if prev is None:
            target = sum(P.COMP_RANGE) / 2
            best = min(cands, key=lambda c: abs(c[1] - target))[0]
        else:
            mean = sum(prev) / len(prev)
            best = min(cands, key=lambda c: sum(min(abs(p - q) for q in prev) for p in c[0])
                       + 0.5 * abs(c[1] - mean))[0]
        self.voicing = list(best)
        return list(best)

    def bass_pitch(self, root: int, degree: str, next_root: int | None) -> int:
        lo, hi = P.BASS_RANGE
        base = self.bass_last if self.bass_last is not None else 40

        def near(pc: int, ref: int) -> int:
            return min(_bass_pitches(pc % 12), key=lambda p: (abs(p - ref), p))

        r = near(root, base)
        if degree == "fifth":
            p = r + 7 if r + 7 <= hi else r - 5
        elif degree == "third":
            p = r + 4 if r + 4 <= hi else r - 8
        elif degree == "octave":
            p = r + 12 if r + 12 <= hi else r
        elif degree == "approach" and next_root is not None and next_root % 12 != root % 12:
            target = near(next_root, r)
            p = target - 1 if target - 1 >= lo else target + 1
            if (p % 12) not in [(next_root + d) % 12 for d in (-2, -1, 1, 2)]:
                p = target + 2
        else:
            p = r
        p = min(max(p, lo), hi)
        if degree in ("root",):
            self.bass_last = p
        return p

    def _vel(self, v: float, bar: int, at: float) -> int:
        """`v` with the bar's place in its four-bar phrase (a swell) and a jitter of +-4."""
        if not self._jitter:  # drawn in blocks: the same numbers as one draw a note
            self._jitter = self.rng.integers(-4, 5, size=64).tolist()[::-1]
        vel = round(v * self.style["scale"] * _swell(bar % 4, at) + self._jitter.pop())
        return int(min(max(vel, 1), 127))

    def patterns(self, bar_ticks: int, meter: str) -> tuple[list, list, list, float]:
        """(drums, bass, comp, repeat) of a bar: the style's patterns for its meter, else
        "generic" repeated every `repeat` quarters."""
        name = self.style["meters"].get(meter)
        if name is None:
            return P.DRUMS["generic"], P.BASS["generic"], P.COMP["generic"], 1.0
        return P.DRUMS[name], P.BASS[name], P.COMP[name], bar_ticks / self.tpb + 1

    def layout(self, bar_ticks: int, meter: str) -> tuple[tuple, ...]:
        """The bar's pattern notes in the order they are played (each part per repeat):
        ("drums", tick, end, GM note, velocity, quarters in), ("bass", tick, end, degree, ...),
        ("comp", tick, end, None, ...); ends cut at the bar line. Kept per bar length and meter,
        so a bar like one before is not laid out again."""
        key = (bar_ticks, meter)
        if key in self._layouts:
            return self._layouts[key]
        tpb = self.tpb
        q = lambda x: int(round(x * tpb))  # noqa: E731
        dr, bs, cp, repeat = self.patterns(bar_ticks, meter)
        offsets = [0.0] if repeat > bar_ticks / tpb else \
            [k * repeat for k in range(int(np.ceil(bar_ticks / tpb / repeat)))]
        out = []
        for off in offsets:
            out += [("drums", q(off + at), min(q(off + at) + tpb // 4, bar_ticks), note, vel,
                     off + at) for at, note, vel in dr if q(off + at) < bar_ticks]
            out += [("bass", q(off + at), min(q(off + at + ln), bar_ticks), degree, vel, off + at)
                    for at, ln, degree, vel in bs if q(off + at) < bar_ticks]
            out += [("comp", q(off + at), min(q(off + at + ln), bar_ticks), None, vel, off + at)
                    for at, ln, vel in cp if q(off + at) < bar_ticks]
        self._layouts[key] = tuple(out)
        return self._layouts[key]

    def bar(self, bar_ticks: int, meter: str, chords: Sequence[tuple[int, int | None]],
            next_root: int | None, bar_index: int, *, pickup: bool = False,
            final_end: int | None = None) -> tuple[list[Note], list[Note], list[Note]]:
        """Notes (comp, bass, drums) of one bar, ticks relative to its start. `chords`: (tick,
        class index) changes inside the bar (the first at 0; index 0 = rest). `final_end`: the
        melody ends here (the last bar: one held chord, root and a crash, cut at it)."""
        tpb = self.tpb
        comp: list[Note] = []
        bass: list[Note] = []
        drums: list[Note] = []
        if pickup:
            for k in range(max(1, bar_ticks // tpb)):
                t = k * tpb
                if t < bar_ticks:
                    drums.append(Note(t, min(t + tpb // 4, bar_ticks), P.PICKUP["note"],
                                      P.PICKUP["velocity"] + k * P.PICKUP["rise"]))
            return comp, bass, drums

        def chord_at(t: int) -> int:
            cur = 0
            for tick, idx in chords:
                if tick <= t:
                    cur = idx
            return cur

        def next_change_root(t: int) -> int | None:
            for tick, idx in chords:
                if tick > t:
                    lab = chord_label(idx)
                    return lab[0] if lab else None
            return next_root

        if final_end is not None:
            end = max(1, min(final_end, bar_ticks))
            for drum, vel in P.ENDING["drums"]:
                drums.append(Note(0, min(end, tpb), drum, vel))
            lab = chord_label(chord_at(0))
            if lab is not None:
                for p in self.voice(*lab):
                    comp.append(Note(0, end, p, P.ENDING["comp_velocity"]))
                bp = self.bass_pitch(lab[0], "root", None)
                bass.append(Note(0, end, bp, P.ENDING["bass_velocity"]))
            return comp, bass, drums

        strum = int(self.style["strum"])
        for part, t, e, what, vel, at in self.layout(bar_ticks, meter):
            if part == "drums":
                drums.append(Note(t, e, what, self._vel(vel, bar_index, at)))
                continue
            lab = chord_label(chord_at(t))
            if lab is None:
                continue
            v = self._vel(vel, bar_index, at)
            if part == "bass":
                # an approach note only where the chord changes at the note's end
                nr = next_change_root(t) if what == "approach" else None
                deg = what if (what != "approach" or chord_at(e) != chord_at(t)
                               or e >= bar_ticks) else "fifth"
                bass.append(Note(t, max(e - tpb // 16, t + 1), self.bass_pitch(lab[0], deg, nr),
                                 v))
                continue
            for t2, _ in chords:  # a chord change cuts the comping note
                if t < t2 < e:
                    e = t2
            for k, p in enumerate(self.voice(*lab)):
                s = min(t + k * strum, e - 1)
                comp.append(Note(s, max(e - tpb // 16, s + 1), p, max(1, v - 2 * k)))
        return comp, bass, drums


def arrange(song: Song, melody: Sequence[Note], chords: Sequence[Chord], *,
            style: str | None = None, seed: int = 0) -> list[Track]:
    """Chords, Bass and Drums tracks playing `chords` (tick, root, quality) in the meter of
    `song`, up to the melody's end (the chord sounding there is the last bar's, held)."""
    end = max(n.end for n in melody)
    first = song.meter_at(song.pickup_ticks)
    meter0 = _meter_name(first.numerator, first.denominator)
    style = resolve_style(style, meter0)
    arr = Arranger(style, song.ticks_per_beat, seed)
    bars = song.bars(end)
    pickup = song.pickup_ticks
    ch = sorted(chords)
    comp, bass, drums = [], [], []
    for b, (s, e, m) in enumerate(bars):
        inside = [(max(t - s, 0), chord_index(r, q)) for t, r, q in ch if s <= t < e]
        before = [c for c in ch if c[0] < s]
        if not inside or inside[0][0] > 0:
            lead = chord_index(before[-1][1], before[-1][2]) if before else 0
            inside = [(0, lead), *inside]
        nxt = next((c for c in ch if c[0] >= e), None)
        final = e >= end
        c, bs, d = arr.bar(e - s, _meter_name(m.numerator, m.denominator), inside,
                           nxt[1] if nxt else None, b, pickup=bool(pickup and b == 0),
                           final_end=end - s if final else None)
        comp += [n.shifted(s) for n in c]
        bass += [n.shifted(s) for n in bs]
        drums += [n.shifted(s) for n in d]
    st = arr.style
    return [Track("Chords", st["comp_program"], False, ROLE_ACCOMPANIMENT, sorted(comp)),
            Track("Bass", st["bass_program"], False, ROLE_ACCOMPANIMENT, sorted(bass)),
            Track("Drums", 0, True, ROLE_ACCOMPANIMENT, sorted(drums))]


def live_meter(bar_ticks: int, tpb: int, meter: tuple[int, int] | None = None) -> str:
    """The meter a live bar is played in: `meter` (numerator, denominator) where the engine
    knows it, else 4/4, 3/4, 2/4 by its quarters (three quarters: 3/4)."""
    if meter is not None:
        return _meter_name(*meter)
    q = bar_ticks / tpb
    for name, n in (("4/4", 4), ("3/4", 3), ("2/4", 2)):
        if abs(q - n) < 1e-6:
            return name
    return "other"
