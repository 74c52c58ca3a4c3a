"""The single-line Viterbi of `engine.models.line_decoding.decode_lines`, compiled.

Why hand-written: the search is ours (a voice rests or sounds one pitch; a new pitch needs an
onset, a held one none; a one-step note is not struck again on its pitch), and no audio or
HMM library decides it exactly (librosa's `sequence.viterbi` wants row-normalised transition
probabilities, which would charge sounding and resting steps differently). In numpy the
step loop cost 0.16-0.21 ms a bar (3 voices, 16 steps, 48 pitches): a sixth of a bar's
budget. Compiled by numba it costs 0.013 ms; the same planes on 3,000 random bars
(tests/test_accompanist.py checks it against the numpy loop).

`kernel()` is the compiled kernel when numba imports, else None (the caller keeps the numpy
loop); `compiled` does the same for any such kernel (engine.models.voice_leading has one).
numba is imported on first use (0.17 s), and the first call compiles (about a second; cached
on disk after), so the accompanist calls `warm_up` when it loads, never on the first live bar.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

log = logging.getLogger(__name__)


def _line_planes(emit, gain, allowed, held, out):  # pragma: no cover - runs compiled
    """emit, gain (B, S, P) float64 log-odds against the thresholds; allowed (S,) bool;
    held (B,) int64 (-1: none); out (B, 2, S, P) bool zeros, filled: [:, 0] onsets,
    [:, 1] active. Same recursion, tie-breaking and stutter join as the numpy loop."""
    B, S, P = emit.shape
    neg = -1e18
    score = np.empty(P + 1)
    struck = np.zeros((S, P), np.bool_)
    came = np.zeros(S, np.int64)
    for b in range(B):
        for p in range(P):
            score[p] = neg
        score[P] = 0.0  # states 0..P-1: that pitch sounds; P: rest
        if held[b] >= 0:
            score[held[b]] = 0.0
        for s in range(S):
            a = 0
            best = score[0]
            for q in range(1, P + 1):  # first maximum, as numpy's argmax
                if score[q] > best:
                    best = score[q]
                    a = q
            came[s] = a
            for p in range(P):
                new = best + gain[b, s, p]
                struck[s, p] = new > score[p]
                if struck[s, p]:
                    score[p] = new
                score[p] = score[p] + emit[b, s, p] if allowed[s] else neg
            score[P] = best
        q = 0
        best = score[0]
        for r in range(1, P + 1):
            if score[r] > best:
                best = score[r]
                q = r
        for s in range(S - 1, -1, -1):
            if q == P:
                q = came[s]
                continue
            out[b, 1, s, q] = True
            if struck[s, q]:
                out[b, 0, s, q] = True
                q = came[s]
        for s in range(1, S):  # join stutters, left to right
            for p in range(P):
                if out[b, 0, s, p] and out[b, 0, s - 1, p]:
                    out[b, 0, s, p] = False


_EXAMPLE = (np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), np.ones(2, np.bool_),
            np.array([-1], np.int64), np.zeros((1, 2, 2, 2), np.bool_))


def kernel():
    """The compiled `_line_planes`, or None where numba does not import or cannot compile (an
    odd platform: the numpy loop then decides, slower, and the log says so)."""
    return compiled(_line_planes, _EXAMPLE)


@functools.cache
def _numba():
    try:
        import numba
    except ImportError:  # pragma: no cover - depends on the platform
        log.warning("numba not importable: the line decision runs in numpy (slower)")
        return None
    return numba


_kernels: dict = {}


def compiled(fn, example: tuple):
    """`fn` compiled by numba (once per process; called on `example` to compile it now), or
    None where numba does not import or cannot compile it. Compiling takes about a second, or
    a few milliseconds from numba's on-disk cache (beside this file, else in the user's cache
    directory, else none)."""
    if fn in _kernels:
        return _kernels[fn]
    numba = _numba()
    got = None
    if numba is not None:
        try:
            try:
                got = numba.njit(cache=True)(fn)
            except RuntimeError:  # no writable cache directory: compile every start
                got = numba.njit()(fn)
            got(*(a.copy() for a in example))
        except Exception as exc:  # noqa: BLE001 - any compiler failure: fall back, say why
            log.warning("numba could not compile %s (%s): it runs in Python", fn.__name__, exc)
            got = None
    # Not nogil: a kernel takes microseconds, and giving the GIL up would cost a hand-over back
    # (up to the switch interval when the GUI thread is busy), as every ONNX Runtime call does.
    _kernels[fn] = got
    return got


def warm_up() -> bool:
    """Compile (or load from the cache) every kernel of the line decision now, not on the
    first live bar; False when only Python is there."""
    from engine.models import voice_leading

    voice_leading.first_parallel(*voice_leading._EXAMPLE[:3])
    return kernel() is not None
