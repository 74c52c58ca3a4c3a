"""A labelled multi-style corpus from the music21 corpus, for the classifiers and the generators.

Classes (label: source; group key = what the split keeps together):
- bach:         the S/A/T/B chorales (chorales.py; its hymn-tune groups *and its splits*, so a
                chorale held out for the accompanist is held out here too)
- palestrina:   palestrina/*.krn, masses; group = the mass (the number in "Credo_63_a.krn")
- monteverdi:   monteverdi/*.mxl madrigals; group = the piece
- trecento:     trecento/*.xml; group = the piece
- classical:    Beethoven/Mozart/Haydn string quartets (4 parts; Mozart's K545 sonata is not one);
                group = the work (all movements of one quartet together)
- irish:        O'Neill's 1850 (overlapping files repeat tunes: deduplicated by tune number),
                Ryan's Mammoth, Aird's Airs; group = tune number / file, joined across collections
                by normalised title (one tune printed in two books stays in one split)
- german_folk:  Essen, the German subsets (altdeu, ballad, boehme, dva, erk, fink, kinder,
                zuccal: 5,979 tunes; the test*/variant files are dropped); group = the tune
- chinese_folk: Essen, Han (han1, han2: 1,224 tunes); group = the tune

Every piece becomes a Song with all its parts as tracks in score order (the highest-sounding part
marked melody, the others accompaniment), GM programs by style. Folk classes are single melodies
and art-music classes polyphonic: a classifier that sees all parts learns
texture, so `top_voice()` gives the one line to classify. Palestrina and Trecento are notated in
half-note pulse (`meta["half_note_pulse"]`; `meta["median_duration_ql"]` is measured for every
piece): `pulse_normalised()` halves their durations so that rhythm alone does not give them away.

Parsing everything takes ~15 minutes, so each class is capped (`max_per_class`, default 150):
groups are taken in md5 order (unrelated to content) until the cap is reached, each class is
parsed only when asked for and cached on its own (styles-LABEL-CAP.npz/.json). Splits: per class, by
quota over its groups (corpus.quota_split: 60/20/20 with at least 3 groups in valid and in test),
so that small classes (16 quartets) still have held-out works; bach keeps the chorale splits.
"""

from __future__ import annotations

import hashlib
import logging
import re
import statistics
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.music import (
    ROLE_ACCOMPANIMENT,
    ROLE_MELODY,
    MeterChange,
    Note,
    Song,
    TempoChange,
    Track,
)
from engine.training.data.corpus import (
    Piece,
    join_by_keys,
    load_cache,
    make_piece,
    music21_version,
    quota_split,
    try_save_cache,
)

log = logging.getLogger(__name__)

#: Bump when parsing, selection or grouping changes: cached styles are then rebuilt.
PARSER_VERSION = 2
DEFAULT_MAX_PER_CLASS = 150

STYLES = ("bach", "palestrina", "monteverdi", "trecento", "classical", "irish", "german_folk",
          "chinese_folk")
HALF_NOTE_PULSE = frozenset({"palestrina", "trecento"})
FOLK = frozenset({"irish", "german_folk", "chinese_folk"})
_ESSEN_GERMAN = ("altdeu", "ballad", "boehme", "dva", "erk", "fink", "kinder", "zuccal")
_ESSEN_CHINESE = ("han",)
#: GM programs: voices sing (52 Choir Aahs), quartets are strings, fiddle tunes a violin,
#: other folk melodies a flute.
_PROGRAMS = {"bach": [52], "palestrina": [52], "monteverdi": [52], "trecento": [52],
             "classical": [40, 40, 41, 42], "irish": [40], "german_folk": [73],
             "chinese_folk": [73]}


@dataclass(frozen=True)
class Item:
    """One unit to parse: a corpus file, or one tune (`number`) of an abc file."""

    path: str  # corpus-relative, e.g. "essenFolksong/erk10.abc"
    number: int | None
    id: str
    group: str
    title: str = ""


def corpus_root() -> Path:
    from music21 import common

    return Path(common.getCorpusFilePath())


def _rel_files(folder: str, pattern: str) -> list[str]:
    root = corpus_root()
    return sorted(p.relative_to(root).as_posix() for p in (root / folder).glob(pattern)
                  if p.is_file())


_X = re.compile(r"^X:\s*(\d+)", re.M)


def abc_index(path: str) -> list[tuple[int, str]]:
    """(X number, title) of every tune in an abc file, read from the text (no parsing)."""
    text = (corpus_root() / path).read_text(encoding="utf-8", errors="replace")
    out = []
    matches = list(_X.finditer(text))
    for i, m in enumerate(matches):
        body = text[m.end():matches[i + 1].start() if i + 1 < len(matches) else len(text)]
        t = re.search(r"^T:\s*(.*)$", body, re.M)
        out.append((int(m.group(1)), t.group(1).strip() if t else ""))
    return out


