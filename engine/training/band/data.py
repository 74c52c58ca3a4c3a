"""Chord labels for the band model: the Bach chorales chordified, one chord per beat, aligned with
their soprano as the melody, split by hymn tune as the chorales are (engine.training.data.chorales).

Chordify: at every beat (a quarter note, engine.models.band_chords.song_beats) the pitch classes
that sound at its start in the four voices (the vertical music21's `chordify()` gives at that
offset) are named by the smallest chord template that holds them all, with its root and third
sounding: major, minor, dominant 7, diminished (diminished 7 and half-diminished count as
diminished, minor 7 and major 7 as their triads), among equal fits the one whose root is in the
bass. Where the beat's onset holds a non-chord tone (nothing fits), the pitch classes sounding for
at least a quarter of the beat are tried; where nothing fits either, the beat has no chord (class
0). Root, quality and the bass pitch class are kept.

Melody features and chords are key-normalised: the soprano's key (engine.music.melody_key, the
estimate the runtime applies to a user's melody) moved to C major / C minor.

Cached as one npz (+ a JSON manifest) in $POPMUSICNET_CACHE (engine.training.data.corpus
.default_cache_dir) beside the chorales; `python -m engine.training.band.data` builds it and
prints the label counts.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.models.band_chords import (N_FEATURES, QUALITIES, beat_features, chord_index,
                                       chord_label, song_beats)
from engine.music import Note, Song, melody_key

log = logging.getLogger(__name__)

CACHE_NAME = "band-chords"
# 2: keys by the melody_key that favours the last note as the tonic; 3: dotted-quarter beats
# in 6/8, 9/8 and 12/8
VERSION = 3
# (intervals above the root, quality it counts as); smaller sets first
_TEMPLATES = (
    ((0, 4, 7), "maj"), ((0, 3, 7), "min"), ((0, 3, 6), "dim"), ((0, 4, 7, 10), "dom7"),
    ((0, 3, 6, 9), "dim"), ((0, 3, 6, 10), "dim"), ((0, 3, 7, 10), "min"), ((0, 4, 7, 11), "maj"),
)


def name_sonority(pcs: set[int], bass: int | None) -> tuple[int, str] | None:
    """(root, quality) of a set of pitch classes, or None (see the module docstring)."""
    if len(pcs) < 2:
        return None
    best, best_key = None, None
    for shape, quality in _TEMPLATES:
        for root in range(12):
            tones = {(root + d) % 12 for d in shape}
            third = (root + shape[1]) % 12
            if not pcs <= tones or root not in pcs or third not in pcs:
                continue
            key = (len(tones), 0 if bass == root else 1, root)
            if best_key is None or key < best_key:
                best, best_key = (root, quality), key
    return best


def sounding(notes: Sequence[Note], tick: int) -> list[Note]:
    return [n for n in notes if n.start <= tick < n.end]


def chordify(song: Song, end: int | None = None) -> tuple[list, np.ndarray, np.ndarray]:
    """(beats, chord class per beat, bass pitch class per beat or -1) over every track of
    `song` (absolute pitch classes)."""
    notes = sorted(n for t in song.tracks if not t.is_drum for n in t.notes)
    end = end if end is not None else song.end
    beats = song_beats(song, end)
    labels = np.zeros(len(beats), np.int64)
    basses = np.full(len(beats), -1, np.int64)
    for i, b in enumerate(beats):
        now = sounding(notes, b.start)
        bass = min(now, key=lambda n: n.pitch).pitch % 12 if now else None
        lab = name_sonority({n.pitch % 12 for n in now}, bass)
        if lab is None:
            w = Counter()
            for n in notes:
                ov = min(n.end, b.end) - max(n.start, b.start)
                if ov > 0:
                    w[n.pitch % 12] += ov
            held = {pc for pc, d in w.items() if d >= (b.end - b.start) / 4}
            lab = name_sonority(held, bass)
        labels[i] = chord_index(*lab) if lab else 0
        basses[i] = -1 if bass is None else bass
    return beats, labels, basses


@dataclass
class ChordPiece:
    id: str
    split: str
    x: np.ndarray  # (T, N_FEATURES) normalised melody features
    y: np.ndarray  # (T,) chord class in the normalised key
    tonic: int  # the melody key's tonic (absolute) and mode
    minor: bool


def piece_examples(song: Song) -> tuple[np.ndarray, np.ndarray, int, bool] | None:
    melody = song.melody_track()
    if melody is None or not melody.notes:
        return None
    notes = sorted(melody.notes)
    key = melody_key(notes)
    shift, minor = key.tonic_shift(), key.mode == "minor"
    end = max(n.end for n in notes)
    beats, labels, _ = chordify(song, end)
    y = np.array([0 if c == 0 else chord_index(chord_label(c)[0] + shift, chord_label(c)[1])
                  for c in labels], np.int64)
    return beat_features(notes, beats, shift, minor), y, key.tonic, minor


def cache_path(cache_dir: str | Path | None = None) -> Path:
    from engine.training.data.corpus import default_cache_dir

    return Path(cache_dir or default_cache_dir()) / f"{CACHE_NAME}.npz"


def load_chord_pieces(cache_dir: str | Path | None = None, *, rebuild: bool = False,
                      pieces=None) -> list[ChordPiece]:
    """Every chorale as a ChordPiece, from the cache when it is current. `pieces` (chorale
    Pieces) replaces the corpus (tests); it is not cached."""
    from engine.training.data.chorales import PARSER_VERSION, load_chorales

    path = cache_path(cache_dir)
    stamp = f"v{VERSION}-chorales{PARSER_VERSION}-f{N_FEATURES}"
    if pieces is None and not rebuild and path.exists():
        try:
            z = np.load(path, allow_pickle=False)
            meta = json.loads(str(z["meta"]))
            if meta.get("stamp") == stamp:
                off = z["offsets"]
                return [ChordPiece(m["id"], m["split"], z["x"][off[i]:off[i + 1]],
                                   z["y"][off[i]:off[i + 1]], m["tonic"], m["minor"])
                        for i, m in enumerate(meta["pieces"])]
        except (OSError, KeyError, ValueError):
            log.warning("%s: unreadable, rebuilding", path)
    use_cache = pieces is None
    pieces = load_chorales(cache_dir) if pieces is None else pieces
    out = []
    for p in pieces:
        ex = piece_examples(p.song)
        if ex is None:
            continue
        x, y, tonic, minor = ex
        out.append(ChordPiece(p.id, p.split, x, y, tonic, minor))
    if use_cache and out:
        offsets = np.cumsum([0] + [len(c.y) for c in out])
        meta = {"stamp": stamp, "pieces": [{"id": c.id, "split": c.split, "tonic": c.tonic,
                                            "minor": c.minor} for c in out]}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, x=np.concatenate([c.x for c in out]),
                                y=np.concatenate([c.y for c in out]), offsets=offsets,
                                meta=np.array(json.dumps(meta)))
            tmp.replace(path)
        except OSError as exc:
            log.warning("could not cache band chords: %s", exc)
    return out


def describe(pieces: Sequence[ChordPiece]) -> str:
    lines = []
    for s in ("train", "valid", "test"):
        ps = [p for p in pieces if p.split == s]
        lines.append(f"{s}: {len(ps)} pieces, {sum(len(p.y) for p in ps)} beats")
    ys = np.concatenate([p.y for p in pieces])
    q = Counter("none" if c == 0 else chord_label(int(c))[1] for c in ys)
    lines.append("qualities: " + ", ".join(f"{k} {v / len(ys):.1%}"
                                           for k, v in q.most_common()))
    top = Counter(int(c) for c in ys).most_common(6)
    lines.append("commonest (normalised): " + ", ".join(
        f"{'none' if c == 0 else '%d:%s' % chord_label(c)} {n / len(ys):.1%}" for c, n in top))
    assert set(QUALITIES) >= {k for k in q if k != "none"}
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="build the band model's chord labels (cached)")
    ap.add_argument("--rebuild", action="store_true")
    a = ap.parse_args()
    print(describe(load_chord_pieces(rebuild=a.rebuild)))
