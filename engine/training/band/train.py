"""Train the band model's chord networks on the chordified chorales, export them to ONNX, write
the card (engine.models.band reads it).

    popmusicnet train band --epochs 30 --hidden 96 --dropout 0.3 --threads 1 --seed 0 --out DIR

Two networks over per-beat melody features (engine.models.band_chords.beat_features), trained
together with cross-entropy on the chord of every beat:
- offline: a bidirectional GRU over the whole melody -> per-beat chord log-probabilities;
- causal: a GRU over the beats heard (a zero "start" step first) whose head reads its state and
  the place in the bar of the *next* beat -> that beat's chord, before any of it is heard.
The epoch kept is the one with the best valid per-beat accuracy of the offline network (its
causal network is kept with it). Then the decoding is chosen on the valid split
(engine.training.band.decoding) and stored in the card.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.fileio import final_name
from engine.models.band_chords import N_CHORDS, N_FEATURES, N_POS, causal_inputs
from engine.training.common import ProgressLog, pick_device, seed_everything



class OfflineChords(nn.Module):
    def __init__(self, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.inp = nn.Linear(N_FEATURES, hidden)
        self.rnn = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, N_CHORDS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.drop(torch.relu(self.inp(x))))
        return torch.log_softmax(self.out(self.drop(h)), dim=-1)


class CausalChords(nn.Module):
    def __init__(self, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.inp = nn.Linear(N_FEATURES, hidden)
        self.rnn = nn.GRU(hidden, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(hidden + N_POS, hidden), nn.ReLU(),
                                  nn.Linear(hidden, N_CHORDS))

    def step(self, x, next_pos, h):
        out, h_out = self.rnn(self.drop(torch.relu(self.inp(x))), h)
        return torch.log_softmax(self.head(torch.cat([out, next_pos], -1)), dim=-1), h_out

    def forward(self, x, next_pos, h):
        return self.step(x, next_pos, h)


class CausalHead(nn.Module):
    def __init__(self, causal: CausalChords) -> None:
        super().__init__()
        self.head = causal.head

    def forward(self, h, next_pos):
        return torch.log_softmax(self.head(torch.cat([h[0], next_pos], -1)), dim=-1)


def _batch(pieces, idx):
    T = max(len(pieces[i].y) for i in idx)
    B = len(idx)
    x = np.zeros((B, T, N_FEATURES), np.float32)
    xc = np.zeros((B, T, N_FEATURES), np.float32)
    pos = np.zeros((B, T, N_POS), np.float32)
    y = np.full((B, T), -100, np.int64)
    for b, i in enumerate(idx):
        p = pieces[i]
        n = len(p.y)
        x[b, :n] = p.x
        xc[b, :n], pos[b, :n] = causal_inputs(p.x)
        y[b, :n] = p.y
    return (torch.from_numpy(x), torch.from_numpy(xc), torch.from_numpy(pos),
            torch.from_numpy(y))


def accuracy(pred: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    """(right, beats) over the beats that have a chord (a prediction of "none" is wrong)."""
    m = y > 0
    return int((pred[m] == y[m]).sum()), int(m.sum())


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def predict_offline(model: OfflineChords, pieces) -> list[np.ndarray]:
    model.eval()
    dev = _device(model)
    with torch.no_grad():
        return [model(torch.from_numpy(p.x[None]).to(dev))[0].cpu().numpy() for p in pieces]


def predict_causal(model: CausalChords, pieces) -> list[np.ndarray]:
    model.eval()
    dev = _device(model)
    out = []
    with torch.no_grad():
        for p in pieces:
            xin, pos = causal_inputs(p.x)
            h = torch.zeros(1, 1, model.rnn.hidden_size, device=dev)
            lp, _ = model(torch.from_numpy(xin[None]).to(dev), torch.from_numpy(pos[None]).to(dev),
                          h)
            out.append(lp[0].cpu().numpy())
    return out


def beat_accuracy(logps, pieces) -> float:
    r = n = 0
    for lp, p in zip(logps, pieces):
        a, b = accuracy(lp[:, 1:].argmax(axis=1) + 1, p.y)
        r, n = r + a, n + b
    return r / max(n, 1)


def train(args: argparse.Namespace) -> Path:
    from engine.training.band.data import load_chord_pieces

    torch.set_num_threads(max(1, args.threads))
    seed_everything(args.seed)
    log = ProgressLog()
    device = pick_device(args.device)  # a wrong --device fails before the data is read
    log.emit("device", device=str(device))
    pieces = load_chord_pieces()
    tr = [p for p in pieces if p.split == "train"]
    va = [p for p in pieces if p.split == "valid"]
    if not tr or not va:
        raise ValueError("no chord data (train and valid splits are both needed)")
    log.emit("data", train=len(tr), valid=len(va), beats=sum(len(p.y) for p in tr))
    off = OfflineChords(args.hidden, args.dropout).to(device)
    cau = CausalChords(args.hidden, args.dropout).to(device)
    opt = torch.optim.Adam([*off.parameters(), *cau.parameters()], lr=args.lr)
    loss_fn = nn.NLLLoss(ignore_index=-100)
    rng = np.random.default_rng(args.seed)
    best = (-1.0, None)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        off.train()
        cau.train()
        order = rng.permutation(len(tr))
        tot = 0.0
        for k in range(0, len(order), args.batch):
            x, xc, pos, y = (t.to(device) for t in _batch(tr, order[k:k + args.batch]))
            lo = off(x)
            lc, _ = cau(xc, pos, torch.zeros(1, len(y), args.hidden, device=device))
            loss = loss_fn(lo.reshape(-1, N_CHORDS), y.reshape(-1)) + \
                loss_fn(lc.reshape(-1, N_CHORDS), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_([*off.parameters(), *cau.parameters()], 1.0)
            opt.step()
            tot += float(loss.detach())
        va_off = beat_accuracy(predict_offline(off, va), va)
        va_cau = beat_accuracy(predict_causal(cau, va), va)
        log.epoch("chords", epoch, args.epochs, {"train": tot / max(1, len(order) // args.batch),
                                                  "valid_acc": va_off, "valid_acc_causal": va_cau},
                  t0)
        if va_off > best[0]:
            best = (va_off, ({k: v.clone() for k, v in off.state_dict().items()},
                             {k: v.clone() for k, v in cau.state_dict().items()}, epoch, va_cau))
        if time.perf_counter() - t0 > args.minutes * 60:
            break
    off.load_state_dict(best[1][0])
    cau.load_state_dict(best[1][1])
    off, cau = off.cpu(), cau.cpu()  # exported and checked on the CPU
    from engine.training.band.export import export

    path = export(off, cau, Path(args.out), name=args.name, hidden=args.hidden,
                  decoding={"change_penalty": 0.0, "final_bonus": 0.0},  # chosen below
                  training={"command": "popmusicnet train band " + " ".join(
                      f"--{k.replace('_', '-')} {v}" for k, v in
                      (("epochs", args.epochs), ("hidden", args.hidden), ("lr", args.lr),
                       ("batch", args.batch), ("dropout", args.dropout), ("threads", args.threads), ("seed", args.seed),
                       ("minutes", args.minutes), ("out", final_name(args.out)))),
                      "data": "music21 Bach chorales chordified per beat "
                              "(engine.training.band.data), split by hymn tune",
                      "pieces": {"train": len(tr), "valid": len(va)},
                      "best_epoch": best[1][2], "seconds": round(time.perf_counter() - t0, 1)},
                  metrics={"valid_beat_accuracy": round(best[0], 4),
                           "valid_beat_accuracy_causal": round(best[1][3], 4),
                           })
    from engine.training.band.decoding import choose

    res = choose(path)
    log.emit("decoding", **{k: v for k, v in res.items() if k != "grid"})
    log.emit("done", card=str(path))
    print(json.dumps({"event": "card", "path": final_name(path)}))
    return path
