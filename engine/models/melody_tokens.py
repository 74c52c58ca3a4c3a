"""Monophonic melody tokens: one token per 16th step, beside the polyphonic pianoroll of
`engine.models.genroll` (same grid, same key normalisation, same pitch window).

    REST = 0            nothing sounds
    HOLD = 1            the note sounding at the step before goes on
    2 + i               a note of pitch `spec.low + i` starts (i in 0..n_pitches-1)

A roll becomes a melody by its skyline: at each step the highest sounding pitch; a new token
starts where that pitch has an onset or differs from the step before (a chorale gives its
soprano, a folk tune itself). A HOLD with nothing sounding before it (a window's first step, or
after a rest) is read as a REST, so every token sequence is a valid melody. numpy only.
"""

from __future__ import annotations

import numpy as np

REST, HOLD, NOTE0 = 0, 1, 2


def vocab_size(n_pitches: int) -> int:
    return NOTE0 + n_pitches


def from_features(feats: np.ndarray, n_pitches: int) -> np.ndarray:
    """(T, 2P) [onset | active] features (or (..., T, 2P)) -> (T,) (or (..., T)) int64 tokens
    of the skyline melody."""
    feats = np.asarray(feats)
    if feats.ndim > 2:
        flat = feats.reshape(-1, *feats.shape[-2:])
        return np.stack([from_features(f, n_pitches) for f in flat]).reshape(feats.shape[:-1])
    p = n_pitches
    if feats.shape[-1] != 2 * p:
        raise ValueError(f"features must have {2 * p} columns, got {feats.shape[-1]}")
    onset, active = feats[:, :p] > 0.5, (feats[:, p:] > 0.5) | (feats[:, :p] > 0.5)
    out = np.zeros(len(feats), np.int64)
    prev = -1
    for t in range(len(feats)):
        on = np.flatnonzero(active[t])
        if not len(on):
            out[t], prev = REST, -1
            continue
        top = int(on[-1])
        out[t] = NOTE0 + top if (onset[t, top] or top != prev) else HOLD
        prev = top
    return out


def to_features(tokens: np.ndarray, n_pitches: int) -> np.ndarray:
    """(..., T) tokens -> (..., T, 2P) float32 [onset | active] features. Tokens outside the
    vocabulary are rests."""
    tokens = np.asarray(tokens, np.int64)
    if tokens.ndim > 1:
        flat = tokens.reshape(-1, tokens.shape[-1])
        return np.stack([to_features(t, n_pitches) for t in flat]).reshape(
            *tokens.shape, 2 * n_pitches)
    p = n_pitches
    out = np.zeros((len(tokens), 2 * p), np.float32)
    cur = -1
    for t, tok in enumerate(tokens):
        if NOTE0 <= tok < NOTE0 + p:
            cur = int(tok) - NOTE0
            out[t, cur] = 1.0
        elif tok != HOLD:
            cur = -1
        if cur >= 0:
            out[t, p + cur] = 1.0
    return out


def canonical(tokens: np.ndarray, n_pitches: int) -> np.ndarray:
    """The same melody with every HOLD that follows nothing made a REST (what `to_features`
    plays): two sequences that sound the same compare equal."""
    tokens = np.array(tokens, np.int64)
    flat = tokens.reshape(-1, tokens.shape[-1]) if tokens.ndim else tokens.reshape(1, 1)
    for row in flat:
        sounding = False
        for t, tok in enumerate(row):
            if NOTE0 <= tok < NOTE0 + n_pitches:
                sounding = True
            elif tok == HOLD and sounding:
                continue
            else:
                row[t], sounding = REST, False
    return flat.reshape(tokens.shape)


def transpose(tokens: np.ndarray, semitones: int, n_pitches: int) -> np.ndarray | None:
    """The melody `semitones` higher, or None where a note would leave the pitch window."""
    tokens = np.asarray(tokens, np.int64)
    notes = tokens >= NOTE0
    if not notes.any():
        return tokens.copy()
    moved = np.where(notes, tokens + semitones, tokens)
    if moved[notes].min() < NOTE0 or moved[notes].max() >= NOTE0 + n_pitches:
        return None
    return moved


def pitch_range(tokens: np.ndarray) -> tuple[int, int] | None:
    """Lowest and highest pitch index of the notes, None when there are none."""
    tokens = np.asarray(tokens)
    notes = tokens[tokens >= NOTE0]
    if not len(notes):
        return None
    return int(notes.min()) - NOTE0, int(notes.max()) - NOTE0


def onsets(tokens: np.ndarray) -> set[tuple[int, int]]:
    """{(step, pitch index)} of the note-on tokens."""
    tokens = np.asarray(tokens)
    return {(int(t), int(tokens[t]) - NOTE0) for t in np.flatnonzero(tokens >= NOTE0)}


def onset_f1(pred: np.ndarray, true: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall, F1 of note onsets, (step, pitch) exact. Empty vs empty is 1.0."""
    po, to = onsets(pred), onsets(true)
    if not po and not to:
        return 1.0, 1.0, 1.0
    tp = len(po & to)
    prec = tp / len(po) if po else 0.0
    rec = tp / len(to) if to else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return prec, rec, f1
