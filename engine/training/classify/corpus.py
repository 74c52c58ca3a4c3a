"""Style-labelled top voices from the music21 corpus, cached as one npz.

Why a loader here and not engine.training.data.styles: that shared loader was not there when the
classifiers were built; this one reads only what the classifiers need (the top voice of a bounded
number of pieces per class, with a group key for a leak-free split) and parses in a few minutes.

Each piece becomes (start, end, pitch) arrays in quarter notes plus its label and group key.
The "top voice" is the part with the highest mean pitch, reduced to a skyline (highest note at
each onset): every class is classified from one melodic line, so texture (folk tunes are single
lines, art music is polyphonic) cannot give the label away (DATA.md, classification pitfalls).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.models.classifier import top_voice
from engine.training.data.corpus import join_by_keys

log = logging.getLogger(__name__)

LABELS = ("bach", "palestrina", "monteverdi", "trecento", "classical", "irish", "german_folk")

# Where each class comes from (paths relative to the music21 corpus). Folk opus files hold many
# tunes each: a few files give far more tunes than the per-class cap.
_SOURCES: dict[str, list[str]] = {
    "bach": ["bach/bwv*.mxl"],
    "palestrina": ["palestrina/*.krn"],
    "monteverdi": ["monteverdi/madrigal*.mxl"],
    "trecento": ["trecento/*.xml", "trecento/*.mxl"],
    "classical": ["beethoven/**/*", "mozart/**/*", "haydn/**/*"],
    "irish": ["oneills1850/0001-0050.abc", "oneills1850/0051-0100.abc",
              "oneills1850/0101-0200.abc", "ryansMammoth/*.abc"],
    "german_folk": ["essenFolksong/erk10.abc", "essenFolksong/boehme10.abc"],
}


@dataclass
class Piece:
    label: str
    group: str
    source: str
    start: np.ndarray  # float64 quarters
    end: np.ndarray
    pitch: np.ndarray  # int16


def _corpus_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def _files(label: str) -> list[Path]:
    root = _corpus_root()
    out: list[Path] = []
    for pattern in _SOURCES[label]:
        out.extend(p for p in sorted(root.glob(pattern))
                   if p.is_file() and p.suffix in (".mxl", ".xml", ".krn", ".abc"))
    # Bach: the .mxl copies (the chorales are the scores with a Soprano part, see _top_part_notes)
    # classical: one format per movement
    if label == "classical":
        seen, dedup = set(), []
        for p in out:
            key = str(p.with_suffix(""))
            if key not in seen:
                seen.add(key)
                dedup.append(p)
        out = dedup
    return out


def _group(label: str, path: Path, score) -> str:
    """Group key: pieces sharing it go to the same split (no melody in two splits)."""
    rel = str(path.relative_to(_corpus_root()))
    if label == "bach":  # one hymn tune, several harmonisations: same soprano
        title = (score.metadata.title or "") if score.metadata else ""
        return "bach:" + (re.sub(r"[^a-z]", "", title.lower()) or path.stem)
    if label == "palestrina":  # group by mass number
        m = re.search(r"_(\d+)", path.stem)
        return f"palestrina:mass{m.group(1) if m else '0'}"
    if label == "classical":  # a work (quartet), not a movement
        parts = rel.split("/")
        return "classical:" + "/".join(parts[:2]) if len(parts) > 2 else "classical:" + rel
    if label in ("irish", "german_folk"):
        md = score.metadata
        num = getattr(md, "number", None) if md else None
        title = (md.title or "") if md else ""
        return f"{label}:{path.stem}:{num}:{re.sub(r'[^a-z]', '', title.lower())}"
    return f"{label}:{path.stem}"


def _top_part_notes(score, soprano_only: bool = False
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The top voice: the part with the highest mean pitch (or, for chorales, the part named
    Soprano; a Bach score without one is not a chorale and is skipped)."""
    from music21 import chord, note

    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    if soprano_only:
        parts = [p for p in parts if (p.partName or "").lower().startswith("sop")][:1]
    best, best_mean = None, -1.0
    for part in parts:
        try:
            flat = part.stripTies().flatten()
        except Exception:  # noqa: BLE001 - a malformed part: skip it
            continue
        rows = []
        for el in flat.notes:
            ql = float(el.duration.quarterLength)
            if ql <= 0 or el.duration.isGrace:
                continue
            if isinstance(el, chord.Chord):
                p = max(x.midi for x in el.pitches)
            elif isinstance(el, note.Note):
                p = el.pitch.midi
            else:
                continue
            off = float(el.offset)
            rows.append((off, off + ql, p))
        if len(rows) < 8:
            continue
        mean = float(np.mean([r[2] for r in rows]))
        if mean > best_mean:
            best, best_mean = rows, mean
    if best is None:
        return None
    a = np.asarray(best, dtype=np.float64)
    return top_voice(a[:, 0], a[:, 1], a[:, 2].astype(np.int16))


