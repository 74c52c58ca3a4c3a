"""The Bach chorales of the music21 corpus as S/A/T/B Songs, cached and split by hymn tune.

Which files: every .mxl/.xml under music21's `bach/` corpus folder (the three .krn copies have
unnamed parts and duplicate .mxl files: dropped; the .rntxt files are harmonic analyses, not
scores). A file is kept when it has exactly one part whose name starts with each of sop/alt/ten/bas
(case-insensitive); files that add instruments (e.g. "bwv112.5-sc", oboes and horns doubling the
choir) keep only those four voices. Exact duplicates (the same four voices note for note) are
dropped, keeping the first id in sorted order.

Each piece: 4 tracks soprano/alto/tenor/bass, roles melody/accompaniment x3, GM program 52 (Choir
Aahs), meters from the soprano's measures (pickups as a short first bar), tempo from the score's
metronome marks (the files carry "playback only" marks, mostly 76 BPM) or the 120 BPM default.
Key: engine.music.estimate_key on all four voices (Krumhansl-Schmuckler, the estimate the runtime
uses on a user's melody, so that key normalisation means the same thing in training and in use).

Group key (what the split hashes): the hymn *tune*, so that two harmonisations of one melody never
sit on both sides of a split. Two signals are joined with union-find, since neither alone is enough:
1. the chorale's title in music21's ChoraleListRKBWV (Greentree's catalogue: mostly the tune name,
   "Jesu, meine Freude" covers 7 harmonisations), looked up by BWV number;
2. the soprano's tune: the pitch sounding on each beat (quarter note) from the first full bar, with
   repeated pitches merged, as a sequence of 10 intervals (transposition-invariant, blind to passing
   eighths and ornaments, which is where harmonisations of one melody differ). Catches the same
   tune under different texts (e.g. "Herzlich tut mich verlangen" / "O Haupt voll Blut und Wunden").
A connected group is named by its smallest normalised title ("tune:..."), else by its smallest
melody signature ("melody:..."). Both signals come from the corpus itself, so the split is the
same on every machine.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from engine.music import ROLE_ACCOMPANIMENT, ROLE_MELODY, Song
from engine.training.data.corpus import (
    Piece,
    join_by_keys,
    load_cache,
    make_piece,
    music21_version,
    split_counts,
    try_save_cache,
)

log = logging.getLogger(__name__)

#: Bump when parsing or grouping changes: cached chorales are then rebuilt.
PARSER_VERSION = 2
CACHE_NAME = "chorales"
VOICES = ("soprano", "alto", "tenor", "bass")
_PREFIXES = ("sop", "alt", "ten", "bas")
ROLES = (ROLE_MELODY, ROLE_ACCOMPANIMENT, ROLE_ACCOMPANIMENT, ROLE_ACCOMPANIMENT)
PROGRAM = 52  # GM Choir Aahs
#: Intervals in a melody signature (see the module docstring).
SIGNATURE_INTERVALS = 10


def chorale_paths() -> list[str]:
    """Corpus-relative paths ("bach/bwv1.6.mxl") of every Bach score in the music21 corpus."""
    from music21 import corpus

    root = Path(corpus.corpora.CoreCorpus().manualCoreCorpusPath or "")
    out = []
    for p in corpus.getComposer("bach"):
        p = Path(p)
        if p.suffix not in (".mxl", ".xml"):
            continue
        try:
            rel = p.relative_to(root)
        except ValueError:
            rel = Path("bach") / p.name
        out.append(rel.as_posix())
    return sorted(out)


def pick_satb(score) -> list | None:
    """The soprano, alto, tenor and bass parts of a score, or None unless each voice is named
    exactly once (part names starting sop/alt/ten/bas)."""
    found: dict[str, list] = {v: [] for v in VOICES}
    for part in score.parts:
        name = (part.partName or str(part.id or "")).strip().lower()
        for voice, prefix in zip(VOICES, _PREFIXES):
            if name.startswith(prefix):
                found[voice].append(part)
    if all(len(found[v]) == 1 for v in VOICES):
        return [found[v][0] for v in VOICES]
    return None


def parse_chorale(path: str) -> Song | None:
    """Parse one corpus file into an S/A/T/B Song (None if it has no clean S/A/T/B)."""
    from music21 import corpus

    from engine.training.data.m21 import parts_to_song

    score = corpus.parse(path)
    parts = pick_satb(score)
    if parts is None:
        return None
    song = parts_to_song(parts, names=VOICES, roles=ROLES, programs=[PROGRAM] * 4,
                         title=Path(path).stem)
    if any(not t.notes for t in song.tracks):
        return None
    return song


def bwv_of(path: str) -> str:
    """"bach/bwv112.5-sc.mxl" -> "112.5-sc"."""
    stem = Path(path).stem
    return stem[3:] if stem.lower().startswith("bwv") else stem


def _norm_title(title: str) -> str:
    t = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", " ", t).strip()


def chorale_titles() -> dict[str, str]:
    """BWV string -> normalised title from music21's ChoraleListRKBWV."""
    from music21.corpus import chorales

    out = {}
    for info in chorales.ChoraleListRKBWV().byBWV.values():
        out[str(info["bwv"])] = _norm_title(str(info["title"]))
    return out


def title_for(path: str, titles: dict[str, str]) -> str | None:
    bwv = bwv_of(path)
    for candidate in (bwv, bwv.split("-")[0], re.sub(r"-sc$", "", bwv)):
        if candidate in titles:
            return titles[candidate]
    return None


