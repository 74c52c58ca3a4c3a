"""The band model's baselines, fitted on the same chord labels (numpy, no torch).

- `FrequencyBaseline`: the most frequent chord (train split) for the set of pitch classes the
  melody sounds in the beat's bar; a set never seen in training falls back to the beat's own
  pitch classes, then to the commonest chord of the mode.
- `HmmBaseline`: chords hidden, the melody's per-beat pitch-class durations observed (a
  multinomial per chord, add-one smoothed), chord bigrams (add-one), one model per mode; Viterbi
  over each piece.

Both work in the normalised key (C major / C minor) on the features of engine.models.band_chords.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from engine.models.band_chords import N_CHORDS, N_MEL


def _bar_ids(x: np.ndarray) -> np.ndarray:
    downbeat = x[:, N_MEL] > 0.5
    return np.cumsum(downbeat) - (1 if downbeat[0] else 0)


def _pcset(row: np.ndarray) -> frozenset[int]:
    return frozenset(np.flatnonzero(row[:12] > 0).tolist())


class FrequencyBaseline:
    def fit(self, pieces: Sequence) -> FrequencyBaseline:
        self.by_bar: dict = defaultdict(Counter)
        self.by_beat: dict = defaultdict(Counter)
        self.by_mode: dict = defaultdict(Counter)
        for p in pieces:
            minor = bool(p.x[0, -1] > 0.5)
            for key, i, c in self._keys(p.x, minor):
                if c is None:
                    c = int(p.y[i])
                if c == 0:
                    continue
                self.by_bar[key[0]][c] += 1
                self.by_beat[key[1]][c] += 1
                self.by_mode[minor][c] += 1
        return self

    def _keys(self, x: np.ndarray, minor: bool):
        bars = _bar_ids(x)
        sets = {}
        for b in np.unique(bars):
            rows = x[bars == b]
            sets[b] = frozenset(np.flatnonzero(rows[:, :12].sum(axis=0) > 0).tolist())
        for i in range(len(x)):
            yield ((minor, sets[bars[i]]), (minor, _pcset(x[i]))), i, None

    def predict(self, x: np.ndarray) -> np.ndarray:
        minor = bool(x[0, -1] > 0.5)
        out = np.zeros(len(x), np.int64)
        for (kb, kbeat), i, _ in self._keys(x, minor):
            for table, k in ((self.by_bar, kb), (self.by_beat, kbeat), (self.by_mode, minor)):
                if k in table and table[k]:
                    out[i] = table[k].most_common(1)[0][0]
                    break
        return out


class HmmBaseline:
    def fit(self, pieces: Sequence) -> HmmBaseline:
        C = N_CHORDS
        self.params = {}
        for minor in (False, True):
            ps = [p for p in pieces if bool(p.x[0, -1] > 0.5) == minor] or list(pieces)
            trans = np.ones((C, C))
            init = np.ones(C)
            emit = np.ones((C, 12))
            for p in ps:
                y = p.y
                init[y[0]] += 1
                np.add.at(trans, (y[:-1], y[1:]), 1)
                np.add.at(emit, y, p.x[:, :12])
            self.params[minor] = (np.log(init / init.sum()),
                                  np.log(trans / trans.sum(axis=1, keepdims=True)),
                                  np.log(emit / emit.sum(axis=1, keepdims=True)))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        init, trans, emit = self.params[bool(x[0, -1] > 0.5)]
        obs = x[:, :12] @ emit.T  # (T, C) log-likelihood of the beat's pitch-class durations
        obs[:, 0] = -1e9  # a chord for every beat, as the other models
        T, C = obs.shape
        v = init + obs[0]
        back = np.zeros((T, C), np.int64)
        for t in range(1, T):
            cand = v[:, None] + trans
            back[t] = cand.argmax(axis=0)
            v = cand.max(axis=0) + obs[t]
        path = [int(v.argmax())]
        for t in range(T - 1, 0, -1):
            path.append(int(back[t, path[-1]]))
        return np.array(path[::-1], np.int64)

