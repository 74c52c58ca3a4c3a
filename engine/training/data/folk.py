"""Folk melodies from the music21 corpus: an out-of-corpus evaluation set for the accompanist
(trained on Bach chorales); the naive "pick the triad that fits the bar" baseline and the chord
agreement measure are in engine.training.data.folk_triads.

Two sets, both read from the corpus that ships inside the music21 wheel (nothing downloaded):

1. `folk_chord_tunes()`: every ABC tune of the corpus that carries at least MIN_CHORDS chord
   symbols, with those chords as (tick, root pitch class, quality). What counts as a chord symbol:
   a quoted ABC string that music21 turns into a `harmony.ChordSymbol` (not a `NoChord`) *and*
   whose text starts with an upper-case A-G. music21 itself makes a ChordSymbol of any quoted
   string it can read as one, so a dynamic "f" becomes an F major chord and "e" an E major chord
   (O'Neill's and Ryan's Mammoth have a few dozen of those): the upper-case rule drops them.
   Which tunes get parsed: a text scan of every .abc file of FOLK_FOLDERS (all the corpus's ABC
   folders but josquin/, polyphonic art music whose quoted "A".."E" are section labels, not
   chords) keeps the tunes with at least MIN_CHORDS quoted strings starting with A-G outside
   header lines (a superset of what can pass), and only those are parsed. With music21 10.5.1
   that is two tunes, both in nottingham-dataset/reelsa-c.abc (46 chord symbols): no other ABC
   file of the corpus has chord symbols; miscFolk's quoted "A" "B" "C" are section labels (at most
   3 a tune). The counts are in the manifest's "stats" (`cache_stats`).
2. `folk_melodies(n, seed)`: held-out folk melodies without chords, for key and meter coverage:
   up to `n` tunes from five sources (SOURCE_SHARES: Essen German subsets, other Essen subsets,
   O'Neill's 1850 deduplicated by tune number, Ryan's Mammoth one tune a file, Aird's Airs). Within
   a source, tunes are bucketed by the meter of their M: header (2/4, 3/4, 4/4, 6/8, other; "C" is
   4/4, "C|" 2/2; tunes with "M:none" or no M: are not used) and taken round-robin over the buckets,
   each bucket in the order of md5(f"{seed}:{tune id}") -- the id, never the content, so the
   selection is reproducible and unrelated to the music. Only the chosen tunes are parsed (one
   tune of a file by its X: number); a tune that fails to parse or has fewer than MIN_NOTES notes
   is replaced by the next one of its bucket.

Each tune becomes a `FolkTune` whose `song` has one track "Melody" (ROLE_MELODY, GM 73 flute),
converted with the shared helpers of m21.py (`parts_to_song`: ties merged, 480 ticks a beat, a
pickup written as a short first meter followed by the meter in force, tempo from the score or
120 BPM). The melody is the first part of the score; where it holds double stops (fife tunes),
only the highest note of each onset is kept and a note is cut where the next one starts. Chord
ticks come from the ChordSymbols' offsets in the same flattened part as the notes, so a pickup
is included the same way (tick 0 is the start of the pickup bar).

Key: the tune's own K: field as music21 parses it (engine.music.Key with confidence 1.0, since it
is notated, not estimated). music21 gives a `key.Key` with a mode: major, ionian, lydian and
mixolydian map to major, minor, aeolian, dorian, phrygian and locrian to minor, the tonic kept
(A dorian -> A minor, D mixolydian -> D major). Where it gives only a `KeySignature` (no mode),
major is assumed (the signature's major tonic); with no key at all, C major (the ABC default).
`FolkTune.key_source` says which of the three happened. Beware: a bare "K:G" is read by music21
as a Key, G major, and Essen's K: fields almost never name a mode (11 "Dm"/"Gm" among ~8,500),
so Essen tunes in minor come out as the major key of their K: field; O'Neill's, Ryan's, Aird's
and the Nottingham tunes do write minor and modal keys ("Em", "Ador", "AMixolydian").

Both sets are cached like the other corpora (corpus.save_cache / load_cache, npz + JSON,
$POPMUSICNET_CACHE via corpus.default_cache_dir) as "folk-chords" and "folk-melodies-N-SEED";
chords live in each piece's meta.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.music import ROLE_MELODY, Key, Note, Song
from engine.training.data.corpus import (
    Piece,
    first_full_meter,
    load_cache,
    make_piece,
    music21_version,
    read_manifest,
    try_save_cache,
)
from engine.training.data.folk_triads import Chord

log = logging.getLogger(__name__)

#: Bump when parsing or selection changes: cached folk sets are then rebuilt.
PARSER_VERSION = 1
CHORDS_CACHE_NAME = "folk-chords"
MIN_CHORDS = 4
MIN_NOTES = 8
PROGRAM = 73  # GM Flute
QUALITIES = ("maj", "min", "dom7", "dim", "other")
_KIND_TO_QUALITY = {
    "major": "maj", "minor": "min", "dominant-seventh": "dom7", "diminished": "dim",
    "diminished-seventh": "dim", "half-diminished": "dim",
}
#: The corpus folders of ABC folk tunes (folk_chord_tunes scans these).
FOLK_FOLDERS = ("airdsAirs", "essenFolksong", "miscFolk", "nottingham-dataset", "oneills1850",
                "ryansMammoth")
_MINOR_MODES = frozenset({"minor", "aeolian", "dorian", "phrygian", "locrian"})

#: (source name, folder, file-name prefixes or None for all, share of n)
_ESSEN_GERMAN = ("altdeu", "ballad", "boehme", "dva", "erk", "fink", "kinder", "zuccal")
_ESSEN_OTHER = ("han", "irl", "lot", "lux")
SOURCE_SHARES: tuple[tuple[str, str, tuple[str, ...] | None, int], ...] = (
    ("essen_german", "essenFolksong", _ESSEN_GERMAN, 3),
    ("essen_other", "essenFolksong", _ESSEN_OTHER, 2),
    ("oneills", "oneills1850", None, 3),
    ("ryans", "ryansMammoth", None, 2),
    ("airds", "airdsAirs", None, 2),
)
METER_BUCKETS = ("2/4", "3/4", "4/4", "6/8", "other")


@dataclass(slots=True)
class FolkTune:
    """One folk tune: a one-track melody Song, its chord symbols (empty for `folk_melodies`),
    and the key notated in its K: field."""

    id: str  # "nottingham-dataset/reelsa-c.abc#80": corpus path + X: number
    title: str
    song: Song
    chords: list[Chord]
    key: Key
    key_source: str = ""  # "key" | "signature (major assumed)" | "none (C major assumed)"
    source: str = ""  # corpus folder, or the folk_melodies source name
    meter: str = ""  # the first full bar's meter

    @property
    def melody(self) -> list[Note]:
        return self.song.tracks[0].notes


# -- the ABC text, read without parsing -------------------------------------------------------
_X = re.compile(r"^X:\s*(\d+)", re.M)
_FIELD_LINE = re.compile(r"^\s*[A-Za-z]:")
_QUOTED = re.compile(r'"([^"]*)"')


@dataclass(frozen=True, slots=True)
class AbcTune:
    """One tune of an ABC file as its text says (no music21 parsing)."""

    path: str  # corpus-relative
    number: int
    title: str
    meter: str  # the first M: value, "" if none
    body: str = field(repr=False, default="")

    @property
    def id(self) -> str:
        return f"{self.path}#{self.number}"


def corpus_root() -> Path:
    from engine.training.data.styles import corpus_root as _root

    return _root()


def abc_tunes(path: str, *, keep_body: bool = False) -> list[AbcTune]:
    """Every tune (X: block) of a corpus-relative ABC file, with title and M: from the text."""
    text = (corpus_root() / path).read_text(encoding="utf-8", errors="replace")
    matches = list(_X.finditer(text))
    out = []
    for i, m in enumerate(matches):
        body = text[m.end():matches[i + 1].start() if i + 1 < len(matches) else len(text)]
        t = re.search(r"^T:\s*(.*)$", body, re.M)
        mm = re.search(r"^M:\s*([^%\r\n]*)", body, re.M)
        out.append(AbcTune(path, int(m.group(1)), t.group(1).strip() if t else "",
                           mm.group(1).strip() if mm else "", body if keep_body else ""))
    return out


def chord_like_strings(body: str) -> list[str]:
    """Quoted strings of a tune's music lines (header and comment lines skipped) that could be
    chord symbols: after music21's own clean-up (spaces and parentheses dropped) they start with
    an upper-case A-G."""
    out = []
    for line in body.splitlines():
        if _FIELD_LINE.match(line) or line.lstrip().startswith("%"):
            continue
        for q in _QUOTED.findall(line):
            q = re.sub(r"[()]", "", q).strip()
            if q[:1] in ("A", "B", "C", "D", "E", "F", "G"):
                out.append(q)
    return out


def _abc_files(folder: str | None = None) -> list[str]:
    root = corpus_root()
    base = root / folder if folder else root
    return sorted(p.relative_to(root).as_posix() for p in base.rglob("*.abc") if p.is_file())


def _norm_meter(text: str) -> str:
    t = text.replace(" ", "")
    if t == "C":
        return "4/4"
    if t == "C|":
        return "2/2"
    m = re.match(r"^(\d+)/(\d+)", t)
    return f"{int(m.group(1))}/{int(m.group(2))}" if m else ""


# -- music21 -> FolkTune ---------------------------------------------------------------------------
def _is_chord_symbol(cs) -> bool:
    from music21 import harmony

    return (isinstance(cs, harmony.ChordSymbol) and not isinstance(cs, harmony.NoChord)
            and cs.figure[:1] in ("A", "B", "C", "D", "E", "F", "G") and cs.root() is not None)


def chord_quality(cs) -> str:
    """A music21 ChordSymbol's chordKind -> one of QUALITIES."""
    return _KIND_TO_QUALITY.get(cs.chordKind, "other")