def norm_title(title: str) -> str:
    """Lower-case ASCII words, dance type ("-- JIG") and a leading "the" dropped."""
    t = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    t = t.split("--")[0]
    t = re.sub(r"[^a-z0-9]+", " ", t).strip()
    t = re.sub(r"^the ", "", t)
    return "" if t in ("", "untitled", "no title", "air", "reel", "jig", "hornpipe") else t


# -- what each class is made of ------------------------------------------------------------------
def _items_palestrina() -> list[Item]:
    items = []
    for path in _rel_files("palestrina", "*.krn"):
        stem = Path(path).stem
        m = re.search(r"_(\d+)(?:_[a-z])?$", stem)
        group = f"palestrina:mass{int(m.group(1))}" if m else f"palestrina:{stem}"
        items.append(Item(path, None, path, group, stem))
    return items


def _items_files(folder: str, pattern: str, label: str) -> Callable[[], list[Item]]:
    def items() -> list[Item]:
        return [Item(p, None, p, f"{label}:{p}", Path(p).stem) for p in _rel_files(folder, pattern)]
    return items


def _items_classical() -> list[Item]:
    items = []
    for composer in ("beethoven", "mozart", "haydn"):
        for path in _rel_files(composer, "**/*.mxl"):
            parts = Path(path).parts
            work = "/".join(parts[:2]) if len(parts) > 2 else path  # folder = one work
            items.append(Item(path, None, path, f"classical:{work}", Path(path).stem))
    return items


def _items_abc(folder: str, prefixes: Sequence[str] | None, label: str) -> list[Item]:
    items = []
    for path in _rel_files(folder, "*.abc"):
        stem = Path(path).stem
        if prefixes is not None and not stem.startswith(tuple(prefixes)):
            continue
        for number, title in abc_index(path):
            iid = f"{path}#{number}"
            items.append(Item(path, number, iid, f"{label}:{iid}", title))
    return items


def _items_irish() -> list[Item]:
    raw: list[Item] = []
    seen_numbers: set[int] = set()
    for path in _rel_files("oneills1850", "*.abc"):
        for number, title in abc_index(path):
            if number in seen_numbers:
                continue  # overlapping files repeat tunes: one copy per tune number
            seen_numbers.add(number)
            raw.append(Item(path, number, f"{path}#{number}", f"oneill:{number}", title))
    for path in _rel_files("ryansMammoth", "*.abc"):
        for number, title in abc_index(path)[:1]:
            raw.append(Item(path, number, path, f"ryan:{Path(path).stem}", title))
    for path in _rel_files("airdsAirs", "*.abc"):
        for number, title in abc_index(path):
            raw.append(Item(path, number, f"{path}#{number}", f"aird:{path}#{number}", title))
    return _join_by_title(raw)


def _join_by_title(items: list[Item]) -> list[Item]:
    """Union items sharing a normalised title into one group (named by its smallest member)."""
    roots = join_by_keys([(f"g:{it.group}", f"t:{norm_title(it.title)}" if norm_title(it.title)
                           else "") for it in items])
    names: dict[int, str] = {}
    for r, it in zip(roots, items):
        names[r] = min(names.get(r, it.group), it.group)
    return [Item(it.path, it.number, it.id, "irish:" + names[r], it.title)
            for r, it in zip(roots, items)]


SOURCES: dict[str, Callable[[], list[Item]]] = {
    "palestrina": _items_palestrina,
    "monteverdi": _items_files("monteverdi", "*.mxl", "monteverdi"),
    "trecento": _items_files("trecento", "*.xml", "trecento"),
    "classical": _items_classical,
    "irish": _items_irish,
    "german_folk": lambda: _items_abc("essenFolksong", _ESSEN_GERMAN, "german_folk"),
    "chinese_folk": lambda: _items_abc("essenFolksong", _ESSEN_CHINESE, "chinese_folk"),
}


def select_items(items: Sequence[Item], max_items: int | None) -> list[Item]:
    """Whole groups in md5 order (then the items of a group in id order) up to `max_items`."""
    by_group: dict[str, list[Item]] = {}
    for it in items:
        by_group.setdefault(it.group, []).append(it)
    order = sorted(by_group, key=lambda g: (hashlib.md5(g.encode()).hexdigest(), g))
    out: list[Item] = []
    for g in order:
        for it in sorted(by_group[g], key=lambda x: x.id):
            out.append(it)
    return out if max_items is None else out[:max_items]


