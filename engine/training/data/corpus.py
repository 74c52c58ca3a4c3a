"""Pieces, leak-free splits, and the parse-once cache (npz of note arrays + a JSON manifest).

Why a cache: parsing the music21 corpus costs ~0.1-0.3 s a file (the whole corpus ~15 min on one
core), while loading the cached arrays takes milliseconds. Every loader in this package parses its
source into engine.music Songs once, stores them here, and hands out `Piece`s whose Song is
rebuilt lazily from the arrays on first use.

Splits are by *group* (a hymn tune, a mass, a tune number, a file), never by piece or window:
md5(group) mod 100 -> [0, 60) train, [60, 80) valid, [80, 100) test. The same group always lands
in the same split on every machine and every run, and a group never straddles two splits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import OutputError
from engine.fileio import atomic_path, atomic_write_text
from engine.music import Key, MeterChange, Note, Song, TempoChange, Track, estimate_key

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
#: Percent of groups per split, in SPLITS order.
SPLIT_PERCENT = (60, 20, 20)
#: Bump when the on-disk layout changes (every cache is then rebuilt).
CACHE_VERSION = 1
CACHE_ENV = "POPMUSICNET_CACHE"


def default_cache_dir() -> Path:
    """$POPMUSICNET_CACHE, else ~/.cache/popmusicnet/data."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "popmusicnet" / "data"


def music21_version() -> str:
    """The installed music21's version without importing it (an import costs ~0.7 s)."""
    from importlib import metadata

    try:
        return metadata.version("music21")
    except metadata.PackageNotFoundError:
        return "none"


# -- splits ------------------------------------------------------------------------------------
def group_bucket(group: str) -> int:
    """md5 of the group key, modulo 100 (stable across machines, Python versions and runs)."""
    return int(hashlib.md5(group.encode("utf-8")).hexdigest(), 16) % 100


def split_of(group: str, percent: Sequence[int] = SPLIT_PERCENT) -> str:
    """The split a group belongs to: md5(group) mod 100 against the cumulative percentages."""
    bucket = group_bucket(group)
    edge = 0
    for name, pct in zip(SPLITS, percent):
        edge += pct
        if bucket < edge:
            return name
    return SPLITS[-1]


def quota_split(groups: Iterable[str], percent: Sequence[int] = SPLIT_PERCENT,
                min_groups: int = 3) -> dict[str, str]:
    """Group -> split for a small collection: groups ordered by md5 (deterministic, unrelated to
    content), the last ones to test, the ones before to valid, each at least `min_groups` when
    there are enough groups (at least one group always stays in train).

    Used where md5 mod 100 alone could leave valid or test empty or tiny (a class with 17
    works, a user's folder of 8 files). Adding groups to the collection can move the boundary.
    """
    ordered = sorted(set(groups), key=lambda g: (hashlib.md5(g.encode("utf-8")).hexdigest(), g))
    n = len(ordered)
    total = sum(percent)
    n_valid = max(min_groups, round(n * percent[1] / total))
    n_test = max(min_groups, round(n * percent[2] / total))
    while n_valid + n_test > n - 1 and (n_valid > 0 or n_test > 0):
        if n_valid >= n_test and n_valid > 0:
            n_valid -= 1
        else:
            n_test -= 1
    n_train = n - n_valid - n_test
    out = {}
    for i, g in enumerate(ordered):
        out[g] = "train" if i < n_train else "valid" if i < n_train + n_valid else "test"
    return out


def join_by_keys(keys: Sequence[Iterable[str | None]]) -> list[int]:
    """Items that share any key, directly or through others, form one group (union-find).

    Returns, for each item, the smallest index in its group, so callers can name a group by a
    member. Empty or None keys join nothing.
    """
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, item_keys in enumerate(keys):
        for k in item_keys:
            if not k:
                continue
            if k in first:
                a, b = find(first[k]), find(i)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                first[k] = i
    return [find(i) for i in range(len(keys))]


def split(pieces: Iterable[Piece], name: str) -> list[Piece]:
    """The pieces of one split ("train", "valid" or "test")."""
    if name not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {name!r}")
    return [p for p in pieces if p.split == name]


def split_counts(pieces: Iterable[Piece]) -> dict[str, int]:
    counts = Counter(p.split for p in pieces)
    return {name: counts.get(name, 0) for name in SPLITS}


