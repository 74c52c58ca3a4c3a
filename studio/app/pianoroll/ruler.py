"""The bar/beat ruler above the roll. It follows the song's meter map (`Song.bars`); a pickup
is bar 0, and time signatures have their own row above the bar numbers.

Click: move the cursor there. Drag: set the loop region.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QWidget

from studio.app import bars, theme
from studio.app.document import SongDocument
from studio.app.pianoroll.view import ViewState


class Ruler(QWidget):
    seekRequested = Signal(int)

    def __init__(self, doc: SongDocument, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc, self.view = doc, view
        self.playhead: float | None = None
        self._press_x: float | None = None
        self.setFixedHeight(30)
        self.setToolTip("Click to move the cursor; drag to set the loop region")
        for sig in (view.changed, doc.mapsChanged, doc.loopChanged, doc.cursorChanged,
                    doc.songReplaced):
            sig.connect(self.update)

    def set_playhead(self, tick: float | None) -> None:
        self.playhead = tick
        self.update()

    METER_ROW = (0, 12)  # y, height: time signatures, above the bar numbers
    NUMBER_ROW = (12, 13)

    def _font(self, px: int):
        font = self.font()
        font.setPixelSize(px)
        return font

    def label_layout(self) -> list[tuple[str, QRect, str]]:
        """What the ruler writes: ("meter" | "bar", rectangle, text), left to right. Meters sit
        in their own row above the bar numbers; a label that would touch the one before it in
        its row is left out (bar numbers thin out when zoomed out), so none overlap."""
        v, song = self.view, self.doc.song
        t0, t1 = v.visible_ticks()
        number_metrics = QFontMetrics(self._font(11))
        meter_metrics = QFontMetrics(self._font(10))
        out: list[tuple[str, QRect, str]] = []
        meters: list[tuple[str, QRect, str]] = []
        right = {"bar": -10**9}
        prev_meter = None
        for number, start, end, meter in bars.numbered_bars(song, int(t1) + 1):
            changed = prev_meter is None or str(meter) != str(prev_meter)
            prev_meter = meter
            if end < t0:
                continue
            x = int(v.tick_to_x(start)) + 3
            if changed:
                text = str(meter)
                w = meter_metrics.horizontalAdvance(text) + 2
                # Too close to the meter before (a pickup's own): the later one is in force.
                while meters and x <= meters[-1][1].right() + 4:
                    meters.pop()
                meters.append(("meter", QRect(x, self.METER_ROW[0], w, self.METER_ROW[1]), text))
            text = str(number)
            w = number_metrics.horizontalAdvance(text) + 2
            if x <= right["bar"] + 6 and number == 1 and out and out[-1][2] == "0":
                out.pop()  # a narrow pickup: bar 1 is the one to name
                right["bar"] = -10**9
            if x > right["bar"] + 6:
                out.append(("bar", QRect(x, self.NUMBER_ROW[0], w, self.NUMBER_ROW[1]), text))
                right["bar"] = x + w
        return meters + out

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
        tpb = song.ticks_per_beat
        for number, start, end, meter in bars.numbered_bars(song, int(t1) + 1):
            if end < t0:
                continue
            x = int(v.tick_to_x(start))
            p.setPen(QPen(QColor(170, 175, 182)))
            p.drawLine(x, self.NUMBER_ROW[0], x, h)
            beat = bars.beat_ticks(meter, tpb)
            if beat * v.px_per_tick >= 8:
                p.setPen(QPen(QColor(110, 115, 122)))
                for t in range(start + beat, end, beat):
                    bx = int(v.tick_to_x(t))
                    p.drawLine(bx, h - 6, bx, h)
        for kind, rect, text in self.label_layout():
            if kind == "meter":
                p.setFont(self._font(10))
                p.setPen(QPen(theme.CURSOR))
            else:
                p.setFont(self._font(11))
                p.setPen(QPen(QColor(225, 228, 232)))
            p.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
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
