"""The piano keyboard left of the roll: shows pitches, and sounds a note while pressed."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from engine.music import pitch_name
from studio.app import theme
from studio.app.pianoroll.view import ViewState

BLACK_KEYS = (1, 3, 6, 8, 10)


class PianoKeyboard(QWidget):
    notePressed = Signal(int)
    noteReleased = Signal(int)

    def __init__(self, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.held: set[int] = set()  # lit keys (mouse, computer keyboard, MIDI in)
        self._mouse_pitch: int | None = None
        self.setFixedWidth(64)
        self.setToolTip("Click a key to hear it")
        view.changed.connect(self.update)

    def set_held(self, pitches: set[int]) -> None:
        self.held = set(pitches)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        v = self.view
        p = QPainter(self)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(230, 230, 226))
        p.drawRect(self.rect())
        lo, hi = v.visible_pitches()
        kh = max(int(v.key_height), 1)
        w = self.width()
        lines, blacks, lit = [], [], []
        for pitch in range(lo, hi + 1):
            y = int(v.pitch_to_y(pitch))
            if pitch % 12 in BLACK_KEYS:
                blacks.append(QRect(0, y, int(w * 0.62), kh))
                lines.append(QRect(int(w * 0.62), y + kh // 2, w, 1))  # white keys meet here
            elif pitch % 12 in (0, 5):  # the line under C and F (between white keys)
                lines.append(QRect(0, y + kh - 1, w, 1))
            if pitch in self.held:
                lit.append(QRect(0, y, w if pitch % 12 not in BLACK_KEYS else int(w * 0.62), kh))
        p.setBrush(QColor(150, 150, 150))
        p.drawRects(lines)
        p.setBrush(QColor(25, 25, 28))
        p.drawRects(blacks)
        p.setBrush(theme.CURSOR)
        p.drawRects(lit)
        if kh >= 8:
            p.setPen(QPen(QColor(60, 60, 60)))
            font = p.font()
            font.setPixelSize(min(kh - 2, 11))
            p.setFont(font)
            for pitch in range(lo - lo % 12, hi + 1, 12):
                if pitch >= lo:
                    y = int(v.pitch_to_y(pitch))
                    p.drawText(QRect(0, y, w - 4, kh), Qt.AlignmentFlag.AlignRight
                               | Qt.AlignmentFlag.AlignVCenter, pitch_name(pitch))
        p.setPen(QPen(QColor(20, 20, 20)))
        p.drawLine(w - 1, 0, w - 1, self.height())
        p.end()

    def mousePressEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        self._press(self.view.y_to_pitch(ev.position().y()))

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        if self._mouse_pitch is not None:
            pitch = self.view.y_to_pitch(ev.position().y())
            if pitch != self._mouse_pitch:
                self._release()
                self._press(pitch)

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        self._release()

    def _press(self, pitch: int) -> None:
        if 0 <= pitch <= 127:
            self._mouse_pitch = pitch
            self.held.add(pitch)
            self.notePressed.emit(pitch)
            self.update()

    def _release(self) -> None:
        if self._mouse_pitch is not None:
            pitch, self._mouse_pitch = self._mouse_pitch, None
            self.held.discard(pitch)
            self.noteReleased.emit(pitch)
            self.update()