# -- pieces ------------------------------------------------------------------------------------
@dataclass(slots=True)
class Piece:
    """One piece of training data: a Song plus what the splits and the models need to know.

    `song` is built from the cached note arrays on first access (cheap to load many pieces);
    `notes` gives the raw (n, 5) int32 array [track, start, end, pitch, velocity] without building
    Note objects, for training code that goes straight to pianorolls.
    """

    id: str
    group: str
    split: str
    key: Key | None
    meter: str  # the first full bar's meter, e.g. "4/4" (a pickup is not the meter)
    label: str = ""  # class label (styles corpus); "" where there is none
    title: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    _song: Song | None = None
    _packed: dict[str, Any] | None = None

    @property
    def song(self) -> Song:
        if self._song is None:
            assert self._packed is not None
            self._song = unpack_song(self._packed)
        return self._song

    @property
    def notes(self) -> np.ndarray:
        if self._packed is None:
            self._packed = pack_song(self.song)
        return self._packed["notes"]

    @property
    def n_bars(self) -> int:
        return int(self.meta.get("n_bars", 0)) or len(self.song.bars())

    def __repr__(self) -> str:
        return (f"Piece({self.id!r}, group={self.group!r}, split={self.split!r}, key={self.key}, "
                f"meter={self.meter!r}{', label=' + repr(self.label) if self.label else ''})")


def first_full_meter(song: Song) -> MeterChange:
    """The meter of the first full bar (skipping a pickup)."""
    if song.pickup_ticks and len(song.meters) > 1:
        return song.meters[1]
    return song.meters[0]


def make_piece(song: Song, *, id: str, group: str, label: str = "", title: str = "",
               key: Key | None = None, meta: dict[str, Any] | None = None,
               percent: Sequence[int] = SPLIT_PERCENT, split_name: str | None = None) -> Piece:
    """Wrap a parsed Song as a Piece: split from the group, key estimated when not given
    (engine.music.estimate_key: the same Krumhansl-Schmuckler estimate the runtime uses to
    normalise a user's melody, so training and use agree), bars and pitch ranges in `meta`."""
    key = key if key is not None else estimate_key(song)
    meta = dict(meta or {})
    meta.setdefault("n_bars", len(song.bars()) if song.end > 0 else 0)
    meta.setdefault("pickup_ticks", song.pickup_ticks if song.end > 0 else 0)
    meta.setdefault("pitch_ranges", [list(t.pitch_range()) if t.notes else None
                                     for t in song.tracks])
    return Piece(id=id, group=group, split=split_name or split_of(group, percent), key=key,
                 meter=str(first_full_meter(song)), label=label, title=title or song.title,
                 meta=meta, _song=song)


# -- packing a Song into arrays ----------------------------------------------------------------
def pack_song(song: Song) -> dict[str, Any]:
    """Song -> arrays + plain-JSON track info (the inverse of unpack_song)."""
    rows = [(i, n.start, n.end, n.pitch, n.velocity)
            for i, t in enumerate(song.tracks) for n in t.notes]
    notes = np.array(rows, dtype=np.int32).reshape(-1, 5)
    return {
        "notes": notes,
        "meters": np.array([(m.tick, m.numerator, m.denominator) for m in song.meters],
                           dtype=np.int64).reshape(-1, 3),
        "tempos": np.array([(t.tick, t.bpm) for t in song.tempos], dtype=np.float64).reshape(-1, 2),
        "tracks": [{"name": t.name, "program": t.program, "is_drum": t.is_drum, "role": t.role,
                    "volume": t.volume, "pan": t.pan} for t in song.tracks],
        "ticks_per_beat": song.ticks_per_beat,
        "title": song.title,
    }


def unpack_song(packed: dict[str, Any]) -> Song:
    tracks = [Track(**info) for info in packed["tracks"]]
    # Bypass Note.__post_init__ validation: the arrays were written from valid Notes, and
    # building ~100k notes through the checked constructor is the slowest part of a load.
    new = object.__new__
    setattr_ = object.__setattr__
    for ti, start, end, pitch, vel in packed["notes"].tolist():
        note = new(Note)
        setattr_(note, "start", start)
        setattr_(note, "end", end)
        setattr_(note, "pitch", pitch)
        setattr_(note, "velocity", vel)
        tracks[ti].notes.append(note)
    return Song(
        tracks=tracks,
        ticks_per_beat=int(packed["ticks_per_beat"]),
        tempos=[TempoChange(int(t), float(b)) for t, b in packed["tempos"].tolist()],
        meters=[MeterChange(int(t), int(n), int(d)) for t, n, d in packed["meters"].tolist()],
        title=packed.get("title", ""),
    )


# -- the cache ---------------------------------------------------------------------------------
def _key_to_json(key: Key | None) -> dict[str, Any] | None:
    if key is None:
        return None
    return {"tonic": key.tonic, "mode": key.mode, "confidence": round(key.confidence, 4),
            "name": str(key)}


def _key_from_json(d: dict[str, Any] | None) -> Key | None:
    if not d:
        return None
    return Key(int(d["tonic"]), str(d["mode"]), float(d.get("confidence", 0.0)))


