"""Continue a song bar after bar with the next-frame LSTM (numpy + ONNX Runtime; no torch).

The model reads the song's last bars frame by frame (key-normalised [onset | active] frames,
16 per 4/4 bar), then writes new frames one at a time, each fed back as the next input. Frames
are sampled (seeded Bernoulli; temperature 0 = most likely). Also the bar metrics of the
Rajaraman slides: their Hamming-like accuracy and note F1.
"""

from __future__ import annotations

import logging

import numpy as np

from engine.errors import ModelError, UserInputError
from engine.models.card import ModelCard
from engine.models.genroll import GridSpec, features_to_notes, song_bars, temper
from engine.music import Song, Track, step_to_tick, tick_to_step

log = logging.getLogger(__name__)

KIND = "continuation"


class Continuer:
    def __init__(self, card: ModelCard, *, providers: str = "auto") -> None:
        self.card = card
        self.name = card.name
        rep = card.representation
        try:
            self.spec = GridSpec.from_dict(rep["grid"])
            self.layers, self.hidden = int(rep["layers"]), int(rep["hidden"])
            self.context_bars = int(rep.get("context_bars", 1))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{card.path}: continuation card lacks a usable representation "
                             f"({exc})") from None
        self.step = card.open("step", providers=providers)
        self.provider = self.step.provider
        self.n_features = 2 * self.spec.n_pitches

    @classmethod
    def load(cls, name: str | None = None, *, providers: str = "auto") -> Continuer:
        from engine.models.runtime import load_card

        return cls(load_card(name, kind=KIND), providers=providers)

    def continue_features(self, context: np.ndarray, n_steps: int, *, seed: int = 0,
                          temperature: float = 1.0) -> np.ndarray:
        """context (B, T, F) frames -> (B, n_steps, F) new frames in {0, 1}."""
        context = np.asarray(context, np.float32)
        b = context.shape[0]
        p = self.spec.n_pitches
        h = np.zeros((self.layers, b, self.hidden), np.float32)
        c = np.zeros_like(h)
        probs = None
        for t in range(context.shape[1]):
            r = self.step.run({"x": context[:, t], "h": h, "c": c})
            probs, h, c = r["probs"], r["h_out"], r["c_out"]
        if probs is None:
            raise UserInputError("nothing to continue: the context is empty")
        rng = np.random.default_rng(seed)
        out = np.zeros((b, n_steps, self.n_features), np.float32)
        for t in range(n_steps):
            pr = temper(probs, temperature)
            x = (rng.random(pr.shape, dtype=np.float32) < pr).astype(np.float32)
            x[:, p:] = np.maximum(x[:, p:], x[:, :p])
            out[:, t] = x
            r = self.step.run({"x": x, "h": h, "c": c})
            probs, h, c = r["probs"], r["h_out"], r["c_out"]
        return out

    def continue_song(self, song: Song, n_bars: int, *, seed: int = 0, temperature: float = 1.0,
                      program: int | None = None) -> Song:
        """A copy of `song` with one new track holding `n_bars` bars after its last bar,
        continuing its last `context_bars` bars (in the song's key)."""
        if not 1 <= n_bars <= 64:
            raise UserInputError(f"--bars must be in range 1..64, got {n_bars}")
        bars, shift = song_bars(song, self.spec)
        if not bars.any():
            raise UserInputError(f"{song.title or 'the song'} has no notes to continue")
        # drop trailing empty bars, keep the last context bars
        last = int(np.flatnonzero(bars.reshape(len(bars), -1).any(axis=1))[-1])
        ctx = bars[max(0, last + 1 - self.context_bars):last + 1]
        new = self.continue_features(ctx.reshape(1, -1, self.n_features),
                                     n_bars * self.spec.bar_steps, seed=seed,
                                     temperature=temperature)[0]
        tpb = song.ticks_per_beat
        first = tick_to_step(song.pickup_ticks, tpb, self.spec.steps_per_beat)
        start_step = first + (last + 1) * self.spec.bar_steps
        start = step_to_tick(start_step, tpb, self.spec.steps_per_beat)
        notes = features_to_notes(new, self.spec, tpb, start_tick=start, shift=shift)
        out = song.copy()
        src = out.melody_track()
        prog = program if program is not None else (src.program if src else 0)
        out.tracks.append(Track(name="continuation", program=prog, notes=notes))
        return out


def hamming_accuracy(pred: np.ndarray, true: np.ndarray, n_keys: int = 128) -> float:
    """Rajaraman's metric, mean over frames of (1/N) sum_i |y_i| - |y_i - round(p_i)| with N = 128
    MIDI keys: +1/N per correct note, -1/N per false note, 0 for silence (active planes)."""
    y = np.asarray(true, np.float64).reshape(-1, np.shape(true)[-1])
    r = np.round(np.asarray(pred, np.float64)).reshape(y.shape)
    return float(np.mean(np.sum(np.abs(y) - np.abs(y - r), axis=1) / n_keys))