def _part_chords(part, ticks_per_beat: int) -> list[Chord]:
    from music21 import harmony

    from engine.training.data.m21 import ql_to_ticks

    out = []
    for cs in part.flatten().getElementsByClass(harmony.ChordSymbol):
        if _is_chord_symbol(cs):
            out.append((ql_to_ticks(cs.offset, ticks_per_beat), int(cs.root().pitchClass),
                        chord_quality(cs)))
    out.sort()
    # Two symbols on one tick: the last one written holds.
    dedup: dict[int, Chord] = {}
    for c in out:
        dedup[c[0]] = c
    return sorted(dedup.values())


def notated_key(part) -> tuple[Key, str]:
    """The key of the tune's first K: field (see the module docstring for modes)."""
    from music21 import key as m21key

    sigs = list(part.recurse().getElementsByClass(m21key.KeySignature))
    if not sigs:
        return Key(0, "major", 1.0), "none (C major assumed)"
    k = sigs[0]
    if isinstance(k, m21key.Key):
        mode = "minor" if str(k.mode).lower() in _MINOR_MODES else "major"
        return Key(int(k.tonic.pitchClass), mode, 1.0), "key"
    return (Key(int(k.asKey("major").tonic.pitchClass), "major", 1.0),
            "signature (major assumed)")


