"""Style-labelled scores from the music21 corpus for the classifiers, cached as one npz.

The parsing, the choice of pieces and their group keys are engine.training.data.styles' (one
loader for the classifiers and the generators, each class cached on its own in
$POPMUSICNET_CACHE); this module only flattens each styles Piece into the note arrays the
classifiers need and splits them:

- every pitched part's notes as (start, end, pitch) arrays in quarter notes plus `part` (the part
  index of each note): the classifiers read the whole score (texture included), and one part of
  it for the single-track path and its augmentation;
- `top_line()`: the part with the highest mean pitch reduced to a skyline, the "top voice" view
  (older models, and the secondary row of the report);
- `chords` of a one-part piece (a folk tune): one diatonic triad per bar from
  engine.training.data.folk_triads.naive_triad_chords in the tune's key
  (engine.music.melody_key), as (start, end, root pitch class, minor) rows in quarter notes; engine.training.classify.texture
  realises them as an accompaniment (rule-made chords, not a human's);
- splits of our own (`assign_splits`): styles' groups (hymn tune, mass, work, tune joined by
  title) joined further by beat-level melody signature, so one tune harmonised twice or printed
  in two folk collections never straddles two splits; then a per-class quota over the groups.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.models.classifier import top_voice
from engine.training.data.corpus import join_by_keys

log = logging.getLogger(__name__)

LABELS = ("bach", "palestrina", "monteverdi", "trecento", "classical", "irish", "german_folk")

#: Pieces per label handed to styles.load_style (None: the whole collection). Palestrina's 1,318
#: mass movements are taken whole masses at a time (styles' selection), so its cap is what gives
#: it enough masses (~24) for a held-out set; the folk collections are far larger than the cap.
PER_CLASS: dict[str, int | None] = {"bach": None, "palestrina": 240, "monteverdi": None,
                                    "trecento": None, "classical": None, "irish": 400,
                                    "german_folk": 400}


@dataclass
class Piece:
    label: str
    group: str
    source: str
    start: np.ndarray  # float64 quarters, sorted
    end: np.ndarray
    pitch: np.ndarray  # int16
    part: np.ndarray | None = None  # int16 part index of each note (None: one part)
    #: (k, 4) float64 rows (start, end, root pitch class, 1 if minor) in quarters: the naive
    #: per-bar triads of a one-part piece (None: none computed)
    chords: np.ndarray | None = None

    def parts(self) -> list[int]:
        return [0] if self.part is None else sorted(int(k) for k in np.unique(self.part))

    def part_notes(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.part is None:
            return self.start, self.end, self.pitch
        sel = self.part == k
        return self.start[sel], self.end[sel], self.pitch[sel]

    def top_part(self) -> int:
        """The part with the highest mean pitch (the melody of a tune, the soprano, the first
        violin, the cantus)."""
        if self.part is None:
            return 0
        return max(self.parts(), key=lambda k: (float(self.pitch[self.part == k].mean()), -k))

    def top_line(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The top voice: the skyline of the top part."""
        return top_voice(*self.part_notes(self.top_part()))


def from_styles_piece(sp) -> Piece:
    """A styles (engine.training.data.corpus) Piece -> the classifier's note arrays."""
    notes = sp.notes  # (n, 5) [track, start, end, pitch, velocity] in ticks; packs the song
    packed = sp._packed
    tpb = float(packed["ticks_per_beat"])
    pitched = np.array([not t.get("is_drum", False) for t in packed["tracks"]], dtype=bool)
    notes = notes[pitched[notes[:, 0]]] if len(notes) else notes
    order = np.lexsort((notes[:, 3], notes[:, 1])) if len(notes) else np.zeros(0, np.int64)
    notes = notes[order]
    piece = Piece(label=sp.label, group=sp.group, source=str(sp.meta.get("path") or sp.id),
                  start=notes[:, 1].astype(np.float64) / tpb,
                  end=notes[:, 2].astype(np.float64) / tpb,
                  pitch=notes[:, 3].astype(np.int16), part=notes[:, 0].astype(np.int16))
    if len(piece.parts()) == 1 and len(piece.pitch) >= 8:
        piece.chords = naive_chords(sp.song)
    return piece


def naive_chords(song) -> np.ndarray | None:
    """One diatonic triad per bar of a melody (engine.training.data.folk_triads.naive_triad_chords,
    I IV V vi ii / i iv V VI III, in the melody's key by engine.music.melody_key) as (start, end,
    root pitch class, minor) rows in quarter notes; None without a melody."""
    from engine.music import melody_key
    from engine.training.data.folk_triads import naive_triad_chords

    track = song.melody_track()
    key = melody_key(track.notes) if track is not None and track.notes else None
    if key is None:
        return None
    chords = naive_triad_chords(song, per="bar", key=key)
    if not chords:
        return None
    tpb = float(song.ticks_per_beat)
    ends = [c[0] for c in chords[1:]] + [max(song.end, chords[-1][0] + 1)]
    return np.array([(c[0] / tpb, e / tpb, c[1] % 12, 1.0 if c[2] == "min" else 0.0)
                     for c, e in zip(chords, ends)], dtype=np.float64)


def collect(per_class: dict[str, int | None] | int | None = None, labels=LABELS,
            cache_dir: str | Path | None = None) -> list[Piece]:
    """Every label's pieces through engine.training.data.styles (parsed once and cached there
    per class), at most `per_class[label]` each; returned in `canonical` order."""
    from engine.training.data import styles

    caps = dict(PER_CLASS)
    if isinstance(per_class, int):
        caps = {k: per_class for k in caps}
    elif per_class:
        caps.update(per_class)
    pieces: list[Piece] = []
    for label in labels:
        t0 = time.perf_counter()
        got = [from_styles_piece(sp) for sp in
               styles.load_style(label, cache_dir, max_per_class=caps.get(label, 160))]
        got = [p for p in got if len(p.pitch) >= 8]
        pieces.extend(got)
        log.info("%s: %d pieces in %.0f s", label, len(got), time.perf_counter() - t0)
    return canonical(pieces)


