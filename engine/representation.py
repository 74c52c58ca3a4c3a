"""The bar encoding shared by every model's training and runtime (one module, so they cannot drift).

A song is cut into *bar units* on its own meter map and each unit becomes a fixed-size tensor:

    bars: bool (n_bars, n_tracks, 2, max_bar_steps, n_pitches)   planes: 0 = onset, 1 = active

with a `BarGrid` that says where each unit sits in time:

- `length[i]`: the unit's nominal length in steps (4 steps per quarter: 4/4 = 16, 3/4 = 12,
  6/8 = 12, 2/4 = 8). Steps at and after `length` are padding (always False).
- `offset[i]`: steps of padding *before* the content. Only a pickup (a first bar shorter than the
  bar after it, which the music model writes as its own short meter) has one: its notes are
  right-aligned in a full-length bar, so the pickup's last beat sits where a bar's last beat sits
  and the bar line after it stays where it belongs. Valid steps are `offset <= s < length`.
- `start[i]`: the tick where the unit's content starts (the bar line, or the pickup's start).

Meters longer than `max_bar_steps` (4/2, 5/4, 6/4, 12/8 at 16 steps) are split into units of whole
beats, each at most `max_bar_steps` long, as evenly as possible (4/2 -> 16 + 16, 5/4 -> 12 + 8,
6/4 -> 12 + 12). Models then see familiar lengths, and units concatenate back to the exact bar.
Other short bars (a meter change inside a bar, a shortened final bar) keep their content
left-aligned: they start on a bar line.

Pitches: a `BarSpec` holds a window `low_pitch .. low_pitch + n_pitches - 1`. Notes outside it are
*folded by octaves* into it (a bass C1 becomes C2): keeping the pitch class keeps the harmony, which
matters more to an accompaniment model than the register; dropping such notes would leave holes.
Time: notes are quantised to the step grid (`engine.music.notes_to_planes`); a note crossing a bar
line has its onset in the first unit and continues, active without onset, in the next; decoding a
whole song joins the units into one roll first so such a note comes back as one note.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from engine.music import Note, Song, Track, fold_octaves, notes_to_planes, planes_to_notes

log = logging.getLogger(__name__)

ONSET, ACTIVE = 0, 1


@dataclass(frozen=True)
class BarSpec:
    """Grid and pitch window of a bar tensor."""

    steps_per_beat: int = 4
    max_bar_steps: int = 16
    low_pitch: int = 36
    n_pitches: int = 48

    def __post_init__(self) -> None:
        if self.steps_per_beat < 1 or self.max_bar_steps < self.steps_per_beat:
            raise ValueError("max_bar_steps must hold at least one beat")
        if not (0 <= self.low_pitch and self.low_pitch + self.n_pitches <= 128
                and self.n_pitches >= 12):
            raise ValueError(f"pitch window {self.low_pitch}+{self.n_pitches} must lie in 0..127 "
                             "and span at least an octave")

    @property
    def high_pitch(self) -> int:
        return self.low_pitch + self.n_pitches - 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> BarSpec:
        return cls(**{k: int(d[k]) for k in ("steps_per_beat", "max_bar_steps", "low_pitch",
                                              "n_pitches") if k in d})

    def fold(self, pitch: int) -> int:
        """Move `pitch` by octaves into the window."""
        return fold_octaves(pitch, self.low_pitch, self.high_pitch)


@dataclass(frozen=True)
class BarGrid:
    """Where each bar unit of a song sits: see the module docstring."""

    start: np.ndarray  # int64 ticks where the content starts
    length: np.ndarray  # int64 nominal length in steps (<= max_bar_steps)
    offset: np.ndarray  # int64 padding steps before the content (pickup only)
    ticks_per_beat: int
    steps_per_beat: int

    def __len__(self) -> int:
        return len(self.start)

    def content_steps(self, i: int) -> int:
        return int(self.length[i] - self.offset[i])

    def end_tick(self, i: int) -> int:
        return int(self.start[i]) + self.content_steps(i) * self.ticks_per_beat // \
            self.steps_per_beat

    def masks(self, max_bar_steps: int) -> np.ndarray:
        """float32 (n_bars, max_bar_steps): 1 on the valid steps of each unit."""
        s = np.arange(max_bar_steps)
        return ((s >= self.offset[:, None]) & (s < self.length[:, None])).astype(np.float32)


def step_mask(length: int, offset: int, max_bar_steps: int) -> np.ndarray:
    """float32 (max_bar_steps,): the valid steps of one unit (the models' bar condition)."""
    s = np.arange(max_bar_steps)
    return ((s >= offset) & (s < length)).astype(np.float32)


def split_bar_steps(bar_steps: int, steps_per_beat: int, max_bar_steps: int) -> list[int]:
    """Lengths of the units a bar of `bar_steps` is cut into: whole beats, as even as possible."""
    if bar_steps <= max_bar_steps:
        return [bar_steps]
    n_units = -(-bar_steps // max_bar_steps)
    beats, rest = divmod(bar_steps, steps_per_beat)
    if beats < n_units:  # not enough whole beats (odd meters at a coarse grid): even steps
        base, extra = divmod(bar_steps, n_units)
        return [base + (1 if i < extra else 0) for i in range(n_units)]
    base, extra = divmod(beats, n_units)
    out = [(base + (1 if i < extra else 0)) * steps_per_beat for i in range(n_units)]
    out[-1] += rest
    if max(out) > max_bar_steps:  # a remainder pushed the last unit over: one more unit
        return split_bar_steps(bar_steps, steps_per_beat, max_bar_steps - steps_per_beat)
    return out


def bar_grid(song: Song, spec: BarSpec, end: int | None = None) -> BarGrid:
    """The bar units covering [0, end) of `song` (end: the song's last note end by default)."""
    tpb, spb = song.ticks_per_beat, spec.steps_per_beat
    end = song.end if end is None else end
    bars = song.bars(max(end, 1))
    starts, lengths, offsets = [], [], []
    for i, (s, e, meter) in enumerate(bars):
        nominal = _steps(meter.bar_ticks(tpb), tpb, spb)
        actual = max(_steps(e - s, tpb, spb), 1)
        full = _steps(bars[1][2].bar_ticks(tpb), tpb, spb) if len(bars) > 1 else 0
        if i == 0 and actual < full:
            # A pickup (shorter than the bar after it): right-align in a bar of the next meter.
            units = split_bar_steps(full, spb, spec.max_bar_steps)
            # The pickup's content occupies the tail of the bar; keep only the units it reaches.
            remaining, unit_spans = actual, []
            for u in reversed(units):
                if remaining <= 0:
                    break
                take = min(u, remaining)
                unit_spans.append((u, u - take, take))
                remaining -= take
            tick = s
            for u, off, take in reversed(unit_spans):
                starts.append(tick)
                lengths.append(u)
                offsets.append(off)
                tick += take * tpb // spb
            continue
        units = split_bar_steps(nominal, spb, spec.max_bar_steps)
        tick, left = s, actual
        for u in units:
            if left <= 0:
                break
            take = min(u, left)
            starts.append(tick)
            lengths.append(u)
            offsets.append(0)
            tick += take * tpb // spb
            left -= take
    return BarGrid(np.asarray(starts, np.int64), np.asarray(lengths, np.int64),
                   np.asarray(offsets, np.int64), tpb, spb)


def _steps(ticks: int, tpb: int, spb: int) -> int:
    return int(round(ticks * spb / tpb))


def encode_notes(notes: Sequence[Note], grid: BarGrid, spec: BarSpec) -> np.ndarray:
    """bool (n_bars, 2, max_bar_steps, n_pitches) for one track's notes on `grid`."""
    tpb, spb, S, P = grid.ticks_per_beat, spec.steps_per_beat, spec.max_bar_steps, spec.n_pitches
    n = len(grid)
    out = np.zeros((n, 2, S, P), dtype=bool)
    if n == 0:
        return out
    # One continuous roll over the units' content, then cut: notes crossing bar lines continue.
    content = np.array([grid.content_steps(i) for i in range(n)])
    first = int(grid.start[0])
    total = int(content.sum())
    folded = [Note(nt.start - first, nt.end - first, spec.fold(nt.pitch), nt.velocity)
              for nt in notes if nt.end > first]
    folded = [nt if nt.start >= 0 else Note(0, nt.end, nt.pitch, nt.velocity) for nt in folded]
    onset, active, _ = notes_to_planes(folded, total, tpb, spb)
    lo = spec.low_pitch
    onset, active = onset[:, lo:lo + P], active[:, lo:lo + P]
    pos = 0
    for i in range(n):
        off, c = int(grid.offset[i]), int(content[i])
        out[i, ONSET, off:off + c] = onset[pos:pos + c]
        out[i, ACTIVE, off:off + c] = active[pos:pos + c]
        pos += c
    return out


def encode_song(song: Song, spec: BarSpec, tracks: Sequence[Track] | None = None,
                end: int | None = None) -> tuple[np.ndarray, BarGrid]:
    """bool (n_bars, n_tracks, 2, max_bar_steps, n_pitches) and the grid, for `tracks`
    (default: all tracks of the song)."""
    tracks = list(song.tracks if tracks is None else tracks)
    grid = bar_grid(song, spec, end)
    bars = np.zeros((len(grid), len(tracks), 2, spec.max_bar_steps, spec.n_pitches), bool)
    for k, t in enumerate(tracks):
        bars[:, k] = encode_notes(t.notes, grid, spec)
    return bars, grid


def decode_notes(bars: np.ndarray, grid: BarGrid, spec: BarSpec, velocity: int = 80) -> list[Note]:
    """Notes of one track from (n_bars, 2, max_bar_steps, n_pitches) planes on `grid`.

    Units are joined into one roll first, so a note held across a bar line (active without a
    new onset) comes back as one note."""
    n = len(grid)
    if n == 0:
        return []
    parts_on, parts_ac = [], []
    for i in range(n):
        off, ln = int(grid.offset[i]), int(grid.length[i])
        parts_on.append(bars[i, ONSET, off:ln])
        parts_ac.append(bars[i, ACTIVE, off:ln])
    return planes_to_notes(np.concatenate(parts_on), np.concatenate(parts_ac),
                           grid.ticks_per_beat, spec.steps_per_beat, velocity,
                           start_tick=int(grid.start[0]), pitch_offset=spec.low_pitch)


def encode_bar(notes: Sequence[Note], bar_ticks: int, ticks_per_beat: int, spec: BarSpec,
               offset: int = 0) -> np.ndarray:
    """bool (2, max_bar_steps, n_pitches) for one unit's notes (times relative to its start,
    notes overrunning the end are cut). The streaming path of the live engine."""
    steps = min(_steps(bar_ticks, ticks_per_beat, spec.steps_per_beat) - offset,
                spec.max_bar_steps - offset)
    steps = max(steps, 1)
    folded = [Note(n.start, n.end, spec.fold(n.pitch), n.velocity) for n in notes
              if 0 <= n.start and _steps(n.start, ticks_per_beat, spec.steps_per_beat) < steps]
    onset, active, _ = notes_to_planes(folded, steps, ticks_per_beat, spec.steps_per_beat)
    out = np.zeros((2, spec.max_bar_steps, spec.n_pitches), bool)
    lo = spec.low_pitch
    out[ONSET, offset:offset + steps] = onset[:, lo:lo + spec.n_pitches]
    out[ACTIVE, offset:offset + steps] = active[:, lo:lo + spec.n_pitches]
    return out


def decode_bar(planes: np.ndarray, length: int, ticks_per_beat: int, spec: BarSpec,
               offset: int = 0, velocity: int = 80, start_tick: int = 0,
               transpose: int = 0) -> list[Note]:
    """Notes from one unit's (2, max_bar_steps, n_pitches) planes, times from `start_tick`
    (the content start), pitches moved by `transpose` semitones (folded by octaves into
    MIDI's range)."""
    lo = spec.low_pitch + transpose
    n = spec.n_pitches
    if lo < 0 or lo + n > 128:  # rare: fold each note (a shift of the window would not fit)
        notes = decode_bar(planes, length, ticks_per_beat, spec, offset, velocity, start_tick)
        return [Note(x.start, x.end, fold_octaves(x.pitch + transpose), x.velocity)
                for x in notes]
    return planes_to_notes(planes[ONSET, offset:length], planes[ACTIVE, offset:length],
                           ticks_per_beat, spec.steps_per_beat, velocity, start_tick=start_tick,
                           pitch_offset=lo)


def bar_units(bar_ticks: int, ticks_per_beat: int, spec: BarSpec) -> list[tuple[int, int]]:
    """(tick offset, length in steps) of the units one streamed bar of `bar_ticks` is cut into."""
    steps = max(_steps(bar_ticks, ticks_per_beat, spec.steps_per_beat), 1)
    out, tick = [], 0
    for u in split_bar_steps(steps, spec.steps_per_beat, spec.max_bar_steps):
        out.append((tick, u))
        tick += u * ticks_per_beat // spec.steps_per_beat
    return out
