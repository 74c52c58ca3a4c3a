"""The pianoroll window the generator models (morph, GAN bars, continuation) see, shared by their
training and their runtime so the two cannot drift.

One track: every pitched (non-drum) note of a song merged, on a grid of 4 steps per quarter, in a
pitch window of `n_pitches` keys from `low`. Notes outside the window are moved by octaves into it
(the pitch class survives, which is what the style and the harmony hang on). Bars are 16-step units
(4/4, 2/2, or two bars of 2/4) counted after the pickup; the generators write 4/4 bars unless
asked for another meter (`bars_to_song(meter=...)`: 3/4 keeps a bar's first 12 steps).

Key normalisation: songs are transposed to C major / A minor for the models and back to the
user's key afterwards (`engine.music.estimate_key`).

Per step the feature vector is `[onset(P), active(P)]`: a separate onset plane keeps two repeated
notes two notes (ARCHITECTURE.md, Representation). numpy only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from engine.music import (
    Note,
    Song,
    Track,
    estimate_key,
    fold_octaves,
    notes_to_planes,
    planes_to_notes,
    step_to_tick,
    tick_to_step,
)


@dataclass(frozen=True)
class GridSpec:
    steps_per_beat: int = 4
    bar_steps: int = 16
    low: int = 36
    n_pitches: int = 52  # MIDI 36..87: chorale bass to the top of folk tunes after normalising

    @property
    def high(self) -> int:
        return self.low + self.n_pitches - 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GridSpec:
        return cls(**{k: int(d[k]) for k in ("steps_per_beat", "bar_steps", "low", "n_pitches")
                      if k in d})


def fold_pitch(pitch: int, spec: GridSpec) -> int:
    """Move `pitch` by octaves into the spec's window."""
    return fold_octaves(pitch, spec.low, spec.high)


def key_shift(song: Song) -> int:
    """Semitones that take the song to C major / A minor (0 if no key can be estimated)."""
    key = estimate_key(song)
    return 0 if key is None else key.normalising_shift()