def _skyline(notes: Sequence[Note]) -> list[Note]:
    """One note at a time: the highest of each onset, cut where the next onset starts."""
    by_start: dict[int, Note] = {}
    for n in notes:
        if n.start not in by_start or n.pitch > by_start[n.start].pitch:
            by_start[n.start] = n
    starts = sorted(by_start)
    out = []
    for i, s in enumerate(starts):
        n = by_start[s]
        end = min(n.end, starts[i + 1]) if i + 1 < len(starts) else n.end
        out.append(Note(s, end, n.pitch, n.velocity) if end != n.end else n)
    return out


def parse_tune(path: str, number: int, *, title: str = "", with_chords: bool = True,
               ticks_per_beat: int | None = None) -> tuple[Song, list[Chord], Key, str]:
    """One tune of a corpus ABC file -> (melody Song, chords, key, key source)."""
    from music21 import corpus, stream

    from engine.music import DEFAULT_TPB
    from engine.training.data.m21 import parts_to_song

    tpb = ticks_per_beat or DEFAULT_TPB
    obj = corpus.parse(path, number=number)
    if isinstance(obj, stream.Opus):
        obj = obj.scores[0]
    parts = list(obj.parts) if hasattr(obj, "parts") and len(obj.parts) else [obj]
    part = parts[0]
    if not title and obj.metadata is not None:
        title = obj.metadata.title or ""
    # ABC chord symbols have no duration, so part_notes skips them (end == start).
    song = parts_to_song([part], names=["Melody"], roles=[ROLE_MELODY], programs=[PROGRAM],
                         title=title, ticks_per_beat=tpb)
    song.tracks[0].notes = _skyline(song.tracks[0].notes)
    chords = _part_chords(part, tpb) if with_chords else []
    key, key_source = notated_key(part)
    return song, chords, key, key_source


