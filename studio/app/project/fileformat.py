"""The project file: JSON holding the song as an embedded Standard MIDI File (base64) plus what a
MIDI file does not carry (track roles, mute/solo, loop region, cursor).

Why MIDI inside JSON: the music stays readable by any MIDI tool (decode one field), and the JSON
around it is free to grow. Track metadata is stored too and re-applied after decoding, since a
MIDI writer may not keep every field (roles, empty tracks). Writes are atomic.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import UserInputError
from engine.fileio import atomic_write_text
from engine.music import ROLES, Song, Track
from studio.app import services
from studio.app.document import MixerState

FORMAT = "popmusicnet-project"
VERSION = 1
SUFFIX = ".pmn"


class ProjectFileError(UserInputError):
    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: {reason}")


@dataclass
class Project:
    song: Song
    mixer: list[MixerState] = field(default_factory=list)
    loop: tuple[int, int] | None = None
    cursor: int = 0


def to_json(project: Project) -> str:
    song = project.song
    data = {
        "format": FORMAT,
        "version": VERSION,
        "title": song.title,
        "tracks": [{"name": t.name, "program": t.program, "is_drum": t.is_drum, "role": t.role,
                    "volume": t.volume, "pan": t.pan, "notes": len(t.notes),
                    "mute": m.mute, "solo": m.solo}
                   for t, m in zip(song.tracks,
                                   project.mixer or [MixerState()] * len(song.tracks))],
        "loop": list(project.loop) if project.loop else None,
        "cursor": project.cursor,
        "midi": base64.b64encode(services.midi_bytes(song)).decode("ascii"),
    }
    return json.dumps(data, indent=1)


def save(project: Project, path: str | Path) -> Path:
    return atomic_write_text(path, to_json(project))


MAX_PROJECT_BYTES = 64 * 2**20

# The document's schema: key -> (check, what it must be). Every key but format and midi is
# optional; a value of the wrong type or out of range refuses the file (nothing is guessed).
_TRACK_FIELDS = {
    "name": (lambda v: isinstance(v, str) and len(v) <= 1000, "a string"),
    "program": (lambda v: _is_int(v) and 0 <= v <= 127, "an integer 0..127"),
    "is_drum": (lambda v: isinstance(v, bool), "true or false"),
    "role": (lambda v: v in ROLES, "one of " + ", ".join(ROLES)),
    "volume": (lambda v: _is_int(v) and 0 <= v <= 127, "an integer 0..127"),
    "pan": (lambda v: _is_int(v) and 0 <= v <= 127, "an integer 0..127"),
    "notes": (lambda v: _is_int(v) and 0 <= v <= 10**7, "a count of notes"),
    "mute": (lambda v: isinstance(v, bool), "true or false"),
    "solo": (lambda v: isinstance(v, bool), "true or false"),
}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate(data, path: str | Path = "<project>") -> None:
    """Raise ProjectFileError naming `path` unless `data` (parsed JSON) is a whole, sane
    project document."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProjectFileError(path, f"not a {FORMAT} file")
    version = data.get("version", VERSION)
    if not _is_int(version) or version < 1:
        raise ProjectFileError(path, f"bad format version {version!r:.40}")
    if version > VERSION:
        raise ProjectFileError(path, f"made by a newer version (format {version})")
    if not isinstance(data.get("midi"), str):
        raise ProjectFileError(path, "the embedded MIDI data is missing or corrupt")
    if not isinstance(data.get("title", ""), str):
        raise ProjectFileError(path, "title must be a string")
    tracks = data.get("tracks", [])
    if tracks is None:
        tracks = []
    from engine.midi_io import MAX_TRACKS

    if not isinstance(tracks, list) or len(tracks) > MAX_TRACKS:
        raise ProjectFileError(path, f"tracks must be a list of at most {MAX_TRACKS} objects")
    for i, t in enumerate(tracks, 1):
        if not isinstance(t, dict):
            raise ProjectFileError(path, f"track {i} must be an object")
        for key, (check, what) in _TRACK_FIELDS.items():
            if key in t and not check(t[key]):
                raise ProjectFileError(path, f"track {i}: {key} must be {what}, got "
                                             f"{t[key]!r:.40}")
    loop = data.get("loop")
    if loop is not None and not (isinstance(loop, list) and len(loop) == 2
                                 and all(_is_int(x) and 0 <= x < 2**40 for x in loop)
                                 and loop[0] < loop[1]):
        raise ProjectFileError(path, "loop must be null or [start, end] ticks with start < end")
    cursor = data.get("cursor", 0)
    if not (_is_int(cursor) and 0 <= cursor < 2**40):
        raise ProjectFileError(path, f"cursor must be a tick >= 0, got {cursor!r:.40}")


def from_json(text: str, path: str | Path = "<project>") -> Project:
    from engine.errors import MidiFileError

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectFileError(path, f"not a project file (bad JSON: {exc.msg})") from None
    except (RecursionError, ValueError) as exc:  # nesting too deep; a number too long
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ProjectFileError(path, f"not a project file ({reason})") from None
    validate(data, path)
    try:
        midi = base64.b64decode(data["midi"], validate=True)
    except (binascii.Error, ValueError):
        raise ProjectFileError(path, "the embedded MIDI data is missing or corrupt") from None
    try:
        song = services.song_from_midi_bytes(midi, name=path)
    except MidiFileError as exc:
        raise ProjectFileError(path, f"the embedded MIDI data: {exc.reason}") from None
    song.title = data.get("title", song.title)
    meta = data.get("tracks") or []
    _restore_tracks(song, meta)
    mixer = [MixerState(bool(m.get("mute")), bool(m.get("solo"))) for m in meta] \
        if len(meta) == len(song.tracks) else []
    loop = data.get("loop")
    return Project(song, mixer, tuple(loop) if loop else None, int(data.get("cursor", 0)))


def _restore_tracks(song: Song, meta: list[dict]) -> None:
    """Re-apply stored track fields; re-create tracks the MIDI round trip dropped (empty ones)."""
    if len(meta) != len(song.tracks):
        with_notes = iter(song.tracks)
        rebuilt = []
        for m in meta:
            rebuilt.append(next(with_notes, None) if m.get("notes", 0) else None)
            if rebuilt[-1] is None:
                rebuilt[-1] = Track()
        if all(t is not None for t in rebuilt) and next(with_notes, None) is None:
            song.tracks = rebuilt
        else:
            return  # the file and its metadata disagree: keep what MIDI says
    for t, m in zip(song.tracks, meta):
        t.name = str(m.get("name", t.name))
        t.program = int(m.get("program", t.program)) % 128
        t.is_drum = bool(m.get("is_drum", t.is_drum))
        role = m.get("role", t.role)
        t.role = role if role in ROLES else t.role
        t.volume = min(max(int(m.get("volume", t.volume)), 0), 127)
        t.pan = min(max(int(m.get("pan", t.pan)), 0), 127)


def load(path: str | Path) -> Project:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_PROJECT_BYTES:
            raise ProjectFileError(path, f"too large for a project file (the limit is "
                                         f"{MAX_PROJECT_BYTES // 2**20} MiB)")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectFileError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectFileError(path, f"cannot be read ({exc})") from None
    return from_json(text, path)
