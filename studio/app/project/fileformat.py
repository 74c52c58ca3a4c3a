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


def from_json(text: str, path: str | Path = "<project>") -> Project:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectFileError(path, f"not a project file (bad JSON: {exc.msg})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProjectFileError(path, f"not a {FORMAT} file")
    if int(data.get("version", 0)) > VERSION:
        raise ProjectFileError(path, f"made by a newer version (format {data['version']})")
    try:
        midi = base64.b64decode(data["midi"], validate=True)
    except (KeyError, binascii.Error, TypeError):
        raise ProjectFileError(path, "the embedded MIDI data is missing or corrupt") from None
    song = services.song_from_midi_bytes(midi)
    song.title = str(data.get("title", song.title))
    meta = data.get("tracks") or []
    _restore_tracks(song, meta)
    mixer = [MixerState(bool(m.get("mute")), bool(m.get("solo"))) for m in meta] \
        if len(meta) == len(song.tracks) else []
    loop = data.get("loop")
    return Project(song, mixer, tuple(loop) if loop and len(loop) == 2 else None,
                   int(data.get("cursor", 0)))


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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectFileError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectFileError(path, f"cannot be read ({exc})") from None
    return from_json(text, path)