def canonical(pieces: list[Piece]) -> list[Piece]:
    """A parse-order-free order: by label, group, source file and content."""
    def key(p: Piece):
        lab = LABELS.index(p.label) if p.label in LABELS else len(LABELS)
        return (lab, p.label, p.group, p.source, len(p.pitch), p.pitch[:16].tolist(),
                float(p.start[0]) if len(p.start) else 0.0)
    return sorted(pieces, key=key)


def save(pieces: list[Piece], path: str | Path) -> Path:
    from engine.fileio import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lengths = np.array([len(p.pitch) for p in pieces], dtype=np.int64)
    parts = [p.part if p.part is not None else np.zeros(len(p.pitch), np.int16) for p in pieces]
    chords = [p.chords if p.chords is not None else np.zeros((0, 4)) for p in pieces]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f, lengths=lengths,
                start=np.concatenate([p.start for p in pieces]),
                end=np.concatenate([p.end for p in pieces]),
                pitch=np.concatenate([p.pitch for p in pieces]),
                part=np.concatenate(parts).astype(np.int16),
                chord_lengths=np.array([len(c) for c in chords], dtype=np.int64),
                chords=np.concatenate(chords).reshape(-1, 4).astype(np.float64),
                label=np.array([p.label for p in pieces]),
                group=np.array([p.group for p in pieces]),
                source=np.array([p.source for p in pieces]))
    return path


def load(path: str | Path) -> list[Piece]:
    with np.load(path) as z:
        if "part" not in z.files or "chords" not in z.files:
            raise ValueError(f"{path} is a corpus of an older version (no parts or no chords): "
                             "delete it so that it is built again")
        a = {k: z[k] for k in z.files}  # each z[k] decompresses anew: read every array once
    bounds = np.concatenate([[0], np.cumsum(a["lengths"])])
    cb = np.concatenate([[0], np.cumsum(a["chord_lengths"])])
    return [Piece(str(a["label"][i]), str(a["group"][i]), str(a["source"][i]),
                  a["start"][lo:hi], a["end"][lo:hi], a["pitch"][lo:hi], a["part"][lo:hi],
                  a["chords"][cb[i]:cb[i + 1]] if cb[i + 1] > cb[i] else None)
            for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))]


def melody_signature(piece: Piece, n_intervals: int = 10) -> str | None:
    """The tune at beat level (the top pitch sounding on each normalised beat of the top voice,
    repeats merged) as a transposition-invariant string of intervals: two harmonisations or
    variants of one tune share it even when passing notes differ."""
    from engine.models.classifier import time_factor

    s, e, p = piece.top_line()
    if len(p) < n_intervals + 1:
        return None
    factor = time_factor(s)
    beats = np.arange(np.ceil(s[0] * factor), e[-1] * factor, 1.0) / factor
    pitches: list[int] = []
    for b in beats:
        i = int(np.searchsorted(s, b, side="right")) - 1
        if i >= 0 and e[i] > b and (not pitches or pitches[-1] != int(p[i])):
            pitches.append(int(p[i]))
        if len(pitches) > n_intervals:
            break
    if len(pitches) <= n_intervals:
        return None
    return ",".join(str(b - a) for a, b in zip(pitches, pitches[1:]))


def group_keys(pieces: list[Piece]) -> list[str]:
    """Union-find over each piece's own group key (styles': hymn tune, mass, work, tune joined by
    title) and its beat-level melody signature, within a label: one hymn tune harmonised twice,
    or a folk tune printed in two collections, stays in one split."""
    all_keys = []
    for piece in pieces:
        keys = [f"g:{piece.group}"]
        sig = melody_signature(piece)
        if sig:
            keys.append(f"{piece.label}:m:{sig}")
        all_keys.append(keys)
    roots = join_by_keys(all_keys)
    names: dict[int, str] = {}
    for r, piece in zip(roots, pieces):
        names[r] = min(names.get(r, piece.group), piece.group)
    return [names[r] for r in roots]


def assign_splits(pieces: list[Piece], valid: float = 0.15, test: float = 0.2,
                  min_groups: int = 3) -> list[str]:
    """Per-class quota split by group: within each label, groups (see `group_keys`) sorted by
    md5 of their key go ~65/15/20 to train/valid/test, with at least `min_groups` groups in
    valid and in test. Deterministic, independent of parse order."""
    groups = group_keys(pieces)
    by_label: dict[str, list[str]] = {}
    for p, g in zip(pieces, groups):
        by_label.setdefault(p.label, [])
        if g not in by_label[p.label]:
            by_label[p.label].append(g)
    where = _assign_splits(by_label, valid, test, min_groups)
    return [where[g] for g in groups]


def _assign_splits(by_label: dict[str, list[str]], valid: float = 0.15, test: float = 0.2,
                   min_groups: int = 3) -> dict[str, str]:
    where: dict[str, str] = {}
    for label, groups in by_label.items():
        ordered = sorted(groups, key=lambda g: hashlib.md5(g.encode()).hexdigest())
        n = len(ordered)
        n_test = max(min_groups, round(n * test)) if n >= 3 * min_groups else max(1, n // 4)
        n_valid = max(min_groups, round(n * valid)) if n >= 3 * min_groups else max(1, n // 5)
        for i, g in enumerate(ordered):
            where[g] = "test" if i < n_test else "valid" if i < n_test + n_valid else "train"
    return where
