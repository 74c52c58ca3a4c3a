"""Two charts painted with QPainter: horizontal bars (class probabilities) and lines (losses).

QtCharts lives in PySide6-Addons, which the app does not install; these need a few dozen lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QWidget

from studio.app import theme

TEXT = QColor(215, 218, 224)
AXIS = QColor(95, 100, 108)


class BarChart(QWidget):
    """Label, bar and percentage per row, best first."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, float]] = []
        self.setMinimumHeight(60)

    def set_rows(self, rows: Sequence[tuple[str, float]]) -> None:
        self.rows = sorted(((str(k), float(v)) for k, v in rows), key=lambda r: -r[1])
        self.setMinimumHeight(max(60, 22 * len(self.rows) + 8))
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(260, max(60, 22 * len(self.rows) + 8))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        if not self.rows:
            p.setPen(QPen(AXIS))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no result yet")
            p.end()
            return
        label_w = min(120, self.width() // 3)
        bar_w = self.width() - label_w - 58
        for i, (label, value) in enumerate(self.rows):
            y = 4 + i * 22
            p.setPen(QPen(TEXT))
            p.drawText(QRectF(0, y, label_w - 6, 18), Qt.AlignmentFlag.AlignRight
                       | Qt.AlignmentFlag.AlignVCenter, label)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(55, 58, 64))
            p.drawRoundedRect(QRectF(label_w, y + 2, bar_w, 14), 3, 3)
            p.setBrush(theme.TRACK_COLOURS[0] if i == 0 else QColor(110, 140, 175))
            p.drawRoundedRect(QRectF(label_w, y + 2, max(bar_w * value, 2), 14), 3, 3)
            p.setPen(QPen(TEXT))
            p.drawText(QRectF(label_w + bar_w + 4, y, 54, 18), Qt.AlignmentFlag.AlignLeft
                       | Qt.AlignmentFlag.AlignVCenter, f"{100 * value:.1f} %")
        p.end()


class LineChart(QWidget):
    """Named series of (x, y) points with auto-scaled axes and a legend."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.x_label = "epoch"
        self.setMinimumHeight(160)

    def clear(self) -> None:
        self.series.clear()
        self.update()

    def add_point(self, name: str, x: float, y: float) -> None:
        if y is None or not math.isfinite(y):
            return
        self.series.setdefault(name, []).append((float(x), float(y)))
        self.update()

    def _font(self):
        font = self.font()
        font.setPixelSize(10)
        return font

    def legend_layout(self) -> list[tuple[str, QRectF]]:
        """Where each series' name goes: a swatch and the whole name, flowed in rows under the
        plot (never cut off, never over the curves)."""
        metrics = QFontMetrics(self._font())
        out, x, y, row_h = [], 8.0, 0.0, 14.0
        for name in self.series:
            w = metrics.horizontalAdvance(name) + 18  # swatch + gap + text
            if x > 8 and x + w > self.width() - 4:
                x, y = 8.0, y + row_h
            out.append((name, QRectF(x, y, w, row_h)))
            x += w + 10
        if not out:
            return []
        top = self.height() - (y + row_h) - 2
        return [(name, r.translated(0, top)) for name, r in out]

    def _legend_height(self) -> float:
        layout = self.legend_layout()
        return self.height() - min(r.top() for _, r in layout) + 2 if layout else 0.0

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(32, 34, 38))
        p.drawRect(self.rect())
        plot = QRectF(48, 8, self.width() - 56, self.height() - 30 - self._legend_height())
        pts = [pt for s in self.series.values() for pt in s]
        p.setPen(QPen(AXIS))
        p.drawRect(plot)
        if not pts:
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "losses appear here while training")
            p.end()
            return
        x0, x1 = min(x for x, _ in pts), max(x for x, _ in pts)
        y0, y1 = min(y for _, y in pts), max(y for _, y in pts)
        if x1 == x0:
            x1 = x0 + 1
        if y1 == y0:
            y1 = y0 + 1
        pad = (y1 - y0) * 0.05
        y0, y1 = y0 - pad, y1 + pad

        def map_(x: float, y: float) -> QPointF:
            return QPointF(plot.left() + (x - x0) / (x1 - x0) * plot.width(),
                           plot.bottom() - (y - y0) / (y1 - y0) * plot.height())

        p.setPen(QPen(TEXT))
        p.setFont(self._font())
        for frac in (0.0, 0.5, 1.0):
            y = y0 + frac * (y1 - y0)
            pt = map_(x0, y)
            p.drawText(QRectF(0, pt.y() - 7, 44, 14), Qt.AlignmentFlag.AlignRight, f"{y:.3g}")
        p.drawText(QRectF(plot.left(), plot.bottom() + 4, plot.width(), 14),
                   Qt.AlignmentFlag.AlignCenter, f"{self.x_label} {x0:g} … {x1:g}")
        for i, (name, series) in enumerate(self.series.items()):
            colour = theme.track_colour(i)
            p.setPen(QPen(colour, 1.6))
            p.drawPolyline(QPolygonF([map_(x, y) for x, y in series]))
            if len(series) == 1:
                p.drawEllipse(map_(*series[0]), 2.5, 2.5)
        for i, (name, rect) in enumerate(self.legend_layout()):
            colour = theme.track_colour(i)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(colour)
            p.drawRect(QRectF(rect.left(), rect.center().y() - 2, 12, 4))
            p.setPen(QPen(TEXT))
            p.drawText(rect.adjusted(16, 0, 0, 0), Qt.AlignmentFlag.AlignLeft
                       | Qt.AlignmentFlag.AlignVCenter, name)
        p.end()
