"""The music model: Song / Track / Note, tempo and meter maps, pianorolls, transposition, key.

Plain Python + numpy; no I/O, no Qt, no torch. Every other part of the program (MIDI files, the
synth, the models, the realtime engine, the editor) speaks this model.

Conventions (documented defaults, as note-seq does):
- Time is in integer ticks, `Song.ticks_per_beat` per quarter note (default 480).
- Lacking a tempo change, 120 BPM is assumed; lacking a time signature, 4/4 is assumed.
- A bar starts at every time-signature change and then every bar length after it. A pickup
  (anacrusis) is a short first bar, written as its own meter (e.g. 1/4 at tick 0, then 4/4), which
  is how MIDI files carry it; `Song.pickup_ticks` reports it.
- Pianorolls count steps per quarter note (`steps_per_beat`, default 4 = sixteenth notes).
  A roll has two planes: `onset` (a note starts in this step) and `active` (a note sounds in this
  step). Two repeated notes of one pitch stay two notes because the second has its own onset.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

DEFAULT_TPB = 480
DEFAULT_BPM = 120.0
N_PITCHES = 128

ROLE_MELODY = "melody"
ROLE_ACCOMPANIMENT = "accompaniment"
ROLE_OTHER = "other"
ROLES = (ROLE_MELODY, ROLE_ACCOMPANIMENT, ROLE_OTHER)

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def pitch_name(pitch: int) -> str:
    """MIDI 60 -> 'C4'."""
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


def fold_octaves(pitch: int, low: int = 0, high: int = N_PITCHES - 1) -> int:
    """`pitch` moved by whole octaves into [low, high] (a window at least an octave wide; by
    default MIDI's 0..127)."""
    while pitch < low:
        pitch += 12
    while pitch > high:
        pitch -= 12
    return pitch


@dataclass(frozen=True, slots=True, order=True)
class Note:
    """One note. `start` and `end` in ticks, `end > start`; `pitch` and `velocity` MIDI 0-127."""

    start: int
    end: int
    pitch: int
    velocity: int = 80

    def __post_init__(self) -> None:
        if not 0 <= self.pitch <= 127:
            raise ValueError(f"pitch must be in range 0..127, got {self.pitch}")
        if not 0 <= self.velocity <= 127:
            raise ValueError(f"velocity must be in range 0..127, got {self.velocity}")
        if self.start < 0:
            raise ValueError(f"start must be >= 0, got {self.start}")
        if self.end <= self.start:
            raise ValueError(f"end must be after start, got {self.start}..{self.end}")

    @property
    def duration(self) -> int:
        return self.end - self.start

    def shifted(self, ticks: int = 0, semitones: int = 0) -> Note:
        return dataclasses.replace(self, start=self.start + ticks, end=self.end + ticks,
                                   pitch=self.pitch + semitones)


@dataclass(frozen=True, slots=True)
class TempoChange:
    tick: int
    bpm: float

    def __post_init__(self) -> None:
        if not 1.0 <= self.bpm <= 1000.0:
            raise ValueError(f"tempo must be in range 1..1000 BPM, got {self.bpm:g}")


@dataclass(frozen=True, slots=True)
class MeterChange:
    tick: int
    numerator: int = 4
    denominator: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.numerator <= 64:
            raise ValueError(f"meter numerator must be in range 1..64, got {self.numerator}")
        if self.denominator not in (1, 2, 4, 8, 16, 32, 64):
            raise ValueError(f"meter denominator must be a power of two, got {self.denominator}")

    def bar_ticks(self, ticks_per_beat: int) -> int:
        """Length of one bar in ticks (beats are quarter notes: 6/8 is 3 quarters)."""
        return self.numerator * ticks_per_beat * 4 // self.denominator

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass(slots=True)
class Track:
    """A named part: an instrument (GM program or drums) playing notes, with a musical role."""

    name: str = ""
    program: int = 0
    is_drum: bool = False
    role: str = ROLE_OTHER
    notes: list[Note] = field(default_factory=list)
    volume: int = 100  # MIDI CC7, 0-127
    pan: int = 64  # MIDI CC10, 0-127

    def __post_init__(self) -> None:
        if not 0 <= self.program <= 127:
            raise ValueError(f"program must be in range 0..127, got {self.program}")
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")

    def sort(self) -> None:
        self.notes.sort()

    @property
    def end(self) -> int:
        return max((n.end for n in self.notes), default=0)

    def pitch_range(self) -> tuple[int, int] | None:
        pitches = [n.pitch for n in self.notes]
        return (min(pitches), max(pitches)) if pitches else None


@dataclass(slots=True)
class Song:
    tracks: list[Track] = field(default_factory=list)
    ticks_per_beat: int = DEFAULT_TPB
    tempos: list[TempoChange] = field(default_factory=lambda: [TempoChange(0, DEFAULT_BPM)])
    meters: list[MeterChange] = field(default_factory=lambda: [MeterChange(0, 4, 4)])
    title: str = ""

    def __post_init__(self) -> None:
        if self.ticks_per_beat <= 0:
            raise ValueError(f"ticks_per_beat must be positive, got {self.ticks_per_beat}")
        self.normalise_maps()

    # -- maps ---------------------------------------------------------------------------------
    def normalise_maps(self) -> None:
        """Sort tempo and meter maps, keep the last change at each tick, and make sure both
        start at tick 0 (defaults: 120 BPM, 4/4; a first meter after 0 is moved to 0)."""
        self.tempos = _dedupe_by_tick(self.tempos)
        if not self.tempos or self.tempos[0].tick > 0:
            first = self.tempos[0].bpm if self.tempos else DEFAULT_BPM
            self.tempos.insert(0, TempoChange(0, first if self.tempos else DEFAULT_BPM))
        self.meters = _dedupe_by_tick(self.meters)
        if not self.meters:
            self.meters = [MeterChange(0, 4, 4)]
        elif self.meters[0].tick > 0:
            self.meters[0] = dataclasses.replace(self.meters[0], tick=0)
        # Drop changes that repeat the meter in force.
        kept = [self.meters[0]]
        for m in self.meters[1:]:
            if (m.numerator, m.denominator) != (kept[-1].numerator, kept[-1].denominator):
                kept.append(m)
        self.meters = kept

    @property
    def end(self) -> int:
        """Tick of the last note end (0 for an empty song)."""
        return max((t.end for t in self.tracks), default=0)

    @property
    def n_notes(self) -> int:
        return sum(len(t.notes) for t in self.tracks)

    def meter_at(self, tick: int) -> MeterChange:
        i = bisect.bisect_right([m.tick for m in self.meters], tick) - 1
        return self.meters[max(i, 0)]

    def tempo_at(self, tick: int) -> float:
        i = bisect.bisect_right([t.tick for t in self.tempos], tick) - 1
        return self.tempos[max(i, 0)].bpm

    def bar_starts(self, end: int | None = None) -> list[int]:
        """Ticks of every bar line from 0 up to and including the bar that contains `end`.

        A meter change that falls inside a bar starts a new bar there (the previous bar is short).
        """
        end = self.end if end is None else end
        starts: list[int] = []
        for i, m in enumerate(self.meters):
            stop = self.meters[i + 1].tick if i + 1 < len(self.meters) else max(end, m.tick + 1)
            length = max(m.bar_ticks(self.ticks_per_beat), 1)  # never a bar of 0 ticks
            tick = m.tick
            while tick < stop:
                starts.append(tick)
                tick += length
        return starts

    def bars(self, end: int | None = None) -> list[tuple[int, int, MeterChange]]:
        """(start, end, meter) of every bar covering [0, end)."""
        starts = self.bar_starts(end)
        out = []
        for i, s in enumerate(starts):
            m = self.meter_at(s)
            nominal = s + m.bar_ticks(self.ticks_per_beat)
            e = min(nominal, starts[i + 1]) if i + 1 < len(starts) else nominal
            out.append((s, e, m))
        return out

    @property
    def pickup_ticks(self) -> int:
        """Length of a pickup bar: a first bar shorter than the bar that follows it, else 0."""
        bars = self.bars(max(self.end, 1))
        if len(bars) >= 2:
            first = bars[0][1] - bars[0][0]
            second = bars[1][1] - bars[1][0]
            if first < second:
                return first
        return 0

    def tick_to_seconds(self, tick: float) -> float:
        seconds = 0.0
        for i, t in enumerate(self.tempos):
            nxt = self.tempos[i + 1].tick if i + 1 < len(self.tempos) else None
            if nxt is not None and tick > nxt:
                seconds += (nxt - t.tick) * 60.0 / (t.bpm * self.ticks_per_beat)
                continue
            return seconds + (tick - t.tick) * 60.0 / (t.bpm * self.ticks_per_beat)
        return seconds

    def seconds_to_tick(self, seconds: float) -> float:
        elapsed = 0.0
        for i, t in enumerate(self.tempos):
            spt = 60.0 / (t.bpm * self.ticks_per_beat)
            nxt = self.tempos[i + 1].tick if i + 1 < len(self.tempos) else None
            if nxt is not None:
                span = (nxt - t.tick) * spt
                if seconds > elapsed + span:
                    elapsed += span
                    continue
            return t.tick + (seconds - elapsed) / spt
        return 0.0

    @property
    def duration_seconds(self) -> float:
        return self.tick_to_seconds(self.end)

    # -- tracks -------------------------------------------------------------------------------
    def tracks_with_role(self, role: str) -> list[Track]:
        return [t for t in self.tracks if t.role == role]

    def melody_track(self) -> Track | None:
        """The track marked as melody, else the highest-pitched non-drum track with notes."""
        marked = self.tracks_with_role(ROLE_MELODY)
        if marked:
            return marked[0]
        candidates = [t for t in self.tracks if t.notes and not t.is_drum]
        if not candidates:
            return None
        return max(candidates, key=lambda t: float(np.mean([n.pitch for n in t.notes])))

    def copy(self) -> Song:
        return copy.deepcopy(self)

    def transposed(self, semitones: int) -> Song:
        """A copy with every pitched (non-drum) note moved by `semitones`.

        Raises ValueError if a note would leave MIDI 0..127.
        """
        out = self.copy()
        for track in out.tracks:
            if track.is_drum:
                continue
            track.notes = [n.shifted(semitones=semitones) for n in track.notes]
        return out


def _dedupe_by_tick(items: Iterable) -> list:
    """Sorted by tick, the last item given at each tick kept."""
    return list({it.tick: it for it in sorted(items, key=lambda x: x.tick)}.values())


# -- pianoroll planes --------------------------------------------------------------------------
def tick_to_step(tick: float, ticks_per_beat: int, steps_per_beat: int) -> int:
    return int(round(tick * steps_per_beat / ticks_per_beat))


def step_to_tick(step: int, ticks_per_beat: int, steps_per_beat: int) -> int:
    return int(round(step * ticks_per_beat / steps_per_beat))


def notes_to_planes(notes: Sequence[Note], n_steps: int, ticks_per_beat: int,
                    steps_per_beat: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantise notes to the step grid: (onset, active, velocity) arrays of shape (n_steps, 128).

    A note shorter than one step still gets one step. Notes past `n_steps` are cut.
    """
    onset = np.zeros((n_steps, N_PITCHES), dtype=bool)
    active = np.zeros((n_steps, N_PITCHES), dtype=bool)
    velocity = np.zeros((n_steps, N_PITCHES), dtype=np.uint8)
    for n in notes:
        s = tick_to_step(n.start, ticks_per_beat, steps_per_beat)
        e = max(tick_to_step(n.end, ticks_per_beat, steps_per_beat), s + 1)
        if s >= n_steps:
            continue
        e = min(e, n_steps)
        onset[s, n.pitch] = True
        active[s:e, n.pitch] = True
        velocity[s, n.pitch] = max(velocity[s, n.pitch], n.velocity)
    return onset, active, velocity


def planes_to_notes(onset: np.ndarray, active: np.ndarray, ticks_per_beat: int,
                    steps_per_beat: int = 4, velocity: np.ndarray | int = 80,
                    start_tick: int = 0, pitch_offset: int = 0) -> list[Note]:
    """Turn (steps, pitches) onset/active planes back into notes.

    A note starts at an onset, or where a pitch becomes active without one; it lasts while the
    pitch stays active and no new onset starts. `pitch_offset` maps column 0 to that MIDI pitch
    (models use a reduced pitch range).
    """
    onset = np.asarray(onset, dtype=bool)
    active = np.asarray(active, dtype=bool) | onset
    n_steps, n_pitches = active.shape
    prev = np.zeros((1, n_pitches), dtype=bool)
    starts = onset | (active & ~np.vstack([prev, active[:-1]]))
    notes: list[Note] = []
    # Only the pitches that start a note, each column read as Python lists: the live engine
    # decodes every bar and voice through here, and element-wise numpy access cost ~0.3 ms a bar.
    for p in np.flatnonzero(starts.any(axis=0)).tolist():
        col_start, col_active = starts[:, p].tolist(), active[:, p].tolist()
        for s in np.flatnonzero(starts[:, p]).tolist():
            e = s + 1
            while e < n_steps and col_active[e] and not col_start[e]:
                e += 1
            vel = int(velocity[s, p]) if isinstance(velocity, np.ndarray) else int(velocity)
            t0 = start_tick + step_to_tick(s, ticks_per_beat, steps_per_beat)
            # At fewer ticks per beat than steps two steps can round to one tick: a note keeps
            # at least one tick.
            t1 = max(start_tick + step_to_tick(e, ticks_per_beat, steps_per_beat), t0 + 1)
            notes.append(Note(t0, t1, p + pitch_offset, vel if vel > 0 else 80))
    notes.sort()
    return notes


# -- keys --------------------------------------------------------------------------------------
# Krumhansl-Kessler key profiles (Krumhansl 1990, "Cognitive Foundations of Musical Pitch"), used
# with the Krumhansl-Schmuckler method: correlate the duration-weighted pitch-class histogram with
# the profile rotated to each of the 24 keys, take the best (key_scores, in one matrix product).
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor plus the raised leading tone


@dataclass(frozen=True, slots=True)
class Key:
    tonic: int  # pitch class 0-11
    mode: str  # "major" | "minor"
    confidence: float = 0.0  # Pearson r of the winning profile

    def __str__(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"

    @property
    def scale_pitch_classes(self) -> frozenset[int]:
        scale = MAJOR_SCALE if self.mode == "major" else MINOR_SCALE
        return frozenset((self.tonic + d) % 12 for d in scale)

    def normalising_shift(self) -> int:
        """Semitones in -6..+5 that move this key to C major or A minor."""
        return ((0 if self.mode == "major" else 9) - self.tonic + 6) % 12 - 6

    def tonic_shift(self) -> int:
        """Semitones in -6..+5 that move this key's tonic to C (C major or C minor)."""
        return (-self.tonic + 6) % 12 - 6


def pitch_class_histogram(notes: Iterable[Note]) -> np.ndarray:
    """(12,) the notes' durations summed per pitch class."""
    pd = np.array([(n.pitch % 12, n.duration) for n in notes], np.int64).reshape(-1, 2)
    return np.bincount(pd[:, 0], weights=pd[:, 1], minlength=12).astype(np.float64)


_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def parse_key(text: str) -> Key:
    """'D major', 'F# minor', 'Bb', 'Am', 'c minor' -> Key (major unless it says minor or ends in
    'm'). ValueError names what was not understood."""
    words = text.strip().replace("-", " ").split()
    if not words or words[0][0].upper() not in _LETTERS:
        raise ValueError(f"not a key: {text!r} (e.g. 'D major', 'F# minor', 'Bb', 'Am')")
    name, rest = words[0], [w.lower() for w in words[1:]]
    tonic = _LETTERS[name[0].upper()]
    i = 1
    while i < len(name) and name[i] in "#b":
        tonic += 1 if name[i] == "#" else -1
        i += 1
    tail = name[i:].lower()
    mode = "major"
    if tail in ("m", "min", "minor") or rest[:1] in (["minor"], ["min"], ["m"]):
        mode = "minor"
    elif tail not in ("", "maj", "major") or rest[:1] not in ([], ["major"], ["maj"]) \
            or len(rest) > 1:
        raise ValueError(f"not a key: {text!r} (e.g. 'D major', 'F# minor', 'Bb', 'Am')")
    return Key(tonic % 12, mode, 1.0)


# Aarden-Essen key profiles (Aarden 2003), made from the Essen collection of folk melodies: the
# profiles for a melody alone, and the default of music21's key analysis.
AARDEN_MAJOR = np.array([17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248,
                         22.062, 0.145624, 8.15494, 0.232998, 4.95122])
AARDEN_MINOR = np.array([18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494,
                         18.6161, 4.56621, 1.93186, 7.37619, 1.75623])
KEY_PROFILES = {"kk": (_KK_MAJOR, _KK_MINOR), "aarden": (AARDEN_MAJOR, AARDEN_MINOR)}
# every key's profile, centred (major tonics 0-11, then minor), for key_scores
_ROTATIONS = {k: np.array([np.roll(p, t) - p.mean() for p in pair for t in range(12)])
              for k, pair in KEY_PROFILES.items()}
# A melody's last note is its tonic far more often than its share of the duration says (a
# cadence): a key whose tonic it is gains this much correlation. Measured by
# scripts/key_finder_check.py on 294 folk tunes with a notated key (none of the evaluation's
# tunes) and the 333 train and valid chorale sopranos (against the key of the whole four-part
# score), the tonic was right for 77.9% / 264 with the Aarden-Essen profiles alone, 77.9% / 273
# with the last note counted again into the histogram at 0.1 of the duration (the finder before
# this one; at 0.2: 75.9% / 263: the profiles weigh the dominant above the tonic, so a heavy last
# note pulls towards the key it is the fifth of), and with this bonus 84.7% / 298 at 0.1, 86.4%
# / 298 at 0.2, 84.4% / 294 at 0.3.
FINAL_TONIC_BONUS = 0.2


# A melody still being played has no last note, but it has a first one, and that is its tonic
# more often than its share of the duration says too. Measured by scripts/key_finder_check.py
# as a live session uses the finder (`heard_key` re-estimated at every bar heard over the first
# LIVE_KEY_BARS, then kept): the share of bars played in the right tonic on the train and valid
# chorales / the folk tunes kept for choosing, locked after 8 bars, was 55.3% / 59.1% with the
# profiles alone, 57.1% / 61.1% with this bonus at 0.05, 58.8% / 61.5% at 0.1, 58.3% / 60.1%
# at 0.15, 56.9% / 57.5% at 0.2 (the Krumhansl-Kessler profiles alone: 45.6% / 52.1%).
FIRST_TONIC_BONUS = 0.1
# A live session re-estimates the key over this many bars heard, then keeps it: a key changing
# later is heard as the band modulating where the tune did not. With the first-note bonus:
# 58.8% / 61.5% of the bars in the right tonic (as above) locked after 8 bars, 58.7% / 64.1%
# after 12, 58.4% / 63.9% never locked.
LIVE_KEY_BARS = 12


def melody_key(notes: Sequence[Note], *, final: bool = True,
               first_pitch: int | None = None) -> Key | None:
    """The key of a melody: Krumhansl-Schmuckler with the Aarden-Essen profiles (made from folk
    melodies); when `final` (a melody heard to its end; a melody still being played has no last
    note yet) the keys whose tonic is its last note score FINAL_TONIC_BONUS more; given
    `first_pitch` (the melody's first note, where `notes` are heard from its start) the keys
    whose tonic it is score FIRST_TONIC_BONUS more."""
    last = (max(notes, key=lambda n: (n.start, -n.pitch)).pitch if final and notes else None)
    return heard_key(pitch_class_histogram(notes), first_pitch=first_pitch, last_pitch=last)


def heard_key(hist: np.ndarray, *, first_pitch: int | None = None,
              last_pitch: int | None = None) -> Key | None:
    """`melody_key` from a melody's pitch-class histogram (durations) and, where known, its
    first and last notes."""
    if np.count_nonzero(hist) < 2 or (first_pitch is None and last_pitch is None):
        return key_of_histogram(hist, "aarden")
    r = np.nan_to_num(key_scores(hist, "aarden"), nan=-1.0)
    tonics = np.arange(24) % 12
    score = r.copy()
    if last_pitch is not None:
        score += FINAL_TONIC_BONUS * (tonics == last_pitch % 12)
    if first_pitch is not None:
        score += FIRST_TONIC_BONUS * (tonics == first_pitch % 12)
    i = int(np.argmax(score))
    return Key(i % 12, ("major", "minor")[i // 12], float(r[i]))


def key_scores(hist: np.ndarray, profiles: str = "aarden") -> np.ndarray:
    """(24,) Pearson r of a pitch-class histogram with the profile rotated to each key: the 12
    major tonics from C, then the 12 minor ones (NaN for a flat histogram)."""
    rot, h = _ROTATIONS[profiles], np.asarray(hist, np.float64) - np.mean(hist)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rot @ h) / np.sqrt((rot * rot).sum(axis=1) * (h @ h))


def key_of_histogram(hist: np.ndarray, profiles: str = "aarden") -> Key | None:
    """The key whose rotated profile (KEY_PROFILES) correlates best with the pitch-class
    histogram; None for an empty one, the sounding pitch class (major) for a single one."""
    if np.sum(hist) == 0 or np.count_nonzero(hist) < 2:
        return Key(int(np.argmax(hist)), "major", 0.0) if np.sum(hist) else None
    r = key_scores(hist, profiles)
    return Key(int(r.argmax()) % 12, ("major", "minor")[int(r.argmax()) // 12], float(r.max()))


def estimate_key(notes: Iterable[Note] | Song) -> Key | None:
    """Krumhansl-Schmuckler key estimate from duration-weighted pitch classes with the
    Krumhansl-Kessler profiles (None if no notes); a Song's drum tracks are left out."""
    if isinstance(notes, Song):
        notes = [n for t in notes.tracks if not t.is_drum for n in t.notes]
    return key_of_histogram(pitch_class_histogram(notes), "kk")