def _scores(path: Path):
    from music21 import converter, stream

    obj = converter.parse(str(path))
    if isinstance(obj, stream.Opus):
        yield from obj.scores
    else:
        yield obj


#: Pieces per label (the small collections are taken whole).
PER_CLASS = {"bach": 420, "palestrina": 160, "monteverdi": 160, "trecento": 160,
             "classical": 160, "irish": 400, "german_folk": 400}


def _order_key(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def collect(per_class: dict[str, int] | int | None = None, labels=LABELS,
            time_budget_s: float | None = None) -> list[Piece]:
    """Parse up to `per_class[label]` pieces per label. Deterministic: files in md5 order of
    their corpus path, tunes of an opus file in md5 order of their group key, so the same
    pieces are chosen on every machine (`time_budget_s` per label, if given, trades that for
    time). Returned in `canonical` order."""
    root = _corpus_root()
    caps = dict(PER_CLASS)
    if isinstance(per_class, int):
        caps = {k: per_class for k in caps}
    elif per_class:
        caps.update(per_class)
    pieces: list[Piece] = []
    for label in labels:
        cap = caps.get(label, 160)
        files = _files(label)
        if label not in ("irish", "german_folk"):
            files.sort(key=lambda p: _order_key(str(p.relative_to(root))))
        got, t0 = 0, time.perf_counter()
        for path in files:
            if got >= cap or (time_budget_s and time.perf_counter() - t0 > time_budget_s):
                break
            try:
                scores = list(_scores(path))
            except Exception as exc:  # noqa: BLE001 - corpus files music21 cannot read
                log.warning("skip %s: %s", path.name, exc)
                continue
            keyed = sorted(((_group(label, path, sc), i) for i, sc in enumerate(scores)),
                           key=lambda gi: (_order_key(gi[0]), gi[1]))
            for group, i in keyed:
                if got >= cap:
                    break
                notes = _top_part_notes(scores[i], soprano_only=label == "bach")
                if notes is None:
                    continue
                s, e, p = notes
                pieces.append(Piece(label, group, str(path.name), s, e, p))
                got += 1
        log.info("%s: %d pieces in %.0f s", label, got, time.perf_counter() - t0)
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
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f, lengths=lengths,
                start=np.concatenate([p.start for p in pieces]),
                end=np.concatenate([p.end for p in pieces]),
                pitch=np.concatenate([p.pitch for p in pieces]),
                label=np.array([p.label for p in pieces]),
                group=np.array([p.group for p in pieces]),
                source=np.array([p.source for p in pieces]))
    return path


def load(path: str | Path) -> list[Piece]:
    with np.load(path) as z:
        bounds = np.concatenate([[0], np.cumsum(z["lengths"])])
        return [Piece(str(z["label"][i]), str(z["group"][i]), str(z["source"][i]),
                      z["start"][a:b], z["end"][a:b], z["pitch"][a:b])
                for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]


def melody_signature(piece: Piece, n_intervals: int = 10) -> str | None:
    """The tune at beat level (the top pitch sounding on each normalised beat, repeats merged)
    as a transposition-invariant string of intervals: two harmonisations or variants of one
    tune share it even when passing notes differ."""
    from engine.models.classifier import time_factor

    s, e, p = piece.start, piece.end, piece.pitch
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
    """Union-find over each piece's own group key, its chorale title (music21's catalogue, via
    engine.training.data.chorales) and its beat-level melody signature, within a label: one
    hymn tune harmonised twice, or a folk tune printed in two collections, stays in one split."""
    titles: dict[str, str] = {}
    try:
        from engine.training.data.chorales import chorale_titles, title_for

        titles = chorale_titles()
    except ImportError:  # the data team's module is optional here
        title_for = None  # type: ignore[assignment]
    all_keys = []
    for piece in pieces:
        keys = [f"g:{piece.group}"]
        if piece.label == "bach" and title_for is not None:
            t = title_for(f"bach/{piece.source}", titles)
            if t:
                keys.append(f"t:{t}")
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