# -- caching -------------------------------------------------------------------------------------
def _to_piece(t: FolkTune, meta: dict[str, Any]) -> Piece:
    meta = dict(meta, chords=[list(c) for c in t.chords], key_source=t.key_source,
                source=t.source)
    return make_piece(t.song, id=t.id, group=t.id, title=t.title, key=t.key, meta=meta,
                      split_name="test")


def _from_piece(p: Piece) -> FolkTune:
    return FolkTune(id=p.id, title=p.title, song=p.song,
                    chords=[(int(a), int(b), str(c)) for a, b, c in p.meta.get("chords", [])],
                    key=p.key if p.key is not None else Key(0, "major", 1.0),
                    key_source=p.meta.get("key_source", ""), source=p.meta.get("source", ""),
                    meter=p.meter)


def _fingerprint(**kw: Any) -> str:
    return ";".join([f"music21={music21_version()}"] + [f"{k}={v}" for k, v in sorted(kw.items())])


def cache_stats(name: str, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """The "stats" written with a cached set (counts per file, failures, parse time)."""
    manifest = read_manifest(cache_dir, name)
    return dict(manifest.get("stats", {})) if manifest else {}


# -- 1. tunes with chord symbols -------------------------------------------------------------------
def build_folk_chord_tunes(min_chords: int = MIN_CHORDS) -> tuple[list[FolkTune], dict]:
    """Scan the ABC files of FOLK_FOLDERS, parse the candidate tunes; (tunes, stats)."""
    t0 = time.perf_counter()
    candidates: list[AbcTune] = []
    for path in (p for folder in FOLK_FOLDERS for p in _abc_files(folder)):
        for tune in abc_tunes(path, keep_body=True):
            if len(chord_like_strings(tune.body)) >= min_chords:
                candidates.append(tune)
    tunes: list[FolkTune] = []
    failed: list[str] = []
    too_few: list[str] = []
    for c in candidates:
        try:
            song, chords, key, key_source = parse_tune(c.path, c.number, title=c.title)
        except Exception as exc:  # a tune music21 cannot read: skip it, say which
            log.warning("folk chords: %s cannot be parsed (%s)", c.id, exc)
            failed.append(f"{c.id}: {type(exc).__name__}: {exc}"[:200])
            continue
        if len(chords) < min_chords or not song.tracks[0].notes:
            too_few.append(c.id)
            continue
        tunes.append(FolkTune(c.id, c.title or song.title, song, chords, key, key_source,
                              source=c.path.split("/")[0], meter=str(first_full_meter(song))))
    per_file = Counter(t.id.split("#")[0] for t in tunes)
    stats = {"candidates": len(candidates), "kept": len(tunes), "per_file": dict(per_file),
             "failed": failed, "too_few_chords": too_few,
             "parse_seconds": round(time.perf_counter() - t0, 1)}
    return tunes, stats


def folk_chord_tunes(cache_dir: str | Path | None = None, *,
                     rebuild: bool = False) -> list[FolkTune]:
    """Every ABC tune of the music21 corpus with >= MIN_CHORDS chord symbols and a melody, as
    FolkTunes (see the module docstring), cached as "folk-chords"."""
    fp = _fingerprint(min_chords=MIN_CHORDS, folders=",".join(FOLK_FOLDERS))
    if not rebuild:
        pieces = load_cache(cache_dir, CHORDS_CACHE_NAME, parser_version=PARSER_VERSION,
                            fingerprint=fp)
        if pieces is not None:
            return [_from_piece(p) for p in pieces]
    tunes, stats = build_folk_chord_tunes()
    log.info("folk chords: %d tunes (%s) of %d candidates, %d failed, %.1f s", stats["kept"],
             stats["per_file"], stats["candidates"], len(stats["failed"]),
             stats["parse_seconds"])
    try_save_cache(cache_dir, CHORDS_CACHE_NAME, [_to_piece(t, {}) for t in tunes],
                   parser_version=PARSER_VERSION, fingerprint=fp, extra={"stats": stats})
    return tunes


# -- 2. held-out melodies --------------------------------------------------------------------------
def _source_quotas(n: int) -> list[int]:
    """n split over SOURCE_SHARES by largest remainder (ties: the earlier source)."""
    total = sum(s[3] for s in SOURCE_SHARES)
    raw = [n * s[3] / total for s in SOURCE_SHARES]
    quotas = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - quotas[i]), i))
    for i in order[:n - sum(quotas)]:
        quotas[i] += 1
    return quotas


