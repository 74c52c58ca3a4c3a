"""Typed settings with defaults, stored with QSettings (Frescobaldi keeps one typed accessor per
setting so a missing or mistyped value never reaches the code that uses it)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

ORG, APP = "PopMusicNet", "Studio"
MAX_RECENT = 10


class Settings:
    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings or QSettings(ORG, APP)

    def _get(self, key: str, default, type_):
        value = self.q.value(key, default)
        try:
            return type_(value)
        except (TypeError, ValueError):
            return default

    # audio / MIDI
    @property
    def audio_backend(self) -> str:
        return self._get("audio/backend", "auto", str)

    @audio_backend.setter
    def audio_backend(self, value: str) -> None:
        self.q.setValue("audio/backend", value)

    @property
    def buffer_frames(self) -> int:
        return self._get("audio/buffer", 128, int)

    @buffer_frames.setter
    def buffer_frames(self, value: int) -> None:
        self.q.setValue("audio/buffer", int(value))

    @property
    def soundfont(self) -> str:
        return self._get("audio/soundfont", "", str)

    @soundfont.setter
    def soundfont(self, value: str) -> None:
        self.q.setValue("audio/soundfont", value)

    @property
    def midi_input(self) -> str:
        return self._get("midi/input", "", str)

    @midi_input.setter
    def midi_input(self, value: str) -> None:
        self.q.setValue("midi/input", value)

    @property
    def midi_output(self) -> str:
        return self._get("midi/output", "", str)

    @midi_output.setter
    def midi_output(self, value: str) -> None:
        self.q.setValue("midi/output", value)

    # files
    @property
    def recent_files(self) -> list[str]:
        value = self.q.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])][:MAX_RECENT]

    def add_recent(self, path: str) -> None:
        files = [path] + [f for f in self.recent_files if f != path]
        self.q.setValue("files/recent", files[:MAX_RECENT])

    @property
    def last_folder(self) -> str:
        """The folder of the last file opened or exported ("" before the first)."""
        return self._get("files/last_folder", "", str)

    @last_folder.setter
    def last_folder(self, value: str) -> None:
        self.q.setValue("files/last_folder", value)

    @property
    def last_filter(self) -> str:
        """The file-type filter last chosen in the Open dialog."""
        return self._get("files/last_filter", "", str)

    @last_filter.setter
    def last_filter(self, value: str) -> None:
        self.q.setValue("files/last_filter", value)

    def folder_for(self, kind: str) -> str:
        """The last folder used for `kind` ("export", ...), else the last folder opened."""
        return self._get(f"files/folder_{kind}", "", str) or self.last_folder

    def set_folder_for(self, kind: str, folder: str) -> None:
        self.q.setValue(f"files/folder_{kind}", folder)

    @property
    def autosave_seconds(self) -> int:
        return self._get("files/autosave_seconds", 60, int)
