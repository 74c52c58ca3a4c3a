"""The three classifier networks (torch; exported to ONNX for the runtime).

- PianorollCNN (the PopMusicNet report): five convolutions whose filters are long in time and
  short in pitch, strided in time, because a pitch rarely changes between neighbouring steps.
- MelodyTransformer (the schuBERT report: a Transformer encoder over per-step binary pitch
  vectors with learned positional embeddings and an FC head), smaller than their 6 layers.
  Attention is written out by hand so the ONNX export never meets PyTorch's fused fast path.
- SpectrogramCNN (the Lil Data report): 4 conv 3x3 + max-pool layers, dense 48, dropout 0.5.
All take a batch of windows and return logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _conv(cin: int, cout: int, k: tuple[int, int], s: tuple[int, int],
          pool: tuple[int, int] | None, dropout: float) -> nn.Sequential:
    pad = ((k[0] - 1) // 2, k[1] // 2)
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, pad), nn.BatchNorm2d(cout), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool2d(pool))
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class PianorollCNN(nn.Module):
    """(B, planes, T, P) onset/active (/one-track) planes -> (B, n_classes) logits."""

    def __init__(self, n_classes: int, window_steps: int = 64, n_pitches: int = 48,
                 width: int = 16, dropout: float = 0.3, in_planes: int = 2) -> None:
        super().__init__()
        w = width  # strided in time and (after the first layer) in pitch, as in the report
        self.features = nn.Sequential(
            _conv(in_planes, w, (8, 3), (2, 1), None, 0.0),
            _conv(w, 2 * w, (8, 3), (2, 2), None, 0.1),
            _conv(2 * w, 3 * w, (4, 3), (2, 2), None, 0.1),
            _conv(3 * w, 4 * w, (4, 3), (2, 2), None, 0.1),
            _conv(4 * w, 4 * w, (4, 3), (1, 1), None, 0.1),
        )
        # max over time (where in the window a figure occurs does not matter), keep pitch
        with torch.no_grad():
            n_flat = self.pool(self.features(
                torch.zeros(1, in_planes, window_steps, n_pitches))).numel()
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(n_flat, 64),
                                  nn.ReLU(), nn.Dropout(dropout), nn.Linear(64, n_classes))

    @staticmethod
    def pool(h: torch.Tensor) -> torch.Tensor:
        return torch.amax(h, dim=2, keepdim=True)  # exports as ReduceMax (adaptive pool won't)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))


class _EncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.norm1(x)
        q, k, v = self.qkv(h).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1)
        y = (self.drop(att) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.ff(self.norm2(x)))


class MelodyTransformer(nn.Module):
    """(B, planes, T, P) -> per-step tokens (the planes' pitch vectors concatenated, grouped
    `group` steps per token) -> pre-norm Transformer encoder -> mean pool -> logits."""

    def __init__(self, n_classes: int, window_steps: int = 64, n_pitches: int = 48,
                 d_model: int = 64, layers: int = 3, heads: int = 4, ff: int = 128,
                 dropout: float = 0.1, group: int = 1, in_planes: int = 2) -> None:
        super().__init__()
        self.group = group
        n_tokens = window_steps // group
        # a third (constant "one track") plane is one learned vector, not 72 more inputs: fed
        # through the token embedding, its constant offset swamped the notes after LayerNorm
        # (measured: every single-track window got the same class)
        self.n_note_planes = min(in_planes, 2)
        self.embed = nn.Linear(self.n_note_planes * n_pitches * group, d_model)
        self.track = nn.Parameter(torch.zeros(1, 1, d_model)) if in_planes > 2 else None
        self.pos = nn.Parameter(torch.randn(1, n_tokens, d_model) * 0.02)
        self.layers = nn.ModuleList(_EncoderLayer(d_model, heads, ff, dropout)
                                    for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t, p = x.shape
        c = self.n_note_planes
        notes = x[:, :c]
        tokens = notes.permute(0, 2, 1, 3).reshape(b, t // self.group, self.group * c * p)
        h = self.embed(tokens) + self.pos
        if self.track is not None:
            flag = x[:, c:c + 1].mean(dim=(1, 2, 3)).reshape(b, 1, 1)  # 1: one track, 0: score
            h = h + flag * self.track
        for layer in self.layers:
            h = layer(h)
        return self.head(self.norm(h).mean(dim=1))


class SpectrogramCNN(nn.Module):
    """(B, 1, n_mels, frames) log-mel windows -> logits (Lil Data: 4 conv+pool, dense 48)."""

    def __init__(self, n_classes: int, n_mels: int = 64, frames: int = 108,
                 channels: tuple[int, ...] = (16, 32, 32, 64), dropout: float = 0.5,
                 time_pool: int = 1) -> None:
        super().__init__()
        # time_pool > 1 averages that many frames first (93 ms frames at 2: half the compute)
        self.time_pool = nn.AvgPool2d((1, time_pool)) if time_pool > 1 else nn.Identity()
        frames = frames // time_pool
        layers: list[nn.Module] = []
        cin = 1
        for c in channels:
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                       nn.MaxPool2d(2)]
            cin = c
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            n_flat = self.pool(self.features(torch.zeros(1, 1, n_mels, frames))).numel()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(n_flat, 48), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(48, n_classes))

    @staticmethod
    def pool(h: torch.Tensor) -> torch.Tensor:
        """Max over time: a 5 s window starts anywhere in the music (measured: flattening the
        time axis, as Lil Data did, stayed near chance on randomly placed excerpts)."""
        return torch.amax(h, dim=3, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # remove each mel band's mean over the window (as cepstral mean normalisation does):
        # an instrument's fixed spectral envelope is then not what the filters see first
        x = self.time_pool(x)
        x = x - x.mean(dim=3, keepdim=True)
        return self.head(self.pool(self.features(x)))
