"""ONNX export of a trained accompanist: one graph per component, parity-checked, plus its card.

Components (file `NAME.COMPONENT.onnx` beside `NAME.json`):
- enc_MELODY  (planes (B,2,S,P), mask (B,S)) -> mu (B,L)
- enc_ROLE    (planes, mask, melody (B,2,S,Pm)) -> mu: conditional on the melody bar (roles
  re-encode what they played, so the role RNN hears its own previous bar)
- dec_ROLE    (z (B,L), mask (B,S), melody (B,2,S,Pm), prev_last (B,P)) -> onset_logits,
  active_logits (B,S,P); prev_last = the role's active plane at the last step of its previous bar;
  accompaniment decoders see the melody bar (planes, or the melody decoder's probabilities
  when the bar is predicted in live play)
- dec_MELODY  (z, mask) -> onset_logits, active_logits: the predicted melody bar, live play only
- melody_rnn  (z_prev (B,L), mask_prev (B,S), h (1,B,H)) -> z_next (B,L), h_out   one step
- rnn_ROLE    (z_mel, z_prev (B,L), mask (B,S), h (1,B,H)) -> z (B,L), h_out       one step
- roles_decode, roles_encode, roles_rnn  every role's rnn -> dec, every enc, every rnn, with
  the melody's graphs, in one graph each (engine.training.accompanist.fuse): what the runtime
  and the evaluation call; the per-role graphs stay for the parity tests (`fuse --slim` drops
  them from a model to ship)
"""

from __future__ import annotations

import logging
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from engine.training.accompanist.model import DecoderExport, EncoderExport, MelodyStep, RoleStep
from engine.training.onnx_export import check_parity, export_onnx, write_card

log = logging.getLogger(__name__)

KIND = "accompanist"


def export_model(trainer, decoding: dict, train_seconds: float,
                 metrics: dict | None = None) -> Path:
    cfg = trainer.mcfg
    out = trainer.out_dir
    name = trainer.name
    vaes, rnns = trainer.vaes.cpu().eval(), trainer.rnns.cpu().eval()
    tracks = trainer.prepared.tracks
    S, L, H = cfg.max_bar_steps, cfg.latent, cfg.rnn_hidden
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(1, S)
    files: dict[str, Path] = {}
    parity: dict[str, float] = {}
    batch = {0: "batch"}

    def emit(component, module, inputs, in_names, out_names, axes):
        path = out / f"{name}.{component}.onnx"
        export_onnx(module, inputs, path, in_names, out_names, axes)
        parity[component] = check_parity(module, inputs, path)
        files[component] = path

    for k, t in enumerate(tracks):
        planes = (torch.rand(1, 2, S, cfg.n_pitches, generator=g) > 0.9).float()
        if k == 0:
            emit(f"enc_{t.name}", EncoderExport(vaes.vaes[k].encoder), (planes, mask),
                 ["planes", "mask"], ["mu"], {"planes": batch, "mask": batch, "mu": batch})
            continue
        mel = (torch.rand(1, 2, S, cfg.n_pitches, generator=g) > 0.9).float()
        emit(f"enc_{t.name}", EncoderExport(vaes.vaes[k].encoder), (planes, mask, mel),
             ["planes", "mask", "melody"], ["mu"],
             {"planes": batch, "mask": batch, "melody": batch, "mu": batch})
    emit(f"dec_{tracks[0].name}", vaes.vaes[0].decoder, (torch.randn(1, L, generator=g), mask),
         ["z", "mask"], ["onset_logits", "active_logits"],
         {"z": batch, "mask": batch, "onset_logits": batch, "active_logits": batch})
    for k, t in enumerate(tracks[1:], start=1):
        mel = (torch.rand(1, 2, S, cfg.n_pitches, generator=g) > 0.9).float()
        prev = (torch.rand(1, cfg.n_pitches, generator=g) > 0.9).float()
        emit(f"dec_{t.name}", DecoderExport(vaes.vaes[k].decoder),
             (torch.randn(1, L, generator=g), mask, mel, prev),
             ["z", "mask", "melody", "prev_last"], ["onset_logits", "active_logits"],
             {"z": batch, "mask": batch, "melody": batch, "prev_last": batch,
              "onset_logits": batch, "active_logits": batch})
    hb = {1: "batch"}
    emit("melody_rnn", MelodyStep(rnns.melody),
         (torch.randn(1, L, generator=g), mask, torch.randn(1, 1, H, generator=g) * 0.1),
         ["z_prev", "mask_prev", "h"], ["z_next", "h_out"],
         {"z_prev": batch, "mask_prev": batch, "h": hb, "z_next": batch, "h_out": hb})
    for r, t in enumerate(tracks[1:]):
        emit(f"rnn_{t.name}", RoleStep(rnns.roles[r]),
             (torch.randn(1, L, generator=g), torch.randn(1, L, generator=g), mask,
              torch.randn(1, 1, H, generator=g) * 0.1),
             ["z_mel", "z_prev", "mask", "h"], ["z", "h_out"],
             {"z_mel": batch, "z_prev": batch, "mask": batch, "h": hb, "z": batch, "h_out": hb})

    representation = {
        "unit": "bar (engine.representation: onset/active planes, 4 steps per quarter, long "
                "meters split into beat units, pickups right-aligned)",
        "planes": ["onset", "active"],
        "latent": L, "rnn_hidden": H,
        "melody": tracks[0].name,
        "roles": [t.name for t in tracks[1:]],
        "tracks": [{"name": t.name, "program": t.program, "is_drum": t.is_drum,
                    "velocity": t.velocity,
                    "spec": {"steps_per_beat": cfg.steps_per_beat, "max_bar_steps": S,
                             "low_pitch": t.low_pitch, "n_pitches": cfg.n_pitches}}
                   for t in tracks],
        "key_normalisation": "tonic",  # the melody's tonic -> C (engine.models.accompanist)
        "decoding": decoding,
        "default_temperature": 0.0,
    }
    counts = {s: len(trainer.prepared.split(s)) for s in ("train", "valid", "test")}
    training = {
        "data": trainer.data_desc, "data_spec": trainer.data_spec, "pieces": counts,
        "command": "popmusicnet " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if sys.argv and "train" in sys.argv else "",
        "seconds": round(train_seconds, 1), "world_size": trainer.dist.world_size,
        "device": str(trainer.device), "model_config": cfg.to_dict(),
        "train_config": trainer.tcfg.to_dict(),
        "tracks": [asdict(t) for t in tracks],
        "parity_max_abs_diff": {k: float(f"{v:.3g}") for k, v in parity.items()},
    }
    card = write_card(out, name, KIND, files, representation, training, metrics or {},
                      description="VAE-RNN accompanist (PopMusicNet report 4.3): bar VAEs per "
                                  "track, melody RNN, one accompaniment RNN per role")
    from engine.training.accompanist.fuse import add_fused

    add_fused(card)
    trainer.vaes.to(trainer.device)
    trainer.rnns.to(trainer.device)
    return card
