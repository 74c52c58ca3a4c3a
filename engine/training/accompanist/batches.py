"""The accompanist's training data as tensors: every bar of a split for the VAE stage, random
transposition of a batch, the encoder means of whole pieces for the RNN stages, and padded
batches of pieces."""

from __future__ import annotations

import numpy as np
import torch

from engine.errors import UserInputError
from engine.training.accompanist.data import Prepared, shift_planes
from engine.training.accompanist.model import VAESet


class BarPool:
    """All bars of a split as one tensor, for the VAE stage."""

    def __init__(self, prepared: Prepared, split: str) -> None:
        pieces = prepared.split(split)
        if not pieces:
            raise UserInputError(f"no {split} pieces in the data")
        self.bars = torch.from_numpy(np.concatenate([p.bars for p in pieces])).float()
        self.masks = torch.from_numpy(np.concatenate([p.masks for p in pieces]))

    def __len__(self) -> int:
        return len(self.bars)


def shift_batch(bars: torch.Tensor, s: int, drums: list[bool]) -> torch.Tensor:
    if s == 0:
        return bars
    out = torch.zeros_like(bars)
    if s > 0:
        out[..., s:] = bars[..., :-s]
    else:
        out[..., :s] = bars[..., -s:]
    for k, is_drum in enumerate(drums):
        if is_drum:
            out[:, k] = bars[:, k]
    return out


@torch.no_grad()
def encode_pieces(vaes: VAESet, prepared: Prepared, shifts: list[int], split: str,
                  device) -> list[dict]:
    """Encoder means of every piece of `split` at every shift: dicts with z (T, K, L), bars
    (T, K, 2, S, P) float, mask (T, S)."""
    vaes.eval()
    drums = [t.is_drum for t in prepared.tracks]
    out = []
    for p in prepared.split(split):
        for s in shifts:
            bars = p.bars if s == 0 else np.stack(
                [p.bars[:, k] if drums[k] else shift_planes(p.bars[:, k], s)
                 for k in range(p.bars.shape[1])], axis=1)
            b = torch.from_numpy(bars).float().to(device)
            m = torch.from_numpy(p.masks).to(device)
            z = torch.stack([vae.encoder(b[:, k], m, b[:, 0] if k else None)[0]
                             for k, vae in enumerate(vaes.vaes)], 1)
            out.append({"z": z.cpu(), "bars": b.cpu(), "mask": m.cpu()})
    return out


def pad_batch(seqs: list[dict]) -> dict[str, torch.Tensor]:
    T = max(s["z"].shape[0] for s in seqs)
    B = len(seqs)
    z0 = seqs[0]
    z = torch.zeros(B, T, *z0["z"].shape[1:])
    bars = torch.zeros(B, T, *z0["bars"].shape[1:])
    mask = torch.zeros(B, T, z0["mask"].shape[1])
    valid = torch.zeros(B, T)
    mel_pred = torch.zeros(B, T, z0["z"].shape[-1]) if "mel_pred" in z0 else None
    for i, s in enumerate(seqs):
        n = s["z"].shape[0]
        z[i, :n], bars[i, :n], mask[i, :n], valid[i, :n] = s["z"], s["bars"], s["mask"], 1.0
        if mel_pred is not None:
            mel_pred[i, :n] = s["mel_pred"]
    out = {"z": z, "bars": bars, "mask": mask, "valid": valid}
    if mel_pred is not None:
        out["mel_pred"] = mel_pred
    return out
