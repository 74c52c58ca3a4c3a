"""Turning a decoder's onset/active logits into a voice's planes: thresholds per step
(`decode_planes`) or the most likely single line over the bar (`decode_lines`, a Viterbi pass;
engine.models.viterbi compiles it), and `decide`, which does either per role. Used by the
accompanist at runtime and by its training (threshold tuning)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.models import viterbi, voice_leading
from engine.representation import ACTIVE, ONSET


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warnings for large |x|


def decode_planes(on_logits: np.ndarray, ac_logits: np.ndarray, thr_onset: float,
                  thr_active: float, max_voices: int) -> np.ndarray:
    """Logits (..., S, P) -> bool planes (..., 2, S, P): a pitch sounds where its probability
    passes `thr_active` and it is among the `max_voices` likeliest of its step (chorale voices are
    single lines); it is re-struck where the onset probability passes `thr_onset`."""
    p_ac = sigmoid(ac_logits)
    active = p_ac > thr_active
    if max_voices < p_ac.shape[-1]:
        kth = -np.partition(-p_ac, max_voices - 1, axis=-1)[..., max_voices - 1:max_voices]
        active &= p_ac >= kth
    onset = (sigmoid(on_logits) > thr_onset) & active
    return np.stack([onset, active], axis=-3)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def decode_lines(on_logits: np.ndarray, ac_logits: np.ndarray, thr_onset: np.ndarray,
                 thr_active: np.ndarray, allowed: np.ndarray,
                 held: np.ndarray | None = None, *, compiled: bool = True) -> np.ndarray:
    """The most likely single line per row: logits (B, S, P) -> bool planes (B, 2, S, P).

    A voice's step either rests or sounds one pitch; a new pitch needs an onset, a held pitch
    needs none. Each step scores the active log-odds of its pitch against `thr_active`, each
    onset the onset log-odds against `thr_onset` (both per row: a pitch alone sounds where its
    probability passes the threshold, as in `decode_planes`), and Viterbi finds the best line
    for the bar. Deciding step by step instead (`decode_planes`) follows every flicker of the
    per-step argmax: measured on the valid chorales, it played 146% of Bach's notes, chopped
    into 16ths; this plays 98%. A note one step long is then not struck again on the same
    pitch (the two are joined): sampled latents made voices stutter (7.2% of the notes at
    temperature 0.75 were such repeats; Bach's voices: 0.01%; joined: 0.01%). (A Viterbi with a
    "just struck" state enforces it inside the search, at 2.4x the cost: 0.94 against 0.40 ms
    a bar; on test it gave the same figures.) `allowed`
    (S,) marks the steps inside the bar; `held` (B,) the pitch index each row still sounds at
    the bar line (-1: none), which may go on unstruck. `compiled`: the numba kernel of
    engine.models.viterbi when it is there (same planes, 12x faster), else this numpy loop.
    """
    B, S, P = ac_logits.shape
    emit = ac_logits.astype(np.float64) - _logit(np.asarray(thr_active, np.float64))[:, None, None]
    gain = on_logits.astype(np.float64) - _logit(np.asarray(thr_onset, np.float64))[:, None, None]
    line_planes = viterbi.kernel() if compiled else None
    if line_planes is not None:
        out = np.zeros((B, 2, S, P), bool)
        held = np.full(B, -1, np.int64) if held is None else np.asarray(held, np.int64)
        line_planes(emit, gain, np.asarray(allowed, bool), held, out)
        return out
    rows = np.arange(B)
    neg = -1e18
    score = np.full((B, P + 1), neg)  # states: pitch 0..P-1 sounding, P = rest
    score[:, P] = 0.0
    if held is not None:
        h = np.asarray(held)
        score[rows[h >= 0], h[h >= 0]] = 0.0
    struck = np.zeros((S, B, P), bool)  # the best way into (s, pitch) was an onset
    came = np.zeros((S, B), np.int64)  # the best state before s (onsets and rests come from it)
    new = np.empty((B, P))
    for s in range(S):
        a = score.argmax(axis=1)
        best = score[rows, a]
        came[s] = a
        np.add(best[:, None], gain[:, s], out=new)
        np.greater(new, score[:, :P], out=struck[s])
        np.maximum(new, score[:, :P], out=score[:, :P])
        score[:, :P] += emit[:, s]
        if not allowed[s]:
            score[:, :P] = neg
        score[:, P] = best
    out = np.zeros((B, 2, S, P), bool)
    state = score.argmax(axis=1)
    for b in range(B):
        q = int(state[b])
        for s in range(S - 1, -1, -1):
            if q == P:
                q = int(came[s, b])
                continue
            out[b, ACTIVE, s, q] = True
            if struck[s, b, q]:
                out[b, ONSET, s, q] = True
                q = int(came[s, b])
    onset = out[:, ONSET]
    if (onset[:, 1:] & onset[:, :-1]).any():  # join stutters, left to right
        for s in range(1, S):
            onset[:, s] &= ~onset[:, s - 1]
    return out


def decide(roles: Sequence, logits: Sequence[tuple[np.ndarray, np.ndarray]], inside: np.ndarray,
           prev_last: Sequence[np.ndarray], melody: np.ndarray | None = None,
           melody_before: int = -1, *, voice_leading: bool = True) -> list[np.ndarray]:
    """Planes per role from its (onset, active) logits (S, P): single-line roles
    (`max_voices` 1) by `decode_lines`, all at once, from the pitch each still sounds at the bar
    line (`prev_last`, (1, P) per role); the others by `decode_planes`. `inside` (S,) marks the
    bar's steps. `roles` carry spec, thr_onset, thr_active, max_voices. `voice_leading`: the
    single lines are then kept from parallel fifths and octaves with one another and with
    `melody` ((S,) pitches, -1 rest; None: not known yet), `melody_before` its pitch at the bar
    line (engine.models.voice_leading)."""
    out: list[np.ndarray | None] = [None] * len(roles)
    lines = [i for i, r in enumerate(roles) if r.max_voices == 1]
    if lines:
        held = np.array([int(np.argmax(prev_last[i][0])) if prev_last[i].any()
                         else -1 for i in lines])
        on = np.stack([logits[i][0] for i in lines])
        ac = np.stack([logits[i][1] for i in lines])
        thr_on = np.array([roles[i].thr_onset for i in lines])
        thr_ac = np.array([roles[i].thr_active for i in lines])
        got = decode_lines(on, ac, thr_on, thr_ac, inside, held)
        if voice_leading and len(lines) + (melody is not None) >= 2:
            _lead(got, on, ac, thr_on, thr_ac, inside, held, [roles[i].spec for i in lines],
                  melody, melody_before)
        for k, i in enumerate(lines):
            out[i] = got[k]
    for i, r in enumerate(roles):
        if out[i] is None:
            p = decode_planes(logits[i][0], logits[i][1], r.thr_onset, r.thr_active,
                              r.max_voices)
            out[i] = p & inside[None, :, None]
    return out


def _lead(got: np.ndarray, on: np.ndarray, ac: np.ndarray, thr_on: np.ndarray,
          thr_ac: np.ndarray, inside: np.ndarray, held: np.ndarray, specs: Sequence,
          melody: np.ndarray | None, melody_before: int) -> int:
    """voice_leading.repair on the lines `got` (B, 2, S, P) decided from these logits and
    thresholds, in place. Most bars have no parallel: they cost one check (~20 us)."""
    lows = np.array([int(s.low_pitch) for s in specs], np.int64)
    read = max(1, int(specs[0].steps_per_beat) // 2)  # every half beat, as the evaluation reads
    steps = np.flatnonzero(inside)
    readings = steps[(steps - steps[0]) % read == 0] if steps.size else steps
    prev = np.where(held >= 0, lows + held, -1)
    voices = voice_leading.highest_line(got[:, ACTIVE], lows)
    if melody is not None:
        prev = np.concatenate([[melody_before], prev])
        voices = np.concatenate([np.asarray(melody, np.int64)[None], voices])
    if voice_leading.first_parallel(voices, prev, readings) is None:
        return 0
    # log-odds against the thresholds, as decode_lines weighs them
    emit = ac.astype(np.float64) - _logit(thr_ac)[:, None, None]
    gain = on.astype(np.float64) - _logit(thr_on)[:, None, None]
    line_planes = viterbi.kernel()
    half = np.full(1, 0.5)

    def redecide(v: int, emit_v: np.ndarray) -> np.ndarray:
        if line_planes is None:  # already against the thresholds: decide against 1/2
            return decode_lines(gain[v:v + 1], emit_v[None], half, half, inside, held[v:v + 1],
                                compiled=False)[0]
        out = np.zeros((1,) + got.shape[1:], bool)
        line_planes(emit_v[None], gain[v:v + 1], inside, held[v:v + 1], out)
        return out[0]

    return voice_leading.repair(got, emit, gain, lows, redecide, readings, read, prev, melody,
                                voices)