# -- parsing -------------------------------------------------------------------------------------
def parse_item(item: Item, label: str) -> Song | None:
    """One corpus item -> Song with every part as a track (None when it has no notes)."""
    from music21 import corpus, stream

    from engine.training.data.m21 import parts_to_song

    obj = corpus.parse(item.path, number=item.number) if item.number is not None \
        else corpus.parse(item.path)
    if isinstance(obj, stream.Opus):  # an abc file whose tune was not selected by number
        obj = obj.scores[0]
    parts = list(obj.parts) if hasattr(obj, "parts") and len(obj.parts) else [obj]
    programs = _PROGRAMS.get(label, [0])
    names = [(getattr(p, "partName", None) or f"part {i + 1}") for i, p in enumerate(parts)]
    song = parts_to_song(parts, names=names, roles=[ROLE_ACCOMPANIMENT] * len(parts),
                         programs=[programs[min(i, len(programs) - 1)] for i in range(len(parts))],
                         title=item.title or Path(item.path).stem)
    song.tracks = [t for t in song.tracks if t.notes]
    if not song.tracks:
        return None
    top = max(song.tracks, key=lambda t: sum(n.pitch for n in t.notes) / len(t.notes))
    top.role = ROLE_MELODY
    return song


def median_duration_ql(song: Song) -> float:
    durs = [n.duration for t in song.tracks for n in t.notes]
    return round(statistics.median(durs) / song.ticks_per_beat, 3) if durs else 0.0


def build_style(label: str, max_per_class: int | None = DEFAULT_MAX_PER_CLASS,
                min_groups: int = 3) -> tuple[list[Piece], dict]:
    """Parse one class (capped) into Pieces with per-class quota splits; (pieces, stats)."""
    t0 = time.perf_counter()
    items = SOURCES[label]()
    chosen = select_items(items, None)
    pieces: list[Piece] = []
    failed = []
    for item in chosen:
        if max_per_class is not None and len(pieces) >= max_per_class:
            break
        try:
            song = parse_item(item, label)
        except Exception as exc:  # music21 refuses some corpus files: skip them, say which
            failed.append(f"{item.id}: {type(exc).__name__}: {exc}"[:200])
            continue
        if song is None:
            failed.append(f"{item.id}: no notes")
            continue
        if label == "classical" and len(song.tracks) != 4:
            continue  # a quartet has four parts (K545 is a piano sonata)
        meta = {"path": item.path, "number": item.number, "n_parts": len(song.tracks),
                "half_note_pulse": label in HALF_NOTE_PULSE,
                "median_duration_ql": median_duration_ql(song)}
        pieces.append(make_piece(song, id=item.id, group=item.group, label=label,
                                 title=item.title, meta=meta, split_name="train"))
    table = quota_split([p.group for p in pieces], min_groups=min_groups)
    for p in pieces:
        p.split = table[p.group]
    if failed:
        log.warning("%s: %d items failed: %s", label, len(failed), "; ".join(failed[:5]))
    stats = {"available_items": len(items), "available_groups": len({i.group for i in items}),
             "kept": len(pieces), "groups": len(table), "failed": failed,
             "parse_seconds": round(time.perf_counter() - t0, 1)}
    return pieces, stats


def _bach(cache_dir, rebuild: bool, max_per_class: int | None) -> list[Piece]:
    from engine.training.data.chorales import load_chorales

    chorales = load_chorales(cache_dir, rebuild=rebuild)
    order = {g: hashlib.md5(g.encode()).hexdigest() for g in {p.group for p in chorales}}
    chorales = sorted(chorales, key=lambda p: (order[p.group], p.group, p.id))
    if max_per_class is not None:
        chorales = chorales[:max_per_class]
    out = []
    for p in chorales:
        meta = dict(p.meta, half_note_pulse=False, n_parts=4,
                    median_duration_ql=median_duration_ql(p.song))
        out.append(Piece(id=p.id, group=p.group, split=p.split, key=p.key, meter=p.meter,
                         label="bach", title=p.title, meta=meta, _song=p._song,
                         _packed=p._packed))
    return out


def load_style(label: str, cache_dir: str | Path | None = None, *, rebuild: bool = False,
               max_per_class: int | None = DEFAULT_MAX_PER_CLASS) -> list[Piece]:
    """One class, from its cache when current, else parsed and cached."""
    if label == "bach":
        return _bach(cache_dir, rebuild, max_per_class)
    if label not in SOURCES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {label!r}")
    # One cache per cap, so that users of different caps do not rebuild each other's caches.
    name = f"styles-{label}-{max_per_class if max_per_class is not None else 'all'}"
    fingerprint = f"music21={music21_version()};max={max_per_class}"
    if not rebuild:
        pieces = load_cache(cache_dir, name, parser_version=PARSER_VERSION,
                            fingerprint=fingerprint)
        if pieces is not None:
            return pieces
    pieces, stats = build_style(label, max_per_class)
    log.info("%s: %d pieces, %d groups, %.1f s", label, stats["kept"], stats["groups"],
             stats["parse_seconds"])
    try_save_cache(cache_dir, name, pieces, parser_version=PARSER_VERSION, fingerprint=fingerprint,
                   extra={"stats": stats})
    return pieces