def cache_paths(cache_dir: str | Path, name: str) -> tuple[Path, Path]:
    cache_dir = Path(cache_dir)
    return cache_dir / f"{name}.npz", cache_dir / f"{name}.json"


def save_cache(cache_dir: str | Path | None, name: str, pieces: Sequence[Piece], *,
               parser_version: int, fingerprint: str = "",
               extra: dict[str, Any] | None = None) -> Path:
    """Write `name.npz` (all pieces' arrays, concatenated with offsets) then `name.json`
    (the manifest, written last: a cache without a matching manifest is never read)."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    npz_path, json_path = cache_paths(cache_dir, name)
    packed = [p._packed if p._packed is not None else pack_song(p.song) for p in pieces]

    def concat(key: str, width: int, dtype) -> tuple[np.ndarray, np.ndarray]:
        arrays = [pk[key] for pk in packed]
        offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(a) for a in arrays])
        data = np.concatenate(arrays).astype(dtype) if arrays else np.zeros((0, width), dtype)
        return data, offsets

    notes, note_off = concat("notes", 5, np.int32)
    meters, meter_off = concat("meters", 3, np.int64)
    tempos, tempo_off = concat("tempos", 2, np.float64)
    with atomic_path(npz_path) as tmp:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a name
            np.savez(fh, notes=notes, note_offsets=note_off, meters=meters,
                     meter_offsets=meter_off, tempos=tempos, tempo_offsets=tempo_off)
    manifest = {
        "cache_version": CACHE_VERSION,
        "parser_version": parser_version,
        "fingerprint": fingerprint,
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "npz_bytes": npz_path.stat().st_size,
        "split_counts": split_counts(pieces),
        **(extra or {}),
        "pieces": [
            {"id": p.id, "group": p.group, "split": p.split, "label": p.label, "title": p.title,
             "key": _key_to_json(p.key), "meter": p.meter, "meta": p.meta,
             "tracks": pk["tracks"], "ticks_per_beat": pk["ticks_per_beat"],
             "song_title": pk["title"]}
            for p, pk in zip(pieces, packed)
        ],
    }
    atomic_write_text(json_path, json.dumps(manifest, ensure_ascii=False, indent=1))
    log.info("cached %d pieces in %s", len(pieces), npz_path)
    return json_path


def try_save_cache(*args, **kwargs) -> Path | None:
    """save_cache, but a cache folder that cannot be written costs speed, not the data: the
    failure is logged and the caller goes on with the pieces it parsed."""
    try:
        return save_cache(*args, **kwargs)
    except (OSError, OutputError) as exc:
        log.warning("cannot write the data cache (%s): continuing without it", exc)
        return None


def read_manifest(cache_dir: str | Path | None, name: str) -> dict[str, Any] | None:
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    _, json_path = cache_paths(cache_dir, name)
    try:
        return json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_cache(cache_dir: str | Path | None, name: str, *, parser_version: int,
               fingerprint: str = "") -> list[Piece] | None:
    """The cached pieces, or None when the cache is missing, stale (another cache or parser
    version, another source fingerprint) or unreadable: the caller then rebuilds it."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    npz_path, _ = cache_paths(cache_dir, name)
    manifest = read_manifest(cache_dir, name)
    if manifest is None:
        return None
    if (manifest.get("cache_version") != CACHE_VERSION
            or manifest.get("parser_version") != parser_version
            or manifest.get("fingerprint", "") != fingerprint):
        log.info("cache %s is stale (version or source changed): rebuilding", name)
        return None
    try:
        if npz_path.stat().st_size != manifest.get("npz_bytes"):
            log.warning("cache %s: arrays do not match the manifest: rebuilding", name)
            return None
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError) as exc:
        log.warning("cache %s unreadable (%s): rebuilding", name, exc)
        return None
    pieces = []
    no, mo, to = arrays["note_offsets"], arrays["meter_offsets"], arrays["tempo_offsets"]
    for i, entry in enumerate(manifest["pieces"]):
        packed = {
            "notes": arrays["notes"][no[i]:no[i + 1]],
            "meters": arrays["meters"][mo[i]:mo[i + 1]],
            "tempos": arrays["tempos"][to[i]:to[i + 1]],
            "tracks": entry["tracks"],
            "ticks_per_beat": entry["ticks_per_beat"],
            "title": entry.get("song_title", ""),
        }
        pieces.append(Piece(id=entry["id"], group=entry["group"], split=entry["split"],
                            key=_key_from_json(entry.get("key")), meter=entry["meter"],
                            label=entry.get("label", ""), title=entry.get("title", ""),
                            meta=entry.get("meta", {}), _packed=packed))
    return pieces


