"""Note inputs besides the roll: the computer keyboard as a piano, and a MIDI keyboard.

Both end in `NoteInput.noteOn/noteOff` signals on the GUI thread; the transport sounds and
records them. The MIDI keyboard's handler runs on rtmidi's thread and only appends to a bounded
deque (never blocks); a GUI timer drains it.
"""

from __future__ import annotations

import collections
import logging

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QLineEdit, QTextEdit

log = logging.getLogger(__name__)

# Two rows as DAWs map them (Ableton's layout): the home row is the white keys from C, the row
# above holds the black keys; Z / X shift the octave, C / V the velocity.
WHITE = {Qt.Key.Key_A: 0, Qt.Key.Key_S: 2, Qt.Key.Key_D: 4, Qt.Key.Key_F: 5, Qt.Key.Key_G: 7,
         Qt.Key.Key_H: 9, Qt.Key.Key_J: 11, Qt.Key.Key_K: 12, Qt.Key.Key_L: 14,
         Qt.Key.Key_Semicolon: 16, Qt.Key.Key_Apostrophe: 17}
BLACK = {Qt.Key.Key_W: 1, Qt.Key.Key_E: 3, Qt.Key.Key_T: 6, Qt.Key.Key_Y: 8, Qt.Key.Key_U: 10,
         Qt.Key.Key_O: 13, Qt.Key.Key_P: 15}
KEYMAP = {**WHITE, **BLACK}


class NoteInput(QObject):
    noteOn = Signal(int, int)  # pitch, velocity
    noteOff = Signal(int)
    octaveChanged = Signal(int)


class ComputerKeyboard(NoteInput):
    """An application-wide event filter that plays notes while enabled.

    Text fields keep their keys; modifiers (Ctrl+...) pass through, so shortcuts still work.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.enabled = False
        self.base = 60  # the A key plays C4
        self.velocity = 100
        self._down: dict[int, int] = {}

    def set_enabled(self, on: bool) -> None:
        self.enabled = on
        app = QApplication.instance()
        if on:
            app.installEventFilter(self)
        else:
            app.removeEventFilter(self)
            for pitch in self._down.values():
                self.noteOff.emit(pitch)
            self._down.clear()

    def shift_octave(self, delta: int) -> None:
        self.base = min(max(self.base + 12 * delta, 12), 108)
        self.octaveChanged.emit(self.base // 12 - 1)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() not in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            return False
        assert isinstance(event, QKeyEvent)
        if event.modifiers() & (Qt.KeyboardModifier.ControlModifier
                                | Qt.KeyboardModifier.AltModifier
                                | Qt.KeyboardModifier.MetaModifier):
            return False
        focus = QApplication.focusWidget()
        if isinstance(focus, (QLineEdit, QTextEdit, QAbstractSpinBox, QComboBox)):
            return False
        return self.handle_key(event.key(), event.type() == QEvent.Type.KeyPress,
                               event.isAutoRepeat())

    def handle_key(self, key: int, press: bool, auto_repeat: bool = False) -> bool:
        """True if the key belongs to the piano (consumed)."""
        if key in (Qt.Key.Key_Z, Qt.Key.Key_X, Qt.Key.Key_C, Qt.Key.Key_V):
            if press and not auto_repeat:
                if key in (Qt.Key.Key_Z, Qt.Key.Key_X):
                    self.shift_octave(-1 if key == Qt.Key.Key_Z else 1)
                else:
                    self.velocity = min(max(self.velocity + (-20 if key == Qt.Key.Key_C else 20),
                                            1), 127)
            return True
        if key not in KEYMAP:
            return False
        if auto_repeat:
            return True
        if press:
            pitch = self.base + KEYMAP[key]
            if key not in self._down and 0 <= pitch <= 127:
                self._down[key] = pitch
                self.noteOn.emit(pitch, self.velocity)
        else:
            pitch = self._down.pop(key, None)
            if pitch is not None:
                self.noteOff.emit(pitch)
        return True


class MidiKeyboard(NoteInput):
    """A MIDI input port (engine.realtime.midi). Events are drained on a GUI timer."""

    def __init__(self, port: str, clock, sound=None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        from engine.realtime.midi import MidiInput  # lazy: rtmidi only when a port is chosen

        self._queue: collections.deque = collections.deque(maxlen=1024)
        self._sound = sound  # (on, pitch, velocity) -> None, called on rtmidi's thread: thru
        self.input = MidiInput(port, self._on_event, clock, client_name="popmusicnet-studio")
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._drain)
        self._timer.start(10)

    @property
    def port_name(self) -> str:
        return self.input.port_name or str(self.input.want)

    def _on_event(self, ev) -> None:  # rtmidi's thread: no Qt, no blocking
        if ev.kind in ("note_on", "note_off"):
            if self._sound is not None:
                self._sound(ev.kind == "note_on", ev.data1, ev.data2)
            self._queue.append((ev.kind == "note_on", ev.data1, ev.data2))

    def _drain(self) -> None:
        while self._queue:
            on, pitch, velocity = self._queue.popleft()
            if on:
                self.noteOn.emit(pitch, velocity)
            else:
                self.noteOff.emit(pitch)

    def close(self) -> None:
        self._timer.stop()
        self.input.close()