def load_styles(styles: Iterable[str] | None = None, *, cache_dir: str | Path | None = None,
                rebuild: bool = False,
                max_per_class: int | None = DEFAULT_MAX_PER_CLASS) -> list[Piece]:
    """Pieces of the given classes (default: all of STYLES), each with `.label`."""
    out: list[Piece] = []
    for label in (list(styles) if styles is not None else STYLES):
        out.extend(load_style(label, cache_dir, rebuild=rebuild, max_per_class=max_per_class))
    return out


# -- views for models ----------------------------------------------------------------------------
def top_voice(song: Song, mode: str = "part") -> Song:
    """A one-track Song holding the line a classifier should see.

    mode "part": the track with the highest mean pitch (the melody of folk tunes, the soprano,
    the first violin, the cantus). mode "skyline": at every onset the highest note sounding
    across all pitched tracks, each cut where the next kept note starts (a monophonic line even
    from a keyboard part; a note whose onset lies under a higher sounding note is dropped, not
    resumed later). Maps and title are kept.
    """
    pitched = [t for t in song.tracks if t.notes and not t.is_drum]
    out = Song(tracks=[], ticks_per_beat=song.ticks_per_beat, tempos=list(song.tempos),
               meters=list(song.meters), title=song.title)
    if not pitched:
        return out
    if mode == "part":
        top = max(pitched, key=lambda t: sum(n.pitch for n in t.notes) / len(t.notes))
        out.tracks = [Track(top.name, top.program, False, ROLE_MELODY, list(top.notes))]
        return out
    if mode != "skyline":
        raise ValueError(f"mode must be 'part' or 'skyline', got {mode!r}")
    notes = sorted((n for t in pitched for n in t.notes), key=lambda n: (n.start, -n.pitch))
    line: list[Note] = []
    for n in notes:
        if line and line[-1].start == n.start:
            continue  # a lower note of the same onset
        if line and n.start < line[-1].end:
            if n.pitch < line[-1].pitch:
                continue  # under a note still sounding above it
            prev = line.pop()
            line.append(Note(prev.start, n.start, prev.pitch, prev.velocity))
        line.append(n)
    out.tracks = [Track("top voice", pitched[0].program, False, ROLE_MELODY, line)]
    return out


def pulse_factor(song: Song, threshold_ql: float = 1.5) -> int:
    """2 when the song's median note lasts at least `threshold_ql` quarters (half-note-pulse
    notation), else 1. Measured per song, so it also works on a file a user brings: measured
    medians are Palestrina 2.0 q, Bach 1.0, Trecento 1.0 (its transcriptions are in 6/8, 3/4,
    2/4), folk 0.5, quartets 0.5."""
    return 2 if median_duration_ql(song) >= threshold_ql else 1


def pulse_normalised(song: Song, factor: int = 2) -> Song:
    """Divide every time by `factor` (2: a half-note pulse becomes a quarter-note pulse; 4/2 ->
    4/4) so rhythms of half-note-pulse collections compare with the others. Notes keep at least
    one tick."""
    def t(x: int) -> int:
        return x // factor

    tracks = [Track(tr.name, tr.program, tr.is_drum, tr.role,
                    [Note(t(n.start), max(t(n.end), t(n.start) + 1), n.pitch, n.velocity)
                     for n in tr.notes], tr.volume, tr.pan) for tr in song.tracks]
    meters = []
    for m in song.meters:
        den = m.denominator * factor
        meters.append(MeterChange(t(m.tick), m.numerator, den) if den <= 64
                      else MeterChange(t(m.tick), max(1, m.numerator // factor), m.denominator))
    return Song(tracks=tracks, ticks_per_beat=song.ticks_per_beat,
                tempos=[TempoChange(t(x.tick), x.bpm) for x in song.tempos], meters=meters,
                title=song.title)


def describe(pieces: Sequence[Piece]) -> str:
    lines = []
    labels = sorted({p.label for p in pieces}, key=lambda x: STYLES.index(x) if x in STYLES else 99)
    for label in labels:
        ps = [p for p in pieces if p.label == label]
        per = Counter(p.split for p in ps)
        groups = {s: len({p.group for p in ps if p.split == s}) for s in ("train", "valid", "test")}
        bars = sum(p.n_bars for p in ps)
        meters = Counter(p.meter for p in ps).most_common(3)
        med = statistics.median(p.meta.get("median_duration_ql", 0) for p in ps)
        lines.append(f"{label:12s} {len(ps):4d} pieces (train/valid/test {per['train']}/"
                     f"{per['valid']}/{per['test']}, groups {groups['train']}/{groups['valid']}/"
                     f"{groups['test']}), {bars} bars, meters {dict(meters)}, "
                     f"median note {med} q")
    return "\n".join(lines)
