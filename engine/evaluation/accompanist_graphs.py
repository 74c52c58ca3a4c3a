"""Measured through the accompanist's ONNX graphs: the frame NLL of the true accompaniment
(teacher-forced) and the latency of one bar, offline and live."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

from engine.evaluation.metrics import bernoulli_nll
from engine.models import accompanist_graphs as G
from engine.models.line_decoding import sigmoid
from engine.music import Note

def model_nll_per_frame(model, pieces, *, per_role: bool | None = None) -> float:
    """Frame NLL of the shipped model on key-normalised PieceBars (see the module docstring):
    through the fused graphs the runtime runs (`roles_encode` for the true latents, then
    `roles_decode` step by step, teacher-forced, no noise), or through the per-role graphs
    (`per_role`; default: the graphs the model runs). Both give the same figure
    (tests/test_accompanist.py)."""
    from engine.models.accompanist_graphs import open_graphs

    graphs = model.graphs
    if per_role is not None and (graphs.kind == "per_role") != per_role:
        graphs = open_graphs(model.card, kind="per_role" if per_role else "fused",
                             providers=graphs.providers)
    tot, frames = 0.0, 0
    for p in pieces:
        masks = p.masks.astype(np.float32)
        mel = graphs.encode_melody(p.bars[:, 0].astype(np.float32), masks)
        nll = _per_role_nll if graphs.kind == "per_role" else _fused_nll
        tot += nll(graphs, p, masks, mel)
        frames += int(masks.sum())
    return tot / max(frames, 1)


def _per_role_nll(graphs, p, masks: np.ndarray, mel: np.ndarray) -> float:
    T = p.bars.shape[0]
    melody = p.bars[:, 0].astype(np.float32)
    tot = 0.0
    for r in range(len(graphs.roles)):
        true = p.bars[:, r + 1].astype(np.float32)
        z_true = graphs.enc[r].run({G.PLANES: true, G.MASK: masks, G.MELODY: melody})[G.MU]
        z_prev = np.concatenate([np.zeros_like(z_true[:1]), z_true[:-1]])
        h = np.zeros((1, 1, graphs.rnn_hidden), np.float32)
        preds = []
        for t in range(T):
            out = graphs.rnn[r].run({G.Z_MEL: mel[t:t + 1], G.Z_PREV: z_prev[t:t + 1],
                                     G.MASK: masks[t:t + 1], G.H: h})
            preds.append(out[G.Z])
            h = out[G.H_OUT]
        feeds = {G.Z: np.concatenate(preds), G.MASK: masks, G.MELODY: melody}
        if graphs.uses_prev_last[r]:  # the true previous bar's last step
            last_step = np.array([np.flatnonzero(m)[-1] for m in masks])
            last = true[np.arange(T), 1, last_step]
            feeds[G.PREV_LAST] = np.concatenate([np.zeros_like(last[:1]), last[:-1]])
        dec = graphs.dec[r].run(feeds)
        nll = bernoulli_nll(sigmoid(dec[G.ACTIVE_LOGITS].astype(np.float64)), true[:, 1])
        tot += float((nll * masks[:, :, None]).sum())
    return tot


def _fused_nll(graphs, p, masks: np.ndarray, mel: np.ndarray) -> float:
    T = p.bars.shape[0]
    roles = graphs.roles
    melody = p.bars[:, 0].astype(np.float32)
    # the re-encoder also steps the melody RNN (for the live path): fed, not used here
    feeds = {G.MASK: masks, G.MELODY: melody, G.Z_MEL: mel,
             G.MELODY_H: np.zeros((1, T, graphs.rnn_hidden), np.float32)}
    true = [p.bars[:, r + 1].astype(np.float32) for r in range(len(roles))]
    for name, planes in zip(roles, true):
        feeds[G.role_io(name, G.PLANES)] = planes
    enc = graphs.encode.run(feeds)
    last_step = np.array([np.flatnonzero(m)[-1] for m in masks])
    state = {}
    for r, name in enumerate(roles):
        z_true = enc[G.role_io(name, G.PLAYED)]
        last = true[r][np.arange(T), 1, last_step]
        state[name] = (np.concatenate([np.zeros_like(z_true[:1]), z_true[:-1]]),
                       np.concatenate([np.zeros_like(last[:1]), last[:-1]]))
    h = {name: np.zeros((1, 1, graphs.rnn_hidden), np.float32) for name in roles}
    tot = 0.0
    for t in range(T):
        # known: the decoders hear the true melody bar (its latent is encoded in the graph,
        # the same as `mel`)
        feeds = {G.Z_MEL: mel[t:t + 1], G.MASK: masks[t:t + 1], G.MELODY: melody[t:t + 1],
                 G.KNOWN: np.array([[True]])}
        for r, name in enumerate(roles):
            z_prev, prev_last = state[name]
            feeds[G.role_io(name, G.Z_PREV)] = z_prev[t:t + 1]
            feeds[G.role_io(name, G.H)] = h[name]
            feeds[G.role_io(name, G.NOISE)] = np.zeros_like(z_prev[t:t + 1])
            if graphs.uses_prev_last[r]:
                feeds[G.role_io(name, G.PREV_LAST)] = prev_last[t:t + 1]
        out = graphs.decode.run(feeds)
        for r, name in enumerate(roles):
            h[name] = out[G.role_io(name, G.H_OUT)]
            nll = bernoulli_nll(sigmoid(out[G.role_io(name, G.ACTIVE_LOGITS)][0]
                                        .astype(np.float64)), true[r][t, 1])
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
