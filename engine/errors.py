"""Domain errors. Every error a user can cause is a `UserInputError`: the CLI prints its one-line
message and exits 2; the studio shows it in the status bar. Anything else is a bug (exit 1)."""

from __future__ import annotations

from pathlib import Path


class PopMusicNetError(Exception):
    """Base of every error this package raises on purpose."""


class UserInputError(PopMusicNetError):
    """Bad input from the user: a file, an option, a device. Message is one line, names the culprit."""


class MidiFileError(UserInputError):
    """A MIDI file that cannot be read (or written) as music."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class SoundfontError(UserInputError):
    """No usable SoundFont (missing, corrupt, or none found where we looked)."""


class OutputError(UserInputError):
    """An output path that cannot be written."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelError(UserInputError):
    """A model that cannot be loaded or run (missing, corrupt, card mismatch)."""


class DeviceError(UserInputError):
    """A missing or failed audio/MIDI device."""