def song_planes(song: Song, spec: GridSpec, shift: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """(onset, active, first_bar_step): bool (steps, n_pitches) of all pitched notes merged,
    transposed by `shift`, and the step where the first whole bar starts (after a pickup)."""
    notes = [Note(n.start, n.end, fold_pitch(n.pitch + shift, spec), n.velocity)
             for t in song.tracks if not t.is_drum for n in t.notes]
    n_steps = max(tick_to_step(song.end, song.ticks_per_beat, spec.steps_per_beat), 1)
    onset, active, _ = notes_to_planes(notes, n_steps, song.ticks_per_beat, spec.steps_per_beat)
    sl = slice(spec.low, spec.low + spec.n_pitches)
    first = tick_to_step(song.pickup_ticks, song.ticks_per_beat, spec.steps_per_beat)
    return onset[:, sl], active[:, sl], first


def song_bars(song: Song, spec: GridSpec, normalise_key: bool = True) -> tuple[np.ndarray, int]:
    """Whole bars of the song as features (n_bars, bar_steps, 2 * n_pitches) float32, and the
    key shift applied. A trailing partial bar is padded with silence."""
    shift = key_shift(song) if normalise_key else 0
    onset, active, first = song_planes(song, spec, shift)
    onset, active = onset[first:], active[first:]
    n_bars = max(int(np.ceil(len(onset) / spec.bar_steps)), 1)
    pad = n_bars * spec.bar_steps - len(onset)
    feats = np.concatenate([onset, active], axis=1).astype(np.float32)
    feats = np.pad(feats, ((0, pad), (0, 0)))
    return feats.reshape(n_bars, spec.bar_steps, 2 * spec.n_pitches), shift


def features_to_notes(feats: np.ndarray, spec: GridSpec, ticks_per_beat: int,
                      start_tick: int = 0, shift: int = 0, velocity: int = 80) -> list[Note]:
    """(steps, 2P) [onset | active] (or (steps, P) active only) -> notes, undoing `shift`."""
    feats = np.asarray(feats) > 0.5
    p = spec.n_pitches
    if feats.shape[1] == 2 * p:
        onset, active = feats[:, :p], feats[:, p:]
    else:
        onset, active = np.zeros_like(feats), feats
    notes = planes_to_notes(onset, active, ticks_per_beat, spec.steps_per_beat, velocity,
                            start_tick=start_tick, pitch_offset=spec.low)
    out = []
    for n in notes:
        pitch = n.pitch - shift
        if 0 <= pitch <= 127:
            out.append(Note(n.start, n.end, pitch, n.velocity))
    return out


def meter_bar_steps(meter: tuple[int, int], spec: GridSpec, ticks_per_beat: int = 480) -> int:
    """Steps of one bar of `meter` (numerator, denominator) on the grid (3/4: 12, 6/8: 12)."""
    from engine.errors import UserInputError
    from engine.music import MeterChange

    try:
        m = MeterChange(0, int(meter[0]), int(meter[1]))
    except (TypeError, ValueError, IndexError) as exc:
        raise UserInputError(f"bad meter {meter!r}: {exc}") from None
    steps = tick_to_step(m.bar_ticks(ticks_per_beat), ticks_per_beat, spec.steps_per_beat)
    if steps < 1:
        raise UserInputError(f"meter {m} is shorter than one step of the model's grid")
    return steps


def fit_bars(bars: np.ndarray, steps: int) -> np.ndarray:
    """(n, bar_steps, F) bars -> (n, steps, F): each bar cut to `steps` (3/4 keeps the first 3
    beats of a 4/4 bar) or padded with silence."""
    bars = np.asarray(bars)
    bs = bars.shape[1]
    if steps <= bs:
        return bars[:, :steps]
    return np.pad(bars, ((0, 0), (0, steps - bs), (0, 0)))


def bars_to_song(bars: np.ndarray, spec: GridSpec, *, shift: int = 0, bpm: float = 100.0,
                 name: str = "generated", program: int = 0, title: str = "",
                 meter: tuple[int, int] | None = None) -> Song:
    """(n_bars, steps, F) features -> a one-track Song, 4/4 by default. With `meter`
    (numerator, denominator) the song is in that meter, each bar fitted to its length
    (`fit_bars`) and its notes ending at its bar line."""
    from engine.music import MeterChange, TempoChange

    song = Song(tempos=[TempoChange(0, bpm)], title=title)
    bars = np.asarray(bars)
    if meter is None:
        flat = bars.reshape(-1, bars.shape[-1])
        notes = features_to_notes(flat, spec, song.ticks_per_beat, shift=shift)
    else:
        song.meters = [MeterChange(0, int(meter[0]), int(meter[1]))]
        bars = fit_bars(bars, meter_bar_steps(meter, spec, song.ticks_per_beat))
        notes = []
        for i, bar in enumerate(bars):
            start = step_to_tick(i * bar.shape[0], song.ticks_per_beat, spec.steps_per_beat)
            notes += features_to_notes(bar, spec, song.ticks_per_beat, start_tick=start,
                                       shift=shift)
        notes.sort(key=lambda n: (n.start, n.pitch))
    song.tracks.append(Track(name=name, program=program, notes=notes))
    return song


def note_f1(pred: np.ndarray, true: np.ndarray, p: int) -> tuple[float, float, float]:
    """Precision, recall, F1 of note onsets, (step, pitch) exact, from [onset | active] features
    (an onset counts where the onset plane is set). Empty vs empty is a perfect 1.0."""
    from engine.evaluation.metrics import onset_f1

    po = np.asarray(pred)[..., :p] > 0.5
    to = np.asarray(true)[..., :p] > 0.5
    tp = float(np.sum(po & to))
    n_pred, n_true = float(po.sum()), float(to.sum())
    if n_pred == 0 and n_true == 0:
        return 1.0, 1.0, 1.0
    prec = tp / n_pred if n_pred else 0.0
    rec = tp / n_true if n_true else 0.0
    return prec, rec, onset_f1(po, to, empty=1.0)


def slerp(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """Spherical interpolation (Shoemake 1985; White 2016 for latent spaces); linear when the
    vectors are (anti)parallel or one is zero."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return ((1 - alpha) * a + alpha * b).astype(np.float32)
    cos = np.clip(np.dot(a / na, b / nb), -1.0, 1.0)
    omega = np.arccos(cos)
    if np.sin(omega) < 1e-6:
        return ((1 - alpha) * a + alpha * b).astype(np.float32)
    out = (np.sin((1 - alpha) * omega) * a + np.sin(alpha * omega) * b) / np.sin(omega)
    return out.astype(np.float32)


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Bernoulli probabilities at a temperature: logits divided by it; 0 = the most likely
    value (p > 0.5 -> 1), 1 = unchanged."""
    if temperature == 1.0:
        return probs
    if temperature <= 0.0:
        return (probs > 0.5).astype(np.float32)
    p = np.clip(probs, 1e-6, 1 - 1e-6)
    return (1.0 / (1.0 + np.exp(-np.log(p / (1 - p)) / temperature))).astype(np.float32)
