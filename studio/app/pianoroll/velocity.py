"""The velocity lane under the roll: one stem per note of the current track.

Drag a stem (or, when it is selected, all selected notes) to a new velocity; one undo step.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from engine.music import Note
from studio.app import theme
from studio.app.commands import EditNotes
from studio.app.document import SongDocument
from studio.app.pianoroll.view import ViewState


DENSE_ABOVE = 1000


class VelocityLane(QWidget):
    def __init__(self, doc: SongDocument, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc, self.view = doc, view
        self._editing: tuple[Note, ...] = ()
        self._value: int | None = None
        self.setFixedHeight(72)
        self.setToolTip("Drag a stem to change velocity (all selected notes if it is selected)")
        for sig in (view.changed, doc.notesChanged, doc.currentTrackChanged,
                    doc.selectionChanged, doc.songReplaced, doc.tracksChanged):
            sig.connect(self.update)

    def _visible(self) -> list[Note]:
        cur = self.doc.current_track
        if cur < 0:
            return []
        arr = self.doc.note_arrays(cur)
        t0, t1 = self.view.visible_ticks()
        return [arr.notes[i] for i in arr.visible(t0, t1, 0, 127).tolist()]

    def _y(self, velocity: int) -> int:
        return int((self.height() - 4) * (1 - velocity / 127)) + 2

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(38, 40, 45))
        p.drawRect(self.rect())
        p.setBrush(QColor(55, 58, 64))
        p.drawRect(QRect(0, self._y(64), self.width(), 1))
        cur = self.doc.current_track
        if cur >= 0 and not self._editing and self._paint_dense(p, cur):
            cur = -1  # painted
        if cur >= 0:
            base = theme.track_colour(cur)
            sel = self.doc.selection
            editing = set(self._editing)
            normal, chosen = [], []
            for n in self._visible():
                vel = self._value if n in editing and self._value is not None else n.velocity
                x = int(self.view.tick_to_x(n.start))
                y = self._y(vel)
                r = QRect(x, y, 3, self.height() - y)
                (chosen if n in sel else normal).append(r)
            p.setBrush(base)
            p.drawRects(normal)
            p.setBrush(theme.SELECTED)
            p.drawRects(chosen)
        p.setPen(QPen(QColor(20, 20, 22)))
        p.drawLine(0, 0, self.width(), 0)
        p.end()

    def _paint_dense(self, p: QPainter, cur: int) -> bool:
        """Many visible notes: one stem per pixel column (the loudest), computed with numpy."""
        arr = self.doc.note_arrays(cur)
        t0, t1 = self.view.visible_ticks()
        idx = arr.visible(t0, t1, 0, 127)
        if len(idx) <= DENSE_ABOVE:
            return False
        x = np.floor(arr.starts[idx] * self.view.px_per_tick - self.view.scroll_x).astype(np.int64)
        x = np.clip(x, 0, max(self.width() - 1, 0))
        loudest = np.zeros(self.width(), np.int64)
        np.maximum.at(loudest, x, arr.velocities[idx])
        cols = np.flatnonzero(loudest)
        h = self.height() - 4
        tops = (h * (1 - loudest[cols] / 127)).astype(np.int64) + 2
        p.setBrush(theme.track_colour(cur))
        p.drawRects([QRect(c, t, 1, self.height() - t) for c, t in zip(cols.tolist(),
                                                                       tops.tolist())])
        return True

    def _velocity_at(self, y: float) -> int:
        return int(min(max(round(127 * (1 - (y - 2) / max(self.height() - 4, 1))), 1), 127))

    def mousePressEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        x = ev.position().x()
        near = [n for n in self._visible() if abs(self.view.tick_to_x(n.start) + 1 - x) <= 4]
        if not near:
            return
        note = near[-1]
        sel = self.doc.selection
        self._editing = tuple(sel) if note in sel else (note,)
        self._value = self._velocity_at(ev.position().y())
        self.update()

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        if self._editing:
            self._value = self._velocity_at(ev.position().y())
            self.update()

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        notes, value = self._editing, self._value
        self._editing, self._value = (), None
        if notes and value is not None:
            changed = [dataclasses.replace(n, velocity=value) for n in notes]
            if changed != list(notes):
                self.doc.undo_stack.push(EditNotes(self.doc, self.doc.current_track, notes,
                                                   changed, "Change velocity"))
        self.update()
