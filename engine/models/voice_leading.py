"""Parallel fifths and octaves kept out of a bar's decided voices.

The role decoders decide each voice's line on its own (engine.models.line_decoding), so nothing
stops two voices from moving together in fifths or octaves, which four-part writing avoids
(it makes two voices sound as one). Measured on the valid chorales at the defaults before this
pass: 2.9 parallel fifths and 5.7 parallel octaves per 100 moves of a voice pair, Bach's own
voices 0.04 and 0.03.

`first_parallel` reads the voices as engine.evaluation.metrics.parallels does (every half beat,
the highest sounding pitch; a pair moves when both change pitch between two readings where both
sound; a parallel when they move the same way from one perfect fifth or octave/unison to the
same again), the melody and the bar line before included. `repair` then takes the first
parallel in time and decides one of the two voices again with the pitch it moved to forbidden
for that half beat: the accompaniment voice whose line loses the least log-odds (the melody is
never changed). It repeats up to MAX_FIXES times a bar; each fix is a one-line Viterbi pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.models import viterbi
from engine.representation import ACTIVE, ONSET

MAX_FIXES = 8  # per bar: a bar has 8 half-beat readings in 4/4; more is a decoder fighting back
FORBID = -1e4  # log-odds of a forbidden pitch (a hard no, finite so scores stay comparable)
PERFECT = (0, 7)  # unison/octave and fifth, as pitch-class intervals


def highest_line(active: np.ndarray, low: int | np.ndarray) -> np.ndarray:
    """(..., S, P) bool -> (..., S) int64: per step the highest sounding pitch (`low` + index;
    `low` per row for a stack), -1 where nothing sounds."""
    top = active.shape[-1] - 1 - np.argmax(active[..., ::-1], axis=-1)
    low = np.asarray(low, np.int64)[..., None] if np.ndim(low) else low
    return np.where(active.any(axis=-1), low + top, -1).astype(np.int64)


def _first_parallel(lines, prev, readings, out):  # pragma: no cover - usually runs compiled
    """The first parallel in time: out (3,) int64 = (k, i, j), or k = -1 when there is none.
    lines (V, S) int64 absolute pitches (-1 rest), prev (V,) int64, readings (R,) int64.
    Plain loops so numba compiles it (3 us a bar; the same loops in Python take ~50 us)."""
    out[0] = -1
    V = lines.shape[0]
    for k in range(readings.shape[0]):
        s = readings[k]
        for i in range(V):
            ai = prev[i] if k == 0 else lines[i, readings[k - 1]]
            bi = lines[i, s]
            if ai < 0 or bi < 0 or ai == bi:
                continue
            for j in range(i + 1, V):
                aj = prev[j] if k == 0 else lines[j, readings[k - 1]]
                bj = lines[j, s]
                if aj < 0 or bj < 0 or aj == bj or (bi - ai) * (bj - aj) < 0:
                    continue
                after = (bi - bj) % 12
                if (ai - aj) % 12 == after and (after == PERFECT[0] or after == PERFECT[1]):
                    out[0] = k
                    out[1] = i
                    out[2] = j
                    return


def first_parallel(lines: np.ndarray, prev: np.ndarray, readings: np.ndarray
                   ) -> tuple[int, int, int] | None:
    """The first parallel in `lines` (V, S) absolute pitches (-1 rest) read at the steps
    `readings`, `prev` (V,) the pitches sounding just before the first reading (-1: none or
    unknown): (k, i, j), reading k (an index into `readings`) where voices i < j arrive in the
    perfect interval they left, both moving the same way; None when there is none."""
    out = np.empty(3, np.int64)
    fn = viterbi.compiled(_first_parallel, _EXAMPLE) or _first_parallel
    fn(np.ascontiguousarray(lines, np.int64), np.ascontiguousarray(prev, np.int64),
       np.ascontiguousarray(readings, np.int64), out)
    return None if out[0] < 0 else (int(out[0]), int(out[1]), int(out[2]))


_EXAMPLE = (np.zeros((2, 2), np.int64), np.zeros(2, np.int64), np.zeros(1, np.int64),
            np.zeros(3, np.int64))


def line_score(emit: np.ndarray, gain: np.ndarray, planes: np.ndarray) -> float:
    """What `decode_lines` maximises for one line: active log-odds where it sounds plus onset
    log-odds where it strikes (emit, gain (S, P) against the thresholds; planes (2, S, P))."""
    return float(emit[planes[ACTIVE]].sum() + gain[planes[ONSET]].sum())


def repair(planes: np.ndarray, emit: np.ndarray, gain: np.ndarray, lows: np.ndarray,
           redecide: Callable[[int, np.ndarray], np.ndarray], readings: np.ndarray, read: int,
           prev: np.ndarray, melody: np.ndarray | None = None,
           voices: np.ndarray | None = None) -> int:
    """Take parallels out of the voices `planes` (V, 2, S, P), changed in place, whose
    decisions were made from `emit`/`gain` (V, S, P) log-odds against the thresholds;
    `redecide(v, emit_v)` decides voice v again from changed active log-odds (S, P). `lows`
    (V,): each voice's lowest pitch; `readings`: the steps read (every `read` steps inside the
    bar); `prev`: each voice's pitch at the last step of the bar before (-1: none), the
    melody's first when `melody` ((S,) absolute pitches, -1 rest) is given: it takes part as
    voice 0 and is never changed; `voices`: the lines as `first_parallel` reads them (the
    melody first), when the caller has read them already. Returns how many fixes were made."""
    S = planes.shape[2]
    off = 0 if melody is None else 1
    if voices is None:
        voices = highest_line(planes[:, ACTIVE], lows)
        if melody is not None:
            voices = np.concatenate([np.asarray(melody, np.int64)[None], voices])
    changed: dict[int, np.ndarray] = {}  # a voice's active log-odds with its forbidden pitches
    fixes = 0
    while fixes < MAX_FIXES:
        found = first_parallel(voices, prev, readings)
        if found is None:
            break
        k, i, j = found
        s0 = int(readings[k])
        window = slice(s0, min(s0 + read, S))
        best = None
        for voice in (i, j):
            v = voice - off
            if v < 0:
                continue  # the melody stays as played
            now = changed.get(v, emit[v])
            trial = now.copy()
            trial[window, voices[voice, s0] - lows[v]] = FORBID
            got = redecide(v, trial)
            loss = line_score(now, gain[v], planes[v]) - line_score(trial, gain[v], got)
            if best is None or loss < best[0]:
                best = (loss, v, trial, got)
        if best is None:
            break
        _, v, trial, got = best
        changed[v] = trial  # the pitch stays forbidden there for the next fixes
        planes[v] = got
        voices[v + off] = highest_line(planes[v, ACTIVE], lows[v])
        fixes += 1
    return fixes
