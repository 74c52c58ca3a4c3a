"""The Lakh Pianoroll Dataset, 5-track version (LPD-5), as Songs: the PopMusicNet report's set-up.

LPD-5 files are pypianoroll npz files with five tracks, Drums, Piano, Guitar, Bass, Strings, on a
grid of 24 steps per beat (`resolution`; files written by pypianoroll < 1.0 call it
`beat_resolution`), plus per-step `tempo` and `downbeat` arrays. Empty tracks in old files are
stored as (0, 128) arrays, so tracks are padded to one length (`pad_to_same()`) before use.

Conversion (pypianoroll reads the file; we only turn its arrays into notes):
- Piano is the melody-side input (role melody), Drums/Guitar/Bass/Strings the accompaniment,
  exactly as the report trained its model; tracks are always these five in this order, empty or
  not, so every Song has the same layout. Other track names (a differently made file) keep their
  order after them as accompaniment.
- A note is a run of non-zero steps of one pitch (a pianoroll has no onsets, so two repeated notes
  that touch become one: the dataset's own limitation); velocity is the run's first value (True in
  a binary roll -> 100).
- Step -> tick: ticks_per_beat 480, so 24 steps per beat is exactly 20 ticks a step.
- Meters from `downbeat`: each bar length (steps between downbeats / resolution, in quarters)
  becomes a meter (4 beats -> 4/4, 3 -> 3/4, 1.5 -> 3/8); steps before the first downbeat are a
  pickup bar. No downbeats -> 4/4.
- Tempo from `tempo` (BPM per step): a change wherever the value moves by more than 0.01 BPM.
- Group (for the split): LPD stores files under their Million Song Dataset track id
  (.../TRAAAGR128F425B14B/<md5>.npz): several MIDI versions of one song share that folder, so the
  id is the group; otherwise the file's path relative to the root.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import numpy as np

from engine.errors import UserInputError
from engine.music import (
    DEFAULT_TPB,
    ROLE_ACCOMPANIMENT,
    ROLE_MELODY,
    MeterChange,
    Note,
    Song,
    TempoChange,
    Track,
)
from engine.training.data.corpus import Piece, load_cache, make_piece, try_save_cache
from engine.training.data.m21 import ql_to_meter

log = logging.getLogger(__name__)

LPD5_TRACKS = ("Drums", "Piano", "Guitar", "Bass", "Strings")
LPD5_PROGRAMS = {"Drums": 0, "Piano": 0, "Guitar": 24, "Bass": 32, "Strings": 48}
MELODY_TRACK = "Piano"
#: Bump when the conversion changes: cached LPD pieces are then rebuilt.
PARSER_VERSION = 1
_MSD_ID = re.compile(r"^TR[A-Z0-9]{16}$")


def roll_to_notes(roll: np.ndarray, ticks_per_step: int) -> list[Note]:
    """(steps, 128) pianoroll (bool or velocities) -> notes, one per run of non-zero steps."""
    roll = np.asarray(roll)
    if roll.size == 0:
        return []
    on = roll > 0
    padded = np.zeros((on.shape[0] + 2, on.shape[1]), dtype=np.int8)
    padded[1:-1] = on
    diff = np.diff(padded, axis=0)
    starts_t, starts_p = np.nonzero(diff == 1)
    ends_t, ends_p = np.nonzero(diff == -1)
    # np.nonzero scans row-major (time first); sort both by (pitch, time) to pair runs
    s_order = np.lexsort((starts_t, starts_p))
    e_order = np.lexsort((ends_t, ends_p))
    notes = []
    binary = roll.dtype == np.bool_
    for s, e, p in zip(starts_t[s_order], ends_t[e_order], starts_p[s_order]):
        vel = 100 if binary else int(min(max(roll[s, p], 1), 127))
        notes.append(Note(int(s) * ticks_per_step, int(e) * ticks_per_step, int(p), vel))
    notes.sort()
    return notes


def meters_from_downbeats(downbeat: np.ndarray | None, resolution: int, n_steps: int,
                          ticks_per_step: int) -> list[MeterChange]:
    if downbeat is None or not np.any(downbeat):
        return [MeterChange(0, 4, 4)]
    beats = np.flatnonzero(downbeat)
    bounds = list(beats) + [max(n_steps, beats[-1] + 1)]
    changes: list[MeterChange] = []
    if beats[0] > 0:  # pickup
        pick = ql_to_meter(beats[0] / resolution)
        if pick:
            changes.append(MeterChange(0, *pick))
    last_len = None
    for i, start in enumerate(beats):
        length = bounds[i + 1] - start
        is_last = i == len(beats) - 1
        if is_last and last_len is not None:
            break  # the final bar may be cut short: keep the meter in force
        if length != last_len:
            m = ql_to_meter(length / resolution)
            if m:
                changes.append(MeterChange(int(start) * ticks_per_step, *m))
            last_len = length
    return changes or [MeterChange(0, 4, 4)]


def tempos_from_array(tempo: np.ndarray | None, ticks_per_step: int) -> list[TempoChange]:
    if tempo is None or len(tempo) == 0:
        return [TempoChange(0, 120.0)]
    out: list[TempoChange] = []
    last = None
    for step in np.flatnonzero(np.r_[True, np.abs(np.diff(tempo)) > 0.01]):
        bpm = float(np.clip(tempo[step], 1.0, 1000.0))
        if last is None or abs(bpm - last) > 0.01:
            out.append(TempoChange(int(step) * ticks_per_step, round(bpm, 3)))
            last = bpm
    return out


def multitrack_to_song(mt, *, title: str = "", ticks_per_beat: int = DEFAULT_TPB) -> Song:
    """A pypianoroll Multitrack -> Song with the five LPD-5 tracks first (see module docstring)."""
    resolution = int(mt.resolution)
    if ticks_per_beat % resolution:
        raise ValueError(f"resolution {resolution} does not divide {ticks_per_beat} ticks per beat")
    tps = ticks_per_beat // resolution
    mt.pad_to_same()  # old LPD files hold empty tracks as (0, 128)
    by_name = {}
    for t in mt.tracks:
        by_name.setdefault((t.name or "").strip(), t)
    n_steps = max((t.pianoroll.shape[0] for t in mt.tracks), default=0)
    tracks: list[Track] = []
    order = list(LPD5_TRACKS) + [n for n in by_name if n not in LPD5_TRACKS]
    for name in order:
        src = by_name.get(name)
        notes = roll_to_notes(src.pianoroll, tps) if src is not None else []
        is_drum = bool(src.is_drum) if src is not None else name == "Drums"
        program = int(src.program) if src is not None and src.program is not None \
            else LPD5_PROGRAMS.get(name, 0)
        tracks.append(Track(name=name, program=min(max(program, 0), 127), is_drum=is_drum,
                            role=ROLE_MELODY if name == MELODY_TRACK else ROLE_ACCOMPANIMENT,
                            notes=notes))
    tempo = getattr(mt, "tempo", None)
    downbeat = getattr(mt, "downbeat", None)
    return Song(tracks=tracks, ticks_per_beat=ticks_per_beat,
                tempos=tempos_from_array(tempo, tps),
                meters=meters_from_downbeats(downbeat, resolution, n_steps, tps), title=title)


def read_lpd5(path: str | Path) -> Song:
    """One LPD npz file -> Song (raises UserInputError naming the file if it is not one)."""
    import pypianoroll

    path = Path(path)
    try:
        mt = pypianoroll.load(path)
    except Exception as exc:  # zip/json/key errors from a file that is not an LPD npz
        raise UserInputError(f"{path}: not a pypianoroll npz file ({exc})") from exc
    return multitrack_to_song(mt, title=mt.name or path.stem)


def group_of(rel: Path) -> str:
    for part in reversed(rel.parts[:-1]):
        if _MSD_ID.match(part):
            return part
    return rel.as_posix()


def _fingerprint(files: list[Path], base: Path) -> str:
    h = hashlib.md5()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(base).as_posix()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def load_lpd5(root: str | Path, *, limit: int | None = None,
              cache_dir: str | Path | None = None, use_cache: bool = True) -> list[Piece]:
    """Every LPD npz below `root` (or the one file `root`) as Pieces; unreadable files are
    skipped with a warning, none readable is a UserInputError.

    The converted pieces are cached like the corpora (`lpd5-<md5 of the root path>` in
    `cache_dir`, default $POPMUSICNET_CACHE or ~/.cache/popmusicnet/data): LPD-5 cleansed holds
    21k files, read once. The cache is rebuilt when any file's name, size or mtime changes.
    """
    root = Path(root)
    if root.is_file():
        files, base = [root], root.parent
    elif root.is_dir():
        files, base = sorted(root.rglob("*.npz")), root
    else:
        raise UserInputError(f"{root}: no such file or folder")
    if limit is not None:
        files = files[:limit]
    name = "lpd5-" + hashlib.md5(str(root.resolve()).encode()).hexdigest()[:12]
    fingerprint = _fingerprint(files, base)
    if use_cache:
        cached = load_cache(cache_dir, name, parser_version=PARSER_VERSION,
                            fingerprint=fingerprint)
        if cached:
            return cached
    pieces, skipped = [], []
    for f in files:
        rel = f.relative_to(base)
        try:
            song = read_lpd5(f)
        except (UserInputError, ValueError) as exc:
            skipped.append(f"{rel}: {exc}")
            continue
        if not song.tracks_with_role(ROLE_MELODY)[0].notes:
            skipped.append(f"{rel}: empty piano track")
            continue
        pieces.append(make_piece(song, id=rel.as_posix(), group=group_of(rel),
                                 meta={"source": "lpd5"}))
    if skipped:
        log.warning("skipped %d LPD files: %s", len(skipped), "; ".join(skipped[:20]))
    if not pieces:
        raise UserInputError(f"{root}: no usable LPD-5 npz files"
                             + (f" ({skipped[0]})" if skipped else ""))
    if use_cache:
        try_save_cache(cache_dir, name, pieces, parser_version=PARSER_VERSION,
                       fingerprint=fingerprint, extra={"root": str(root), "skipped": skipped})
    return pieces
