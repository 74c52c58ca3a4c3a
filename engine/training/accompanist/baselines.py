"""Two baselines for the accompaniment's frame-level NLL, trained on the same key-normalised train
split (same pitch windows, same +-transpose augmentation, early stopping on the same valid split):

- FrequencyBaseline: p(pitch active) per role and pitch, the training frequency (no context).
- LSTMBaseline: a plain LSTM reading melody frames (onset/active in the melody window, plus the
  step's position in its bar) and emitting the accompaniment's active frame at the same step,
  as in the Rajaraman slides (melody frames -> accompaniment frames).

A "frame" is one valid step (bar padding removed) of a piece; its NLL is the Bernoulli NLL summed
over every role's active-plane pitches: nats per frame.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine.evaluation.metrics import bernoulli_nll
from engine.representation import ACTIVE, ONSET
from engine.training.accompanist.data import PieceBars, shift_planes

log = logging.getLogger(__name__)


def piece_frames(p: PieceBars, shift: int = 0, drums: list[bool] | None = None):
    """(melody input (N, 2P + S), accompaniment active (N, R, P)) over the valid steps."""
    bars = p.bars
    if shift:
        bars = np.stack([bars[:, k] if (drums and drums[k]) else shift_planes(bars[:, k], shift)
                         for k in range(bars.shape[1])], axis=1)
    T, K, _, S, P = bars.shape
    valid = p.masks > 0  # (T, S)
    pos = np.broadcast_to(np.eye(S, dtype=np.float32), (T, S, S))
    mel = np.concatenate([bars[:, 0, ONSET], bars[:, 0, ACTIVE]], axis=2).astype(np.float32)
    x = np.concatenate([mel, pos], axis=2)[valid]
    y = bars[:, 1:, ACTIVE].transpose(0, 2, 1, 3)[valid].astype(np.float32)  # (N, R, P)
    return x, y


class FrequencyBaseline:
    def fit(self, pieces: list[PieceBars]) -> FrequencyBaseline:
        ys = np.concatenate([piece_frames(p)[1] for p in pieces])
        self.p = np.clip(ys.mean(axis=0), 1e-4, 1 - 1e-4)
        return self

    def nll_per_frame(self, pieces: list[PieceBars]) -> float:
        tot, n = 0.0, 0
        for p in pieces:
            y = piece_frames(p)[1]
            tot += float(bernoulli_nll(self.p[None], y).sum())
            n += len(y)
        return tot / max(n, 1)


class _LSTM(nn.Module):
    def __init__(self, n_in: int, n_out: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_in, hidden, batch_first=True)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.out(self.lstm(x)[0])


class LSTMBaseline:
    def __init__(self, hidden: int = 128, epochs: int = 30, lr: float = 2e-3, batch: int = 32,
                 transpose: int = 2, patience: int = 4, seed: int = 0, window: int = 128) -> None:
        self.hidden, self.epochs, self.lr, self.batch, self.window = hidden, epochs, lr, batch, window
        self.transpose, self.patience, self.seed = transpose, patience, seed

    def _batches(self, pieces, shifts, drums, rng=None):
        # Training: one random shift per piece and epoch (the VAE stage's augmentation, at its
        # cost), cut into windows of `window` frames so an epoch has enough steps. Evaluation:
        # whole pieces.
        frames = [piece_frames(p, int(rng.choice(shifts)) if rng is not None else 0, drums)
                  for p in pieces]
        if rng is not None:
            w = self.window
            frames = [(x[i:i + w], y[i:i + w]) for x, y in frames for i in range(0, len(x), w)]
        order = rng.permutation(len(frames)) if rng is not None else np.arange(len(frames))
        for b0 in range(0, len(frames), self.batch):
            chunk = [frames[i] for i in order[b0:b0 + self.batch]]
            T = max(len(x) for x, _ in chunk)
            X = np.zeros((len(chunk), T, chunk[0][0].shape[1]), np.float32)
            Y = np.zeros((len(chunk), T, chunk[0][1].shape[1] * chunk[0][1].shape[2]), np.float32)
            M = np.zeros((len(chunk), T), np.float32)
            for i, (x, y) in enumerate(chunk):
                X[i, :len(x)], Y[i, :len(x)], M[i, :len(x)] = x, y.reshape(len(y), -1), 1
            yield torch.from_numpy(X), torch.from_numpy(Y), torch.from_numpy(M)

    def _loss(self, X, Y, M):
        logits = self.model(X)
        nll = F.binary_cross_entropy_with_logits(logits, Y, reduction="none").sum(dim=2)
        return (nll * M).sum(), M.sum()

    def fit(self, train: list[PieceBars], valid: list[PieceBars], drums: list[bool],
            progress=None) -> LSTMBaseline:
        torch.manual_seed(self.seed)
        # one thread: small batches gain nothing from more, and beside another job two threads
        # ran 4x slower here (and made the early-stopping point vary with the machine)
        torch.set_num_threads(1)
        rng = np.random.default_rng(self.seed)
        x, y = piece_frames(train[0])
        self.model = _LSTM(x.shape[1], y.shape[1] * y.shape[2], self.hidden)
        # start from the frequency model (output bias = training log-odds), as any fair
        # baseline should: the LSTM then only has to learn what the melody adds
        freq = FrequencyBaseline().fit(train).p.reshape(-1)
        with torch.no_grad():
            self.model.out.bias.copy_(torch.from_numpy(np.log(freq / (1 - freq))).float())
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        shifts = list(range(-self.transpose, self.transpose + 1))
        best, best_state, bad = float("inf"), None, 0
        for epoch in range(self.epochs):
            self.model.train()
            for X, Y, M in self._batches(train, shifts, drums, rng):
                tot, n = self._loss(X, Y, M)
                opt.zero_grad()
                (tot / n).backward()
                opt.step()
            v = self.nll_per_frame(valid)
            if progress is not None:
                progress("lstm_baseline", epoch, v)
            if v < best - 1e-4:
                best, best_state, bad = v, copy.deepcopy(self.model.state_dict()), 0
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return self

    @torch.no_grad()
    def nll_per_frame(self, pieces: list[PieceBars]) -> float:
        self.model.eval()
        tot, n = 0.0, 0.0
        for X, Y, M in self._batches(pieces, [0], None):
            t, m = self._loss(X, Y, M)
            tot += float(t)
            n += float(m)
        return tot / max(n, 1.0)