def source_tunes(folder: str, prefixes: tuple[str, ...] | None) -> list[AbcTune]:
    """The tunes a folk_melodies source draws from (text only; O'Neill's deduplicated by tune
    number, Ryan's Mammoth the first tune of each file, Essen's test*/variant* files left out)."""
    out: list[AbcTune] = []
    seen: set[int] = set()
    for path in _abc_files(folder):
        stem = Path(path).stem
        if prefixes is not None and not stem.startswith(prefixes):
            continue
        tunes = abc_tunes(path)
        if folder == "ryansMammoth":
            tunes = tunes[:1]
        for t in tunes:
            if folder == "oneills1850":
                if t.number in seen:
                    continue
                seen.add(t.number)
            out.append(t)
    return out


def meter_bucket(meter_text: str) -> str | None:
    """The M: header -> one of METER_BUCKETS (None: no usable meter, e.g. "none")."""
    m = _norm_meter(meter_text)
    if not m:
        return None
    return m if m in METER_BUCKETS else "other"


def selection_order(tunes: Sequence[AbcTune], seed: int) -> list[AbcTune]:
    """Round-robin over the meter buckets, each in md5(f"{seed}:{id}") order."""
    buckets: dict[str, list[AbcTune]] = {}
    for t in tunes:
        b = meter_bucket(t.meter)
        if b is not None:
            buckets.setdefault(b, []).append(t)
    for b in buckets.values():
        b.sort(key=lambda t: (hashlib.md5(f"{seed}:{t.id}".encode()).hexdigest(), t.id))
    lists = [buckets[b] for b in METER_BUCKETS if b in buckets]
    out: list[AbcTune] = []
    for i in range(max((len(x) for x in lists), default=0)):
        out.extend(x[i] for x in lists if i < len(x))
    return out


