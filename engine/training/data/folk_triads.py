"""The naive chord baseline of the folk tunes (engine.training.data.folk): per bar or half bar
the diatonic triad that covers the most melody, and the agreement of chord roots with the
notated chords."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from engine.music import Key, Song

Chord = tuple[int, int, str]  # (tick, root pitch class 0-11, quality)


def spans(song: Song, per: str = "bar") -> list[tuple[int, int]]:
    """(start, end) of every bar ("bar") or half bar ("half": each bar's real length halved, so a
    1-beat pickup gives two half-beat spans) from tick 0 to the song's end."""
    if per not in ("bar", "half"):
        raise ValueError(f"per must be 'bar' or 'half', got {per!r}")
    if song.end <= 0:
        return []
    out = []
    for start, end, _ in song.bars(song.end):
        if per == "bar":
            out.append((start, end))
        else:
            mid = start + (end - start) // 2
            out.extend([(start, mid), (mid, end)])
    return out


def diatonic_triads(key: Key) -> list[tuple[int, str]]:
    """(root pitch class, "maj"|"min") in tie-break order: I IV V vi ii (major), i iv V VI III
    (minor)."""
    t = key.tonic
    if key.mode == "minor":
        steps = ((0, "min"), (5, "min"), (7, "maj"), (8, "maj"), (3, "maj"))
    else:
        steps = ((0, "maj"), (5, "maj"), (7, "maj"), (9, "min"), (2, "min"))
    return [((t + s) % 12, q) for s, q in steps]


def triad_pitch_classes(root: int, quality: str) -> frozenset[int]:
    third = 3 if quality == "min" else 4
    return frozenset({root % 12, (root + third) % 12, (root + 7) % 12})


def naive_triad_chords(song: Song, *, per: str = "bar", key: Key) -> list[Chord]:
    """The naive baseline: for each bar (or half bar), the diatonic triad of `key` whose pitch
    classes cover the most melody duration inside that span (ties, including a span with no
    melody: the earlier triad in I, IV, V, vi, ii / i, iv, V, VI, III). One chord per span."""
    track = song.melody_track()
    notes = sorted(track.notes) if track is not None else []
    starts = [n.start for n in notes]
    triads = [(r, q, triad_pitch_classes(r, q)) for r, q in diatonic_triads(key)]
    out: list[Chord] = []
    for s, e in spans(song, per):
        weight = [0] * 12
        for n in notes[:bisect.bisect_left(starts, e)]:
            overlap = min(e, n.end) - max(s, n.start)
            if overlap > 0:
                weight[n.pitch % 12] += overlap
        best, best_score = triads[0], -1
        for tr in triads:
            score = sum(weight[pc] for pc in tr[2])
            if score > best_score:
                best, best_score = tr, score
        out.append((s, best[0], best[1]))
    return out


def chord_at(chords: Sequence[Chord], tick: int) -> Chord | None:
    """The chord sounding at `tick`: the last one starting at or before it (chords hold until the
    next), None before the first."""
    ticks = [c[0] for c in chords]
    i = bisect.bisect_right(ticks, tick) - 1
    return chords[i] if i >= 0 else None


def chord_root_agreement(pred: Sequence[Chord], truth: Sequence[Chord], song: Song,
                         per: str = "half") -> tuple[int, int]:
    """(agree, total) over the half bars (or bars) of `song` where a truth chord sounds at the
    span's start: agree when the predicted chord sounding there has the same root pitch class."""
    pred = sorted(pred)
    truth = sorted(truth)
    agree = total = 0
    for s, _ in spans(song, per):
        t = chord_at(truth, s)
        if t is None:
            continue
        total += 1
        p = chord_at(pred, s)
        if p is not None and p[1] % 12 == t[1] % 12:
            agree += 1
    return agree, total
