"""What every panel may use: the document, the transport, the editor, settings, messages.

Panels get this one object instead of reaching into the main window (no logic in widgets that
asks other widgets for their state)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from studio.app.document import SongDocument
    from studio.app.pianoroll.editor import PianoRollEditor
    from studio.app.settings import Settings
    from studio.app.transport.controller import TransportController


class AppEvents(QObject):
    """App-wide events, declared once (Frescobaldi's app.py)."""

    message = Signal(str)  # a line for the status bar
    modelsChanged = Signal()  # a model was trained or removed: refresh model lists
    wavDropped = Signal(str)  # a WAV file dropped on the window: the classifier wants it


@dataclass
class StudioContext:
    doc: SongDocument
    transport: TransportController
    editor: PianoRollEditor
    settings: Settings
    events: AppEvents

    def say(self, text: str) -> None:
        self.events.message.emit(text)
