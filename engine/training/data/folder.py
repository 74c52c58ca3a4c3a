"""A folder of the user's own MIDI files as training data.

Every *.mid / *.midi below the folder (recursively) is read with engine.midi_io.read_midi
(lenient by default: zero-length and overlapping notes are repaired rather than refused, since
hand-made files are full of them). In each file the melody track is the one the user names
(`melody_name`, matched on track names, case-insensitive: exact first, then prefix), or the one at
`melody_track` (0-based, as `popmusicnet accompany --melody-track`), or else
`Song.melody_track()`: a track marked melody, else the highest-pitched non-drum track. Every
other track with notes becomes an accompaniment track (drums stay drums); empty tracks are
dropped. A file with no accompaniment left teaches an accompanist nothing and is skipped.
Accompaniment tracks are named for use as role names: characters other than letters, digits,
`_` and `-` become `_`, an unnamed track is `partN` (N its place in the file), and a repeated
name gets a number.

Files that cannot be used are skipped with one warning listing them; if none is usable that is
an error (UserInputError) that names the folder and the first reasons.

Split: md5 of the file's path relative to the folder (the same rule as the corpora). A small
folder could leave valid or test empty that way; when that happens (and there are at least 3
files) the files are split by quota instead (corpus.quota_split: still by md5 order, still
one file in exactly one split).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import MidiFileError, UserInputError
from engine.music import ROLE_ACCOMPANIMENT, ROLE_MELODY, Song
from engine.training.data.corpus import Piece, make_piece, quota_split

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi")
NO_ACCOMPANIMENT = "no accompaniment track with notes"


@dataclass
class FolderData:
    pieces: list[Piece] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)


def find_midi_files(root: str | Path) -> list[Path]:
    """Every .mid/.midi file below `root` (suffix case-insensitive), sorted."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES)


def _read(path: Path, lenient: bool) -> Song:
    from engine.midi_io import read_midi

    return read_midi(path, lenient=lenient)


def choose_melody(song: Song, *, melody_name: str | None = None,
                  melody_track: int | None = None) -> int:
    """Index of the melody track in `song.tracks` (see the module docstring for the rules).

    Raises ValueError when the requested track does not exist or has no notes.
    """
    if melody_track is not None:
        if not 0 <= melody_track < len(song.tracks):
            raise ValueError(f"no track {melody_track} (the file has {len(song.tracks)})")
        if not song.tracks[melody_track].notes:
            raise ValueError(f"track {melody_track} has no notes")
        if song.tracks[melody_track].is_drum:
            raise ValueError(f"track {melody_track} is a drum track")
        return melody_track
    if melody_name:
        wanted = melody_name.strip().casefold()
        names = [t.name.strip().casefold() for t in song.tracks]
        for match in (lambda n: n == wanted, lambda n: n.startswith(wanted)):
            for i, n in enumerate(names):
                if match(n) and song.tracks[i].notes and not song.tracks[i].is_drum:
                    return i
        raise ValueError(f"no pitched track named {melody_name!r} with notes")
    melody = song.melody_track()
    if melody is None:
        raise ValueError("no pitched track with notes")
    return next(i for i, t in enumerate(song.tracks) if t is melody)


def assign_roles(song: Song, melody_index: int) -> Song:
    """A copy with the melody first (role melody) and every other track with notes after it
    (role accompaniment), in file order; empty tracks dropped."""
    out = song.copy()
    melody = out.tracks[melody_index]
    melody.role = ROLE_MELODY
    others = [(i, t) for i, t in enumerate(out.tracks) if i != melody_index and t.notes]
    # Track names become the accompanist's role names (and its graphs' file and node names):
    # every track gets a usable, distinct one. Unnamed tracks are "part2", "part3", ... by
    # their place in the file; a repeated name gets a number.
    melody.name = re.sub(r"[^A-Za-z0-9_-]+", "_", melody.name.strip()).strip("_") or "melody"
    used = {melody.name.lower()}
    for i, t in others:
        t.role = ROLE_ACCOMPANIMENT
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", t.name.strip()).strip("_") or f"part{i + 1}"
        base, k = name, 2
        while name.lower() in used:
            name, k = f"{base}{k}", k + 1
        used.add(name.lower())
        t.name = name
    out.tracks = [melody] + [t for _, t in others]
    return out


def read_folder(root: str | Path, *, melody_name: str | None = None,
                melody_track: int | None = None, lenient: bool = True,
                require_accompaniment: bool = True) -> FolderData:
    """Read every MIDI file below `root` into Pieces; unusable files go to `.skipped`."""
    root = Path(root)
    if not root.is_dir():
        raise UserInputError(f"{root}: not a folder")
    data = FolderData()
    for path in find_midi_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            song = _read(path, lenient)
            idx = choose_melody(song, melody_name=melody_name, melody_track=melody_track)
            song = assign_roles(song, idx)
        except MidiFileError as exc:
            data.skipped.append((rel, exc.reason))
            continue
        except (ValueError, OSError) as exc:
            data.skipped.append((rel, str(exc)))
            continue
        if require_accompaniment and len(song.tracks) < 2:
            data.skipped.append((rel, NO_ACCOMPANIMENT))
            continue
        song.title = song.title or path.stem
        data.pieces.append(make_piece(song, id=rel, group=rel, title=song.title,
                                      meta={"source": "folder", "melody_from": (
                                          "index" if melody_track is not None else
                                          "name" if melody_name else "pitch")}))
    splits = {p.split for p in data.pieces}
    if len(data.pieces) >= 3 and not {"valid", "test"} <= splits:
        table = quota_split([p.group for p in data.pieces], min_groups=1)
        for p in data.pieces:
            p.split = table[p.group]
    return data


def load_folder(root: str | Path, *, melody_name: str | None = None,
                melody_track: int | None = None, lenient: bool = True,
                require_accompaniment: bool = True) -> list[Piece]:
    """The usable MIDI files below `root` as Pieces (split by md5 of the relative path).

    Logs one warning listing skipped files; raises UserInputError when none is usable.
    """
    data = read_folder(root, melody_name=melody_name, melody_track=melody_track,
                       lenient=lenient, require_accompaniment=require_accompaniment)
    if not data.pieces:  # one line: the error below carries the reasons
        if not data.skipped:
            raise UserInputError(f"{root}: no .mid or .midi files found")
        if all(why == NO_ACCOMPANIMENT for _, why in data.skipped):
            raise UserInputError(
                f"{root}: nothing to accompany: each of its {len(data.skipped)} MIDI files has "
                "only a melody track (training needs files with a melody and at least one "
                "other track with notes)")
        first = "; ".join(f"{rel}: {why}" for rel, why in data.skipped[:3])
        raise UserInputError(f"{root}: none of {len(data.skipped)} MIDI files is usable "
                             f"({first})")
    if data.skipped:
        listing = "; ".join(f"{rel}: {why}" for rel, why in data.skipped[:20])
        more = f" (and {len(data.skipped) - 20} more)" if len(data.skipped) > 20 else ""
        log.warning("skipped %d of %d MIDI files in %s: %s%s", len(data.skipped),
                    len(data.skipped) + len(data.pieces), root, listing, more)
    log.info("folder %s: %d pieces, splits %s", root, len(data.pieces),
             {s: sum(p.split == s for p in data.pieces) for s in ("train", "valid", "test")})
    return data.pieces


__all__ = ["FolderData", "assign_roles", "choose_melody", "find_midi_files", "load_folder",
           "read_folder"]
