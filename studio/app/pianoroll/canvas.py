"""The note canvas: shows the roll (painting.py paints it) and turns mouse gestures into commands.

Painting: the static picture (`painting.RollPainter`) is cached in a pixmap, so a moving
playhead only blits it and draws one line. Gestures: each drag previews its result while moving and pushes exactly one
undo command on release (one gesture, one undo step).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QBrush, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import QWidget

from engine.music import Note
from studio.app import theme
from studio.app.commands import EditNotes
from studio.app.document import SongDocument
from studio.app.pianoroll.painting import RollPainter
from studio.app.pianoroll.view import ViewState, grid_ticks

log = logging.getLogger(__name__)

EDGE_PX = 5  # grab zone at a note's end for resizing


@dataclass
class _Drag:
    kind: str  # "move" | "copy" | "resize" | "draw" | "band"
    press: QPoint
    tick0: float
    pitch0: int
    anchor: Note | None = None
    notes: tuple[Note, ...] = ()
    preview: list[Note] = field(default_factory=list)
    moved: bool = False
    current: QPoint | None = None


class NoteCanvas(QWidget):
    auditionRequested = Signal(int)  # pitch: the user touched a note
    seekRequested = Signal(int)

    def __init__(self, doc: SongDocument, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc, self.view = doc, view
        self.mode = "draw"  # or "select"
        self.playhead: float | None = None
        # Notes drawn over the roll that are not (yet) in the song: "planned" (the live engine's
        # next bar, before it sounds) and "preview" (a morph while the slider moves).
        self.overlays: dict[str, list[Note]] = {}
        self.labels: list[tuple[int, str]] = []  # (tick, text) above the roll: chord names
        self.last_paint_ms = 0.0
        self._cache: QPixmap | None = None
        self._drag: _Drag | None = None
        self._last_length = 0
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(200, 120)
        for sig in (doc.notesChanged, doc.tracksChanged, doc.songReplaced, doc.mapsChanged,
                    doc.currentTrackChanged, doc.selectionChanged, doc.cursorChanged,
                    doc.loopChanged, doc.mixerChanged, view.changed):
            sig.connect(self.invalidate)

    # -- state from outside -------------------------------------------------------------------
    def invalidate(self, *_: object) -> None:
        self._cache = None
        self.update()

    def set_playhead(self, tick: float | None) -> None:
        self.playhead = tick
        self.update()  # the cached picture stays valid

    def set_overlay(self, name: str, notes: list[Note]) -> None:
        if notes:
            self.overlays[name] = list(notes)
        else:
            self.overlays.pop(name, None)
        self.update()

    def set_labels(self, labels: list[tuple[int, str]]) -> None:
        """Text drawn at the top of the roll at each tick (the band's chord names)."""
        self.labels = list(labels)
        self.update()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self.view.set_size(self.width(), self.height())
        super().resizeEvent(event)

    # -- painting -----------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        t = time.perf_counter()
        painter = QPainter(self)
        if self._cache is None or self._cache.size() != self.size() * self.devicePixelRatioF():
            self._cache = self._render_static()
        painter.drawPixmap(0, 0, self._cache)
        self._paint_overlay(painter)
        painter.end()
        self.last_paint_ms = (time.perf_counter() - t) * 1000

    def _render_static(self) -> QPixmap:
        ratio = self.devicePixelRatioF()
        pix = QPixmap(self.size() * ratio)
        pix.setDevicePixelRatio(ratio)
        p = QPainter(pix)
        d = self._drag
        hidden = set(d.notes) if d and d.kind in ("move", "resize") and d.moved else set()
        RollPainter(self.doc, self.view, self.width(), self.height()).paint(p, hidden)
        p.end()
        return pix


    def _paint_overlay(self, p: QPainter) -> None:
        v = self.view
        for name, notes in self.overlays.items():
            colour = theme.OVERLAYS.get(name, theme.PLANNED)
            p.setPen(QPen(colour, 1, Qt.PenStyle.DashLine))
            p.setBrush(QBrush(colour, Qt.BrushStyle.Dense5Pattern))
            p.drawRects([self._rect(n) for n in notes])
        if self.labels:
            p.setPen(QPen(theme.CURSOR))
            for tick, text in self.labels:
                x = int(v.tick_to_x(tick))
                if -40 <= x <= self.width():
                    p.drawText(x + 2, 12, text)
        d = self._drag
        if d is not None and d.kind == "band" and d.moved:
            p.setPen(QPen(theme.CURSOR))
            p.setBrush(theme.BAND)
            p.drawRect(QRect(d.press, d.current or d.press).normalized())
        elif d is not None and d.preview:
            p.setPen(QPen(theme.SELECTED_EDGE))
            p.setBrush(theme.SELECTED)
            p.drawRects([self._rect(n) for n in d.preview])
        if self.playhead is not None:
            x = int(v.tick_to_x(self.playhead))
            if 0 <= x <= self.width():
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(theme.PLAYHEAD)
                p.drawRect(QRect(x, 0, 2, self.height()))

    def _rect(self, n: Note) -> QRect:
        v = self.view
        x = int(v.tick_to_x(n.start))
        return QRect(x, int(v.pitch_to_y(n.pitch)), max(int(v.tick_to_x(n.end)) - x - 1, 1),
                     max(int(v.key_height) - 1, 1))

    # -- hit testing --------------------------------------------------------------------------
    def note_at(self, pos: QPoint) -> tuple[Note | None, bool]:
        """The current track's note under `pos` and whether `pos` is on its resize edge."""
        cur = self.doc.current_track
        if cur < 0:
            return None, False
        v = self.view
        tick, pitch = v.x_to_tick(pos.x()), v.y_to_pitch(pos.y())
        arr = self.doc.note_arrays(cur)
        slack = EDGE_PX / v.px_per_tick
        for i in arr.visible(tick - slack, tick + 1, pitch, pitch)[::-1].tolist():
            n = arr.notes[i]
            x_end = v.tick_to_x(n.end)
            if n.start <= tick < n.end or abs(pos.x() - x_end) <= EDGE_PX:
                width = x_end - v.tick_to_x(n.start)
                return n, width > 2 * EDGE_PX and x_end - pos.x() <= EDGE_PX
        return None, False

    # -- gestures -----------------------------------------------------------------------------
    def mousePressEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        if self.doc.current_track < 0:
            return
        pos = ev.position().toPoint()
        tick, pitch = self.view.x_to_tick(pos.x()), self.view.y_to_pitch(pos.y())
        note, edge = self.note_at(pos)
        shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        ctrl = bool(ev.modifiers() & Qt.KeyboardModifier.ControlModifier)
        if ev.button() == Qt.MouseButton.RightButton:
            if note is not None:
                self._push([note], [], "Delete note")
            return
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        if note is not None:
            sel = set(self.doc.selection)
            if shift:
                sel ^= {note}
                self.doc.set_selection(sel)
                return
            if note not in sel:
                self.doc.set_selection({note})
            self.auditionRequested.emit(note.pitch)
            kind = "resize" if edge else ("copy" if ctrl else "move")
            self._drag = _Drag(kind, pos, tick, pitch, note, tuple(self.doc.selection))
        elif self.mode == "select" or shift:
            self._drag = _Drag("band", pos, tick, pitch)
            if not ctrl:
                self.doc.set_selection(())
        else:
            tpb = self.doc.song.ticks_per_beat
            start = self.view.snap_floor(tick, tpb)
            length = max(self._last_length, grid_ticks(self.view.grid, tpb), tpb // 8)
            if not 0 <= pitch <= 127:
                return
            new = Note(start, start + length, pitch, 90)
            self.doc.set_selection(())
            self._drag = _Drag("draw", pos, tick, pitch, new, preview=[new], moved=True)
            self.auditionRequested.emit(pitch)
            self.update()

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        pos = ev.position().toPoint()
        d = self._drag
        if d is None:
            note, edge = self.note_at(pos)
            self.setCursor(Qt.CursorShape.SizeHorCursor if edge else
                           Qt.CursorShape.OpenHandCursor if note else Qt.CursorShape.ArrowCursor)
            return
        if not d.moved and (pos - d.press).manhattanLength() < 3:
            return
        first_move = not d.moved
        d.moved = True
        d.current = pos
        tick, pitch = self.view.x_to_tick(pos.x()), self.view.y_to_pitch(pos.y())
        d.preview = self._preview(d, tick, pitch)
        if first_move and d.kind in ("move", "resize"):
            self.invalidate()  # re-render without the notes being dragged
        else:
            self.update()

    def _preview(self, d: _Drag, tick: float, pitch: int) -> list[Note]:
        tpb = self.doc.song.ticks_per_beat
        if d.kind == "band":
            return []
        assert d.anchor is not None
        if d.kind == "draw":
            end = max(d.anchor.start + grid_ticks(self.view.grid, tpb),
                      self.view.snap(tick, tpb))
            return [Note(d.anchor.start, end, d.anchor.pitch, d.anchor.velocity)]
        if d.kind == "resize":
            g = grid_ticks(self.view.grid, tpb)
            dt = self.view.snap(d.anchor.end + tick - d.tick0, tpb) - d.anchor.end
            return [Note(n.start, max(n.end + dt, n.start + min(g, n.duration)), n.pitch,
                         n.velocity) for n in d.notes]
        dt = self.view.snap(d.anchor.start + tick - d.tick0, tpb) - d.anchor.start
        dp = pitch - d.pitch0
        dt = max(dt, -min(n.start for n in d.notes))
        dp = min(max(dp, -min(n.pitch for n in d.notes)), 127 - max(n.pitch for n in d.notes))
        return [n.shifted(dt, dp) for n in d.notes]

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        d, self._drag = self._drag, None
        if d is None:
            return
        if d.kind == "band":
            if d.moved:
                self._select_band(QRect(d.press, ev.position().toPoint()).normalized(), ev)
            else:
                tpb = self.doc.song.ticks_per_beat
                tick = self.view.snap(self.view.x_to_tick(d.press.x()), tpb)
                self.doc.set_cursor(tick)
                self.seekRequested.emit(tick)
        elif d.kind == "draw":
            self._last_length = d.preview[0].duration
            self._push([], d.preview, "Draw note")
        elif d.moved and d.preview and list(d.preview) != list(d.notes):
            if d.kind == "copy":
                self._push([], d.preview, "Copy notes")
            else:
                if d.kind == "resize":
                    self._last_length = d.preview[0].duration if len(d.preview) == 1 else 0
                self._push(d.notes, d.preview, "Move notes" if d.kind == "move" else "Resize notes")
        self.invalidate()

    def _select_band(self, rect: QRect, ev: QMouseEvent) -> None:
        v = self.view
        arr = self.doc.note_arrays(self.doc.current_track)
        t0, t1 = v.x_to_tick(rect.left()), v.x_to_tick(rect.right())
        p_hi, p_lo = v.y_to_pitch(rect.top()), v.y_to_pitch(rect.bottom())
        picked = {arr.notes[i] for i in arr.visible(t0, t1, p_lo, p_hi).tolist()}
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            picked |= set(self.doc.selection)
        self.doc.set_selection(picked)

    def _push(self, removed, added, text: str) -> None:
        self.doc.undo_stack.push(EditNotes(self.doc, self.doc.current_track, removed, added, text))

    def wheelEvent(self, ev: QWheelEvent) -> None:  # noqa: N802
        """Wheel scrolls pitch; Shift+wheel scrolls time; Ctrl+wheel zooms time, Alt pitch."""
        delta = ev.angleDelta().y() or ev.angleDelta().x()
        mods = ev.modifiers()
        if mods & Qt.KeyboardModifier.ControlModifier:
            self.view.zoom_x(1.15 if delta > 0 else 1 / 1.15, ev.position().x())
        elif mods & Qt.KeyboardModifier.AltModifier:
            self.view.zoom_y(1.1 if delta > 0 else 1 / 1.1, ev.position().y())
        elif mods & Qt.KeyboardModifier.ShiftModifier or ev.angleDelta().x():
            self.view.set_scroll(x=self.view.scroll_x - delta)
        else:
            self.view.set_scroll(y=self.view.scroll_y - delta)
        ev.accept()