def build_folk_melodies(n: int = 120, seed: int = 0) -> tuple[list[FolkTune], dict]:
    """Parse the selected melodies (see the module docstring); returns (tunes, stats)."""
    t0 = time.perf_counter()
    tunes: list[FolkTune] = []
    failed: list[str] = []
    short: list[str] = []
    per_source: dict[str, int] = {}
    for (name, folder, prefixes, _), quota in zip(SOURCE_SHARES, _source_quotas(n)):
        if quota <= 0:
            continue
        order = selection_order(source_tunes(folder, prefixes), seed)
        # Round-robin again over the buckets as tunes are accepted, so a failed tune is
        # replaced from its own bucket.
        queues: dict[str, list[AbcTune]] = {}
        for t in order:
            queues.setdefault(meter_bucket(t.meter) or "other", []).append(t)
        names = [b for b in METER_BUCKETS if b in queues]
        got = 0
        while got < quota and any(queues[b] for b in names):
            for b in names:
                if got >= quota:
                    break
                while queues[b]:
                    t = queues[b].pop(0)
                    try:
                        song, _, key, key_source = parse_tune(t.path, t.number, title=t.title,
                                                              with_chords=False)
                    except Exception as exc:  # music21 cannot read it: the next one
                        log.warning("folk melodies: %s cannot be parsed (%s)", t.id, exc)
                        failed.append(f"{t.id}: {type(exc).__name__}: {exc}"[:200])
                        continue
                    if len(song.tracks[0].notes) < MIN_NOTES:
                        short.append(t.id)
                        continue
                    tunes.append(FolkTune(t.id, t.title or song.title, song, [], key,
                                          key_source, source=name,
                                          meter=str(first_full_meter(song))))
                    got += 1
                    break
        per_source[name] = got
    stats = {"n": n, "seed": seed, "kept": len(tunes), "per_source": per_source,
             "per_meter": dict(Counter(t.meter for t in tunes).most_common()),
             "failed": failed, "too_short": short,
             "parse_seconds": round(time.perf_counter() - t0, 1)}
    return tunes, stats


def folk_melodies(n: int = 120, seed: int = 0, cache_dir: str | Path | None = None, *,
                  rebuild: bool = False) -> list[FolkTune]:
    """About `n` held-out folk melodies without chords (chords=[]), spread over sources and
    meters (see the module docstring), cached as "folk-melodies-N-SEED"."""
    name = f"folk-melodies-{n}-{seed}"
    fp = _fingerprint(n=n, seed=seed, min_notes=MIN_NOTES)
    if not rebuild:
        pieces = load_cache(cache_dir, name, parser_version=PARSER_VERSION, fingerprint=fp)
        if pieces is not None:
            return [_from_piece(p) for p in pieces]
    tunes, stats = build_folk_melodies(n, seed)
    log.info("folk melodies: %d tunes %s %s, %d failed, %.1f s", stats["kept"],
             stats["per_source"], stats["per_meter"], len(stats["failed"]),
             stats["parse_seconds"])
    try_save_cache(cache_dir, name, [_to_piece(t, {}) for t in tunes],
                   parser_version=PARSER_VERSION, fingerprint=fp, extra={"stats": stats})
    return tunes


def folk_dev_tunes(n: int = 300, seed: int = 7, cache_dir: str | Path | None = None) \
        -> list[FolkTune]:
    """Folk melodies for choosing decodings and checking the key finder, which no evaluation
    scores: drawn as `folk_melodies` draws them but with another seed, those with a notated
    key (K: field) only, the evaluation's melodies and the tunes with chord symbols left out."""
    scored = ({t.id for t in folk_melodies(cache_dir=cache_dir)}
              | {t.id for t in folk_chord_tunes(cache_dir)})
    return [t for t in folk_melodies(n, seed, cache_dir)
            if t.id not in scored and t.key_source == "key"]


def describe(tunes: Sequence[FolkTune]) -> str:
    """Counts per source, meter and mode, and chords."""
    src = Counter(t.source for t in tunes)
    meters = Counter(t.meter for t in tunes)
    modes = Counter(t.key.mode for t in tunes)
    n_chords = sum(len(t.chords) for t in tunes)
    return (f"{len(tunes)} tunes; sources {dict(src.most_common())}; meters "
            f"{dict(meters.most_common())}; modes {dict(modes)}; {n_chords} chords")
