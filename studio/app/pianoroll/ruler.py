"""The bar/beat ruler above the roll. It follows the song's meter map (`Song.bars`).

Click: move the cursor there. Drag: set the loop region.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QWidget

from studio.app import theme
from studio.app.document import SongDocument
from studio.app.pianoroll.view import ViewState


class Ruler(QWidget):
    seekRequested = Signal(int)

    def __init__(self, doc: SongDocument, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc, self.view = doc, view
        self.playhead: float | None = None
        self._press_x: float | None = None
        self.setFixedHeight(26)
        self.setToolTip("Click to move the cursor; drag to set the loop region")
        for sig in (view.changed, doc.mapsChanged, doc.loopChanged, doc.cursorChanged,
                    doc.songReplaced):
            sig.connect(self.update)

    def set_playhead(self, tick: float | None) -> None:
        self.playhead = tick
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        v, song = self.view, self.doc.song
        p = QPainter(self)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(50, 53, 58))
        p.drawRect(self.rect())
        h = self.height()
        if self.doc.loop is not None:
            a, b = (v.tick_to_x(t) for t in self.doc.loop)
            p.setBrush(theme.LOOP_EDGE)
            p.drawRect(QRectF(a, h - 6, b - a, 6))
        t0, t1 = v.visible_ticks()
        font = p.font()
        font.setPixelSize(11)
        p.setFont(font)
        bars = self.doc.bars(int(t1) + 1)
        label_every = 1
        if bars:
            bar_px = (bars[-1][1] - bars[-1][0]) * v.px_per_tick
            while bar_px * label_every < 34:
                label_every *= 2
        tpb = song.ticks_per_beat
        prev_meter = None
        for number, (start, end, meter) in enumerate(bars, start=1):
            if end < t0:
                prev_meter = meter
                continue
            x = int(v.tick_to_x(start))
            p.setPen(QPen(QColor(170, 175, 182)))
            p.drawLine(x, 8, x, h)
            text = str(number) if (number - 1) % label_every == 0 else ""
            if meter is not prev_meter and (prev_meter is None or str(meter) != str(prev_meter)):
                text += f"  {meter}"
            if text:
                p.setPen(QPen(QColor(225, 228, 232)))
                p.drawText(QRect(x + 3, 0, 80, h - 8), Qt.AlignmentFlag.AlignVCenter, text)
            beat = tpb * 4 // meter.denominator
            if beat * v.px_per_tick >= 8:
                p.setPen(QPen(QColor(110, 115, 122)))
                for t in range(start + beat, end, beat):
                    bx = int(v.tick_to_x(t))
                    p.drawLine(bx, h - 6, bx, h)
            prev_meter = meter
        cx = v.tick_to_x(self.doc.cursor)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(theme.CURSOR)
        p.drawPolygon(QPolygonF([QPointF(cx - 5, 0), QPointF(cx + 5, 0), QPointF(cx, 7)]))
        if self.playhead is not None:
            x = v.tick_to_x(self.playhead)
            p.setBrush(theme.PLAYHEAD)
            p.drawPolygon(QPolygonF([QPointF(x - 6, h - 10), QPointF(x + 6, h - 10),
                                     QPointF(x, h)]))
        p.end()

    def mousePressEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        self._press_x = ev.position().x()

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        if self._press_x is not None and abs(ev.position().x() - self._press_x) > 4:
            tpb = self.doc.song.ticks_per_beat
            a = self.view.snap(self.view.x_to_tick(self._press_x), tpb)
            b = self.view.snap(self.view.x_to_tick(ev.position().x()), tpb)
            self.doc.set_loop((a, b))

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        if self._press_x is not None and abs(ev.position().x() - self._press_x) <= 4:
            tick = self.view.snap(self.view.x_to_tick(ev.position().x()),
                                  self.doc.song.ticks_per_beat)
            self.doc.set_cursor(tick)
            self.seekRequested.emit(tick)
        self._press_x = None
