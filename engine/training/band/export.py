"""Export the band model's chord networks to ONNX (legacy exporter, weights inside) and write
its card: `chords_offline` (x (1, T, F) -> logp (1, T, C)), `chords_causal` (x (1, T, F),
next_pos (1, T, 4), h (1, 1, H) -> logp, h_out) and `chords_head` (h (1, 1, H), next_pos
(1, 4) -> logp (1, C)). Each graph is checked against torch in ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import torch

from engine.models.band import KIND
from engine.models.band_chords import N_CHORDS, N_FEATURES, N_POS, QUALITIES
from engine.training.onnx_export import check_parity, export_onnx, write_card


def export(off, cau, out: Path, *, name: str, hidden: int, decoding: dict, training: dict,
           metrics: dict) -> Path:
    from engine.training.band.train import CausalHead

    out.mkdir(parents=True, exist_ok=True)
    T = 7
    x = torch.randn(1, T, N_FEATURES)
    pos = torch.rand(1, T, N_POS)
    h = torch.zeros(1, 1, hidden)
    files = {}
    p = export_onnx(off, (x,), out / f"{name}.chords_offline.onnx", ["x"], ["logp"],
                    {"x": {1: "T"}, "logp": {1: "T"}})
    check_parity(off, (x,), p)
    files["chords_offline"] = p
    p = export_onnx(cau, (x, pos, h), out / f"{name}.chords_causal.onnx", ["x", "next_pos", "h"],
                    ["logp", "h_out"], {"x": {1: "T"}, "next_pos": {1: "T"}, "logp": {1: "T"}})
    check_parity(cau, (x, pos, h), p)
    files["chords_causal"] = p
    head = CausalHead(cau)
    hh, pp = torch.randn(1, 1, hidden), torch.rand(1, N_POS)
    p = export_onnx(head, (hh, pp), out / f"{name}.chords_head.onnx", ["h", "next_pos"], ["logp"])
    check_parity(head, (hh, pp), p)
    files["chords_head"] = p
    rep = {"n_features": N_FEATURES, "n_chords": N_CHORDS, "qualities": list(QUALITIES),
           "hidden": hidden, "beat": "quarter note", "key_normalisation": "tonic",
           "decoding": decoding, "steps_per_beat": 4}
    return write_card(out, name, KIND, files, rep, training, metrics,
                      description="Band accompanist: melody -> chords (bidirectional GRU offline, "
                                  "causal GRU live), played by a pattern arranger as chords, "
                                  "bass and drums")
