"""Style morphing with the melody LSTM-VAE (numpy + ONNX Runtime; no torch).

A window of `n_bars` bars is read as its melody (`engine.models.melody_tokens`: per 16th step a
rest, a hold or a note-on; the skyline of every pitched track), encoded to a latent (mu), and
latents are interpolated spherically (slerp) between clip A and clip B, or a style centroid (the
mean latent of a style's training windows, stored in the card). The decoder graph decodes a
whole window in one run: at temperature 0 the most likely token at each step (greedy), above 0
a Gumbel-max sample at that temperature. The noise is drawn once per seed and shared by every
latent decoded in a batch, so neighbouring alphas with the same seed differ only where the
model's preferences move: a slider drags smoothly and the same seed always gives the same music.
"""

from __future__ import annotations

import logging
from typing import Union

import numpy as np

from engine.errors import ModelError, UserInputError
from engine.models import melody_tokens as mt
from engine.models.card import ModelCard
from engine.models.genroll import GridSpec, bars_to_song, slerp, song_bars
from engine.music import Song

log = logging.getLogger(__name__)

KIND = "morph"

#: What can be morphed: a Song (its first window), (Song, window), a latent, a style name.
Source = Union[Song, tuple, np.ndarray, str]


class Morpher:
    def __init__(self, card: ModelCard, *, providers: str = "auto") -> None:
        self.card = card
        self.name = card.name
        rep = card.representation
        try:
            self.spec = GridSpec.from_dict(rep["grid"])
            self.n_bars = int(rep["n_bars"])
            self.latent = int(rep["latent"])
            self.hidden = int(rep["hidden"])
            self.vocab = int(rep["melody"]["vocab"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{card.path}: morph card lacks a usable representation ({exc})") from None
        if self.vocab != mt.vocab_size(self.spec.n_pitches):
            raise ModelError(f"{card.path}: melody vocabulary {self.vocab} does not match the "
                             f"grid's {self.spec.n_pitches} pitches")
        self.centroids = {k: np.asarray(v, np.float32) for k, v in rep.get("centroids", {}).items()}
        self.encoder = card.open("encoder", providers=providers)
        self.decoder = card.open("decode", providers=providers)
        self.provider = self.decoder.provider

    @classmethod
    def load(cls, name: str | None = None, *, providers: str = "auto") -> Morpher:
        from engine.models.runtime import load_card

        return cls(load_card(name, kind=KIND), providers=providers)

    @property
    def window_steps(self) -> int:
        return self.n_bars * self.spec.bar_steps

    @property
    def styles(self) -> tuple[str, ...]:
        return tuple(sorted(self.centroids))

    # -- encoding -----------------------------------------------------------------------------
    def song_windows(self, song: Song) -> tuple[np.ndarray, int]:
        """Melody tokens (N, T) of every `n_bars` window of the song (key-normalised, from its
        first whole bar) that has a note, and the key shift."""
        bars, shift = song_bars(song, self.spec)
        n = len(bars)
        if n < self.n_bars:
            bars = np.concatenate([bars, np.zeros((self.n_bars - n, *bars.shape[1:]), bars.dtype)])
        wins = [bars[i:i + self.n_bars].reshape(self.window_steps, -1)
                for i in range(0, len(bars) - self.n_bars + 1, self.n_bars)]
        toks = [mt.from_features(w, self.spec.n_pitches) for w in wins]
        toks = [t for t in toks if (t >= mt.NOTE0).any()]
        if not toks:
            raise UserInputError(f"{song.title or 'the song'} has no notes to morph")
        return np.stack(toks), shift

    def encode_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """(B, T) melody tokens -> mu (B, Z)."""
        return self.encoder.run({"tokens": np.asarray(tokens, np.int64)})["mu"]

    def encode_song(self, song: Song, *, window: int = 0) -> tuple[np.ndarray, int]:
        """Latent (mu) of one window of the song (`window` counts n_bars units of windows with
        notes from the first whole bar) and the song's key shift."""
        wins, shift = self.song_windows(song)
        if not 0 <= window < len(wins):
            raise UserInputError(f"window {window} out of range: the song has {len(wins)} "
                                 f"windows of {self.n_bars} bars")
        return self.encode_tokens(wins[window:window + 1])[0], shift

    def centroid(self, style: str) -> np.ndarray:
        """A style's mean training latent. A name that is part of several styles' names ("folk"
        in "german_folk" and "chinese_folk") gives the mean of their centroids."""
        s = style.lower()
        if s in self.centroids:
            return self.centroids[s]
        hits = [k for k in self.centroids if k.lower().startswith(s)]
        hits = hits or [k for k in self.centroids if s in k.lower()]
        if hits:
            return np.mean([self.centroids[k] for k in hits], axis=0).astype(np.float32)
        raise UserInputError(f"unknown style {style!r} for model {self.name} "
                             f"(styles: {', '.join(self.styles) or 'none'})")

    # -- decoding -----------------------------------------------------------------------------
    def noise(self, seed: int, temperature: float) -> np.ndarray:
        """(T, V) Gumbel draws of the seed times the temperature (zeros at temperature 0)."""
        if temperature <= 0.0:
            return np.zeros((self.window_steps, self.vocab), np.float32)
        u = np.random.default_rng(seed).random((self.window_steps, self.vocab))
        g = -np.log(-np.log(np.clip(u, 1e-12, 1 - 1e-12)))
        return (temperature * g).astype(np.float32)

    def decode(self, z: np.ndarray, *, seed: int = 0, temperature: float = 0.0) -> np.ndarray:
        """Latents (B, Z) -> melody tokens (B, T). temperature 0 = the most likely token at
        each step (greedy), 1 = sampled from the model's distribution."""
        z = np.atleast_2d(np.asarray(z, np.float32))
        noise = np.broadcast_to(self.noise(seed, temperature),
                                (z.shape[0], self.window_steps, self.vocab))
        return self.decoder.run({"z": z, "noise": np.ascontiguousarray(noise)})["tokens"]

    def tokens_to_song(self, tokens: np.ndarray, *, shift: int = 0, bpm: float = 100.0,
                       program: int = 0) -> Song:
        feats = mt.to_features(tokens, self.spec.n_pitches)
        return bars_to_song(feats.reshape(self.n_bars, self.spec.bar_steps, -1), self.spec,
                            shift=shift, bpm=bpm, name="morph", program=program)

    def morph_latent(self, za: np.ndarray, zb: np.ndarray, alpha: float) -> np.ndarray:
        if not 0.0 <= alpha <= 1.0:
            raise UserInputError(f"alpha must be in range 0..1, got {alpha:g}")
        return slerp(za, zb, alpha)

    def morph(self, a: Source, b: Source, alpha: float, *,
              seed: int = 0, steps: int = 1, temperature: float = 0.0, bpm: float | None = None,
              program: int = 0) -> Song:
        """Morph A into B. `steps` = 1: one window at `alpha`; `steps` > 1: windows at alpha
        0, 1/(steps-1), ..., 1 one after the other (a transition from A to B). A and B are Songs
        (their first window), (Song, window index) pairs, latents, or style names. The result
        is in A's key for alpha < 0.5, B's from 0.5 on."""
        za, sa, bpm_a = self._latent_of(a)
        zb, sb, bpm_b = self._latent_of(b)
        if steps < 1:
            raise UserInputError(f"--steps must be at least 1, got {steps}")
        alphas = [alpha] if steps == 1 else list(np.linspace(0.0, 1.0, steps))
        z = np.stack([self.morph_latent(za, zb, float(al)) for al in alphas])
        tokens = self.decode(z, seed=seed, temperature=temperature)
        tempo = bpm or bpm_a or bpm_b or 100.0
        song = None
        per_bar = self.spec.bar_steps
        for i, (al, tok) in enumerate(zip(alphas, tokens)):
            shift = sa if al < 0.5 else sb
            part = self.tokens_to_song(tok, shift=shift, bpm=tempo, program=program)
            if song is None:
                song = part
                song.title = "morph"
                continue
            offset = i * self.n_bars * per_bar * song.ticks_per_beat // self.spec.steps_per_beat
            song.tracks[0].notes.extend(n.shifted(ticks=offset) for n in part.tracks[0].notes)
        assert song is not None
        return song

    def _latent_of(self, x: Source) -> tuple[np.ndarray, int, float | None]:
        if isinstance(x, tuple):  # (song, window)
            z, shift = self.encode_song(x[0], window=int(x[1]))
            return z, shift, x[0].tempos[0].bpm
        if isinstance(x, Song):
            z, shift = self.encode_song(x)
            return z, shift, x.tempos[0].bpm
        if isinstance(x, str):
            return self.centroid(x), 0, None
        z = np.asarray(x, np.float32).reshape(-1)
        if z.shape[0] != self.latent:
            raise UserInputError(f"latent must have {self.latent} values, got {z.shape[0]}")
        return z, 0, None


def changed_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share of notes (note-on tokens: step and pitch) that differ between two decoded
    melodies: |A xor B| / |A or B|."""
    oa, ob = mt.onsets(a), mt.onsets(b)
    union = len(oa | ob)
    return len(oa ^ ob) / union if union else 0.0

