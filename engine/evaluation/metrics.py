"""Musical measures of an accompaniment, shared by the evaluation commands (numpy only).

What a listener hears first is the key, the cadence and the voicing, so these compare the
accompaniment *alone* (melody notes removed) with the melody:
- `analyse_key`: the key of a set of notes as music21's `Stream.analyze('key')` finds it
  (Krumhansl-Schmuckler correlation with the Aarden-Essen profiles, duration-weighted:
  engine.music.key_of_histogram, as melody_key without its last-note bonus). In numpy because
  the runtime and the tests run without music21, and the evaluation calls it thousands of times;
  `tests/test_metrics.py` checks it against music21 where installed.
- `key_agreement`: same tonic, same key signature as the melody's key.
- `cadence`: the last bass note on the tonic; the final sonority a tonic triad.
- `harmony_agreement`: per beat, the pitch-class set of the lower voices against a reference's
  (Jaccard) and the bass pitch class against the reference's bass.
- `voicing`: the share of the melody's sounding time with an accompaniment note above it, and
  parallel fifths and octaves per 100 moves of a voice pair.
- `chord_of`: the best of 24 triad templates for a set of sounding notes (chord roots).
- `roc_auc`: the area under the ROC curve of scores for two classes.
Everything above takes lists of engine.music.Note (ticks) and returns plain floats. On arrays
(pianoroll planes, probabilities), used by training and evaluation alike:
- `onset_f1`: F1 of two boolean event arrays (notes present in both), whole or per row.
- `bernoulli_nll`: the negative log-likelihood of binary targets under probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.music import Key, Note, Song, estimate_key, key_of_histogram, pitch_class_histogram

# sharps (+) or flats (-) of the major key on each tonic pitch class (F# major: 6 sharps)
_MAJOR_SIGNATURE = (0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5)


def analyse_key(notes: Sequence[Note]) -> Key | None:
    """The key of `notes` (see the module docstring); None without two pitch classes."""
    hist = pitch_class_histogram(notes)
    return key_of_histogram(hist, "aarden") if np.count_nonzero(hist) >= 2 else None


def signature(key: Key) -> int:
    """Sharps (+) or flats (-) of the key signature (a minor key: its relative major's)."""
    major_tonic = key.tonic if key.mode == "major" else (key.tonic + 3) % 12
    return _MAJOR_SIGNATURE[major_tonic]


def key_agreement(reference: Key | None, acc: Sequence[Note]) -> dict[str, float]:
    """Whether the accompaniment alone has the reference key's tonic and key signature."""
    k = analyse_key(acc)
    if reference is None or k is None:
        return {"same_tonic": 0.0, "same_signature": 0.0}
    return {"same_tonic": float(k.tonic == reference.tonic),
            "same_signature": float(signature(k) == signature(reference))}


def final_sonority(acc: Sequence[Note]) -> set[int]:
    """Pitch classes sounding just before the accompaniment's end."""
    if not acc:
        return set()
    end = max(n.end for n in acc)
    return {n.pitch % 12 for n in acc if n.start < end and n.end >= end}


def cadence(key: Key | None, bass: Sequence[Note], acc: Sequence[Note]) -> dict[str, float]:
    """The last bass note on the tonic; the final sonority of the accompaniment within the
    tonic triad and holding its tonic."""
    if key is None:
        return {"bass_tonic": 0.0, "final_tonic_triad": 0.0}
    last = max(bass, key=lambda n: (n.start, -n.pitch)) if bass else None
    third = 3 if key.mode == "minor" else 4
    triad = {key.tonic, (key.tonic + third) % 12, (key.tonic + 7) % 12}
    final = final_sonority(acc)
    return {"bass_tonic": float(last is not None and last.pitch % 12 == key.tonic),
            "final_tonic_triad": float(bool(final) and key.tonic in final and final <= triad)}


def _sounding(notes: Sequence[Note], ticks: np.ndarray) -> list[list[int]]:
    """The pitches sounding at each tick."""
    starts = np.array([n.start for n in notes])
    ends = np.array([n.end for n in notes])
    pitches = np.array([n.pitch for n in notes])
    if not len(notes):
        return [[] for _ in ticks]
    on = (starts[None, :] <= ticks[:, None]) & (ends[None, :] > ticks[:, None])
    return [pitches[row].tolist() for row in on]


def harmony_agreement(acc: Sequence[Note], reference: Sequence[Note], start: int, end: int,
                      step: int) -> dict[str, float]:
    """Per tick of `start..end` every `step` (a beat) where both sound: Jaccard of the pitch-class
    sets, and whether the lowest pitch classes agree (the bass)."""
    ticks = np.arange(start, end, step)
    a, r = _sounding(acc, ticks), _sounding(reference, ticks)
    jac, bass = [], []
    for x, y in zip(a, r):
        if not x or not y:
            continue
        sx, sy = {p % 12 for p in x}, {p % 12 for p in y}
        jac.append(len(sx & sy) / len(sx | sy))
        bass.append(float(min(x) % 12 == min(y) % 12))
    if not jac:
        return {"pc_jaccard": float("nan"), "bass_agreement": float("nan")}
    return {"pc_jaccard": float(np.mean(jac)), "bass_agreement": float(np.mean(bass))}


def above_melody(melody: Sequence[Note], acc: Sequence[Note], step: int) -> float:
    """Share of the melody's sounding steps (every `step` ticks) with an accompaniment note
    above the melody note."""
    if not melody:
        return float("nan")
    ticks = np.arange(min(n.start for n in melody), max(n.end for n in melody), step)
    mel, low = _sounding(melody, ticks), _sounding(acc, ticks)
    heard = [(max(m), a) for m, a in zip(mel, low) if m]
    if not heard:
        return float("nan")
    return float(np.mean([bool(a) and max(a) > m for m, a in heard]))


def parallels(voices: Sequence[Sequence[Note]], step: int, start: int, end: int) -> dict[str, float]:
    """Parallel fifths and octaves (unisons included) per 100 moves of a voice pair: two voices
    that both move, in the same direction, from one perfect interval to the same again. Voices
    are read every `step` ticks (their highest sounding pitch); a pair moves when both change
    pitch between two readings where both sound."""
    ticks = np.arange(start, end, step)
    lines = [[max(s) if s else None for s in _sounding(v, ticks)] for v in voices]
    moves = fifths = octaves = 0
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            a, b = lines[i], lines[j]
            prev = None
            for x, y in zip(a, b):
                if x is None or y is None:
                    prev = None
                    continue
                if prev is not None and x != prev[0] and y != prev[1]:
                    moves += 1
                    before, after = (prev[0] - prev[1]) % 12, (x - y) % 12
                    same_way = (x - prev[0]) * (y - prev[1]) > 0
                    if same_way and before == after == 7:
                        fifths += 1
                    elif same_way and before == after == 0:
                        octaves += 1
                prev = (x, y)
    per = 100.0 / moves if moves else float("nan")
    return {"parallel_fifths": fifths * per, "parallel_octaves": octaves * per}


# -- surface checks: the scale, consonance and coverage --------------------------------------
CONSONANT = frozenset({0, 3, 4, 5, 7, 8, 9})


def in_scale_share(melody: Sequence[Note], acc: Sequence[Note]) -> float:
    """Share of the accompaniment's duration in the melody's key scale (a surface check:
    the neighbouring keys share six of seven pitch classes)."""
    key = estimate_key(list(melody))
    total = sum(n.duration for n in acc)
    if key is None or total == 0:
        return float("nan")
    scale = key.scale_pitch_classes
    return sum(n.duration for n in acc if n.pitch % 12 in scale) / total


def consonance_share(melody: Sequence[Note], acc: Sequence[Note]) -> float:
    good = total = 0
    starts = np.array([n.start for n in acc])
    ends = np.array([n.end for n in acc])
    pitches = np.array([n.pitch for n in acc])
    for m in melody:
        if not len(acc):
            break
        sounding = (starts <= m.start) & (ends > m.start)
        for p in pitches[sounding]:
            total += 1
            good += (m.pitch - int(p)) % 12 in CONSONANT
    return good / total if total else float("nan")


def _sounding_at(acc: Sequence[Note], tick: int) -> bool:
    return any(n.start <= tick < n.end for n in acc)


def coverage(song: Song, melody: Sequence[Note], acc: Sequence[Note]) -> tuple[float, float]:
    """(share of bars within the melody's span with accompaniment sounding, share of full bars'
    downbeats with accompaniment sounding)."""
    if not melody:
        return float("nan"), float("nan")
    first, last = min(n.start for n in melody), max(n.end for n in melody)
    bars = [(s, e) for s, e, _ in song.bars(last) if e > first and s < last]
    if not bars:
        return float("nan"), float("nan")
    covered = sum(any(n.start < e and n.end > s for n in acc) for s, e in bars)
    pickup = song.pickup_ticks
    full = [(s, e) for s, e in bars if not (s == 0 and pickup and e - s == pickup)]
    down = sum(_sounding_at(acc, s) for s, _ in full)
    return covered / len(bars), down / len(full) if full else float("nan")


# triad templates: (root offset pattern, quality)
_TRIADS = ((0, 4, 7), (0, 3, 7))


def chord_of(pitch_weights: np.ndarray) -> tuple[int, str] | None:
    """The best of the 24 major/minor triads for a pitch-class weight vector (12,): the triad
    whose pitch classes hold the most weight, less the weight outside it; (root, "maj"|"min")."""
    total = pitch_weights.sum()
    if total <= 0:
        return None
    best, best_score = None, -np.inf
    for q, shape in zip(("maj", "min"), _TRIADS):
        for root in range(12):
            inside = sum(pitch_weights[(root + d) % 12] for d in shape)
            score = 2 * inside - total + 1e-3 * pitch_weights[root]  # ties: the root sounds
            if score > best_score:
                best, best_score = (root, q), score
    return best


def chords_per_span(notes: Sequence[Note], spans: Sequence[tuple[int, int]]) -> list:
    """`chord_of` the duration-weighted pitch classes sounding in each (start, end) span."""
    out = []
    for s, e in spans:
        w = np.zeros(12)
        for n in notes:
            overlap = min(n.end, e) - max(n.start, s)
            if overlap > 0:
                w[n.pitch % 12] += overlap
        out.append(chord_of(w))
    return out


def roc_auc(scores_pos: Sequence[float], scores_neg: Sequence[float]) -> float:
    """P(a positive scores above a negative), ties counted half (the Mann-Whitney U form)."""
    pos, neg = np.asarray(scores_pos, float), np.asarray(scores_neg, float)
    if not len(pos) or not len(neg):
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    ranks[order] = np.arange(1, len(allv) + 1)
    for v in np.unique(allv):  # average ranks of ties
        tie = allv == v
        ranks[tie] = ranks[tie].mean()
    u = ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def onset_f1(pred: np.ndarray, true: np.ndarray, *, empty: float = 0.0,
             axis: int | tuple[int, ...] | None = None) -> float | np.ndarray:
    """F1 = 2 tp / (predicted + true) of two boolean arrays (a note onset, an active step, at the
    same place in both is a true positive), over `axis` (None: the whole arrays, a float; else an
    array of one F1 per remaining index). `empty`: the F1 where both are empty."""
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    tp = np.logical_and(pred, true).sum(axis=axis)
    denom = pred.sum(axis=axis) + true.sum(axis=axis)
    if axis is None:
        return 2 * float(tp) / float(denom) if denom else float(empty)
    return np.where(denom == 0, empty, 2 * tp.astype(np.float64) / np.maximum(denom, 1))


def bernoulli_nll(p: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Elementwise -log P(y | p) of binary targets `y` under probabilities `p` (clipped to
    [eps, 1 - eps], so a confident miss costs at most -log eps)."""
    p = np.clip(p, eps, 1 - eps)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))
