"""Measured through the accompanist's ONNX graphs: the frame NLL of the true accompaniment
(teacher-forced) and the latency of one bar, offline and live."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

from engine.evaluation.metrics import bernoulli_nll
from engine.music import Note

def model_nll_per_frame(model, pieces, *, per_role: bool | None = None) -> float:
    """Frame NLL of the shipped model on key-normalised PieceBars (see the module docstring):
    through the fused graphs the runtime runs (`roles_encode` for the true latents, then
    `roles_decode` step by step, teacher-forced, no noise), or through the per-role graphs
    (`per_role`; default: where the card has no fused graphs). Both give the same figure
    (tests/test_accompanist.py)."""
    from engine.models.line_decoding import sigmoid

    if per_role is None:
        per_role = model._fused is None
    tot, frames = 0.0, 0
    R = len(model.roles)
    for p in pieces:
        T = p.bars.shape[0]
        masks = p.masks.astype(np.float32)
        mel = model._enc_mel.run({"planes": p.bars[:, 0].astype(np.float32), "mask": masks})["mu"]
        if not per_role:
            tot += _fused_nll(model, p, masks, mel)
            frames += int(masks.sum())
            continue
        for r in range(R):
            true = p.bars[:, r + 1].astype(np.float32)
            z_true = model._enc[r].run({"planes": true, "mask": masks,
                                        "melody": p.bars[:, 0].astype(np.float32)})["mu"]
            z_prev = np.concatenate([np.zeros_like(z_true[:1]), z_true[:-1]])
            h = np.zeros((1, 1, model.rnn_hidden), np.float32)
            preds = []
            for t in range(T):
                out = model._rnn[r].run({"z_mel": mel[t:t + 1], "z_prev": z_prev[t:t + 1],
                                         "mask": masks[t:t + 1], "h": h})
                preds.append(out["z"])
                h = out["h_out"]
            feeds = {"z": np.concatenate(preds), "mask": masks,
                     "melody": p.bars[:, 0].astype(np.float32)}
            if "prev_last" in model._dec[r].inputs:  # the true previous bar's last step
                last_step = np.array([np.flatnonzero(m)[-1] for m in masks])
                last = true[np.arange(T), 1, last_step]
                feeds["prev_last"] = np.concatenate([np.zeros_like(last[:1]), last[:-1]])
            dec = model._dec[r].run(feeds)
            nll = bernoulli_nll(sigmoid(dec["active_logits"].astype(np.float64)), true[:, 1])
            tot += float((nll * masks[:, :, None]).sum())
        frames += int(masks.sum())
    return tot / max(frames, 1)


def _fused_nll(model, p, masks: np.ndarray, mel: np.ndarray) -> float:
    from engine.models.line_decoding import sigmoid

    T = p.bars.shape[0]
    roles = model.roles
    melody = p.bars[:, 0].astype(np.float32)
    # the re-encoder also steps the melody RNN (for the live path): fed, not used here
    feeds = {"mask": masks, "melody": melody, "z_mel": mel,
             "melody.h": np.zeros((1, T, model.rnn_hidden), np.float32)}
    true = [p.bars[:, r + 1].astype(np.float32) for r in range(len(roles))]
    for name, planes in zip(roles, true):
        feeds[f"{name}.planes"] = planes
    enc = model._fused[1].run(feeds)
    last_step = np.array([np.flatnonzero(m)[-1] for m in masks])
    state = {}
    for r, name in enumerate(roles):
        z_true = enc[f"{name}.played"]
        last = true[r][np.arange(T), 1, last_step]
        state[name] = (np.concatenate([np.zeros_like(z_true[:1]), z_true[:-1]]),
                       np.concatenate([np.zeros_like(last[:1]), last[:-1]]))
    h = {name: np.zeros((1, 1, model.rnn_hidden), np.float32) for name in roles}
    tot = 0.0
    for t in range(T):
        # known: the decoders hear the true melody bar (its latent is encoded in the graph,
        # the same as `mel`)
        feeds = {"z_mel": mel[t:t + 1], "mask": masks[t:t + 1], "melody": melody[t:t + 1],
                 "known": np.array([[True]])}
        for r, name in enumerate(roles):
            z_prev, prev_last = state[name]
            feeds[f"{name}.z_prev"] = z_prev[t:t + 1]
            feeds[f"{name}.h"] = h[name]
            feeds[f"{name}.noise"] = np.zeros_like(z_prev[t:t + 1])
            if model.uses_prev_last[r]:
                feeds[f"{name}.prev_last"] = prev_last[t:t + 1]
        out = model._fused[0].run(feeds)
        for r, name in enumerate(roles):
            h[name] = out[f"{name}.h_out"]
            nll = bernoulli_nll(sigmoid(out[f"{name}.active_logits"][0].astype(np.float64)),
                                true[r][t, 1])
            tot += float((nll * masks[t][:, None]).sum())
    return tot


# -- latency -----------------------------------------------------------------------------------
def latency(model, melody_bars: Sequence[list[Note]], n_bars: int = 1000,
            bar_ticks: int = 1920, tpb: int = 480) -> dict[str, float]:
    """p50/p99 in ms of one bar: offline (melody known) and live (not known, then observed).
    The heap is frozen first, as the live engine does when it starts (engine.realtime.engine.
    freeze_heap), and the process is pinned to one CPU (not CPU 0, which takes most
    interrupts here) while it measures."""
    from engine.realtime.engine import freeze_heap

    freeze_heap()
    saved = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if saved:
        os.sched_setaffinity(0, {max(saved)})
    try:
        res = {}
        for mode in ("offline", "live"):
            sess = model.session(temperature=0.0, seed=0)
            times = []
            for i in range(n_bars + 20):
                bar = melody_bars[i % len(melody_bars)]
                t0 = time.perf_counter()
                if mode == "offline":
                    sess.accompany_next(bar_ticks, tpb, melody_notes=bar)
                else:
                    sess.accompany_next(bar_ticks, tpb)
                sess.observe(bar, bar_ticks, tpb)
                if i >= 20:  # warm-up
                    times.append((time.perf_counter() - t0) * 1000)
            res[f"{mode}_p50_ms"] = float(np.percentile(times, 50))
            res[f"{mode}_p99_ms"] = float(np.percentile(times, 99))
    finally:
        if saved:
            os.sched_setaffinity(0, saved)
    res["load_average"] = float(os.getloadavg()[0])
    return res