def melody_signature(song: Song, n_intervals: int = SIGNATURE_INTERVALS) -> str | None:
    """The soprano's beat-level tune as a transposition-invariant interval string (see docstring)."""
    melody = song.tracks[0].notes
    if not melody:
        return None
    tpb = song.ticks_per_beat
    pickup = song.pickup_ticks
    pitches: list[int] = []
    i = 0
    beat = pickup
    notes = sorted(melody)
    while beat < song.end and len(pitches) <= n_intervals:
        while i < len(notes) and notes[i].end <= beat:
            i += 1
        sounding = [n.pitch for n in notes[i:i + 4] if n.start <= beat < n.end]
        if sounding and (not pitches or pitches[-1] != max(sounding)):
            pitches.append(max(sounding))
        beat += tpb
    if len(pitches) < n_intervals + 1:
        return None
    return ",".join(str(b - a) for a, b in zip(pitches, pitches[1:]))


def content_hash(song: Song) -> str:
    h = hashlib.md5()
    for t in song.tracks:
        h.update(repr([(n.start, n.end, n.pitch) for n in t.notes]).encode())
    return h.hexdigest()


def group_keys(paths: Sequence[str], songs: Sequence[Song],
               titles: dict[str, str]) -> list[str]:
    """Union-find over shared titles and shared melody signatures (see module docstring)."""
    tit = [title_for(p, titles) for p in paths]
    sig = [melody_signature(s) for s in songs]
    roots = join_by_keys([(f"t:{t}" if t else None, f"m:{g}" if g else None)
                          for t, g in zip(tit, sig)])
    members: dict[int, list[int]] = {}
    for i, r in enumerate(roots):
        members.setdefault(r, []).append(i)
    keys = [""] * len(paths)
    for idx in members.values():
        ts = sorted(tit[i] for i in idx if tit[i])
        ss = sorted(sig[i] for i in idx if sig[i])
        if ts:
            name = f"tune:{ts[0]}"
        elif ss:
            name = f"melody:{ss[0]}"
        else:
            name = f"piece:{min(paths[i] for i in idx)}"
        for i in idx:
            keys[i] = name
    return keys


def _fingerprint(paths: Sequence[str] | None) -> str:
    src = "all" if paths is None else hashlib.md5("\n".join(sorted(paths)).encode()).hexdigest()
    return f"music21={music21_version()};paths={src}"


def build_chorales(paths: Sequence[str] | None = None) -> tuple[list[Piece], dict]:
    """Parse chorales (default: all of them) into Pieces; returns (pieces, stats)."""
    t0 = time.perf_counter()
    all_paths = list(paths) if paths is not None else chorale_paths()
    kept_paths: list[str] = []
    songs: list[Song] = []
    seen: dict[str, str] = {}
    skipped, dupes = [], []
    for n, path in enumerate(sorted(all_paths)):
        if n and n % 50 == 0:
            log.info("parsed %d/%d chorales", n, len(all_paths))
        try:
            song = parse_chorale(path)
        except Exception as exc:  # a corpus file music21 cannot read: skip it, say which
            log.warning("chorale %s: cannot parse (%s)", path, exc)
            song = None
        if song is None:
            skipped.append(path)
            continue
        h = content_hash(song)
        if h in seen:
            dupes.append((path, seen[h]))
            continue
        seen[h] = path
        kept_paths.append(path)
        songs.append(song)
    titles = chorale_titles()
    groups = group_keys(kept_paths, songs, titles)
    pieces = [make_piece(song, id=path, group=group, title=title_for(path, titles) or "",
                         meta={"bwv": bwv_of(path)})
              for path, song, group in zip(kept_paths, songs, groups)]
    stats = {"files": len(all_paths), "kept": len(pieces), "skipped": skipped,
             "duplicates": dupes, "groups": len(set(groups)),
             "parse_seconds": round(time.perf_counter() - t0, 1)}
    return pieces, stats


def load_chorales(cache_dir: str | Path | None = None, *, rebuild: bool = False,
                  paths: Sequence[str] | None = None) -> list[Piece]:
    """All S/A/T/B chorales as Pieces (.id .group .split .song .key .meter), from the cache when
    it is current, else parsed (~1-2 min) and cached. `paths` limits parsing to some corpus files
    (tests); it is part of the cache's fingerprint."""
    fingerprint = _fingerprint(paths)
    if not rebuild:
        pieces = load_cache(cache_dir, CACHE_NAME, parser_version=PARSER_VERSION,
                            fingerprint=fingerprint)
        if pieces is not None:
            return pieces
    pieces, stats = build_chorales(paths)
    log.info("chorales: %d kept of %d files, %d groups, %s, %.1f s", stats["kept"],
             stats["files"], stats["groups"], split_counts(pieces), stats["parse_seconds"])
    try_save_cache(cache_dir, CACHE_NAME, pieces, parser_version=PARSER_VERSION,
                   fingerprint=fingerprint, extra={"stats": stats})
    return pieces


def describe(pieces: Sequence[Piece]) -> str:
    """A short text summary: pieces, groups and bars per split, meters, modes."""
    lines = []
    for name in ("train", "valid", "test"):
        ps = [p for p in pieces if p.split == name]
        lines.append(f"{name:5s}: {len(ps):4d} pieces, {len({p.group for p in ps}):4d} groups, "
                     f"{sum(p.n_bars for p in ps):5d} bars")
    meters = Counter(p.meter for p in pieces)
    modes = Counter(p.key.mode if p.key else "none" for p in pieces)
    pickups = sum(1 for p in pieces if p.meta.get("pickup_ticks"))
    lines.append(f"meters: {dict(meters.most_common())}; keys: {dict(modes)}; "
                 f"with pickup: {pickups}")
    return "\n".join(lines)
