"""The note canvas: paints the visible part of the song and turns mouse gestures into commands.

Painting: notes are culled with numpy (`NoteArrays.visible`) and drawn in a few `drawRects`
batches; the static picture is cached in a pixmap so that a moving playhead only blits it and
draws one line. Gestures: each drag previews its result while moving and pushes exactly one
undo command on release (one gesture, one undo step).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QPoint, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import QWidget

from engine.music import Note
from studio.app import theme
from studio.app.commands import EditNotes
from studio.app.document import SongDocument
from studio.app.pianoroll import raster
from studio.app.pianoroll.view import ViewState, grid_ticks

log = logging.getLogger(__name__)

EDGE_PX = 5  # grab zone at a note's end for resizing
DENSE_ABOVE = 1500  # visible notes above which all notes are rasterised with numpy (raster.py)
MERGE_ABOVE = 400  # visible notes per batch above which touching rectangles are merged


def merge_runs(xyw: np.ndarray) -> np.ndarray:
    """Merge rectangles of one row (same y) that touch or overlap horizontally.

    Vectorised: sort by (row, x), take the running maximum of the right edges (rows are kept
    apart by a large offset), and start a new run wherever a rectangle begins right of it.
    """
    x, y, w = xyw[:, 0], xyw[:, 1], xyw[:, 2]
    big = np.int64(1) << 32
    row = y - y.min()
    left = row * big + x
    right = left + w + 1  # w excludes the 1 px gap drawn between notes
    order = np.lexsort((x, row))
    left, right = left[order], right[order]
    reach = np.maximum.accumulate(right)
    new = np.ones(len(left), bool)
    new[1:] = left[1:] > reach[:-1]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(left)] - 1
    run_left, run_right = left[starts], reach[ends]
    run_row = run_left // big
    return np.stack([run_left - run_row * big, run_row + y.min(),
                     run_right - run_left - 1], axis=1)


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
        self._paint_rows(p)
        self._paint_grid(p)
        self._paint_loop(p)
        hidden = set(self._drag.notes) if self._drag and self._drag.kind in ("move", "resize") \
            and self._drag.moved else set()
        if not self._paint_dense(p, hidden):
            self._paint_ghosts(p)
            self._paint_current(p, hidden)
        self._paint_cursor(p)
        p.end()
        return pix

    def _paint_rows(self, p: QPainter) -> None:
        v = self.view
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(theme.BACKGROUND)
        p.drawRect(self.rect())
        lo, hi = v.visible_pitches()
        white, black, cs = [], [], []
        for pitch in range(lo, hi + 1):
            y = int(v.pitch_to_y(pitch))
            r = QRect(0, y, self.width(), int(v.key_height) - 1)
            (black if pitch % 12 in (1, 3, 6, 8, 10) else white).append(r)
            if pitch % 12 == 0:
                cs.append(QRect(0, y + int(v.key_height) - 1, self.width(), 1))
        p.setBrush(theme.ROW_WHITE)
        p.drawRects(white)
        p.setBrush(theme.ROW_BLACK)
        p.drawRects(black)
        p.setBrush(theme.ROW_C)
        p.drawRects(cs)

    def _paint_grid(self, p: QPainter) -> None:
        v, song = self.view, self.doc.song
        t0, t1 = v.visible_ticks()
        tpb = song.ticks_per_beat
        g = grid_ticks(v.grid, tpb)
        h = self.height()
        bars, beats, subs = [], [], []
        last_x = -1e9
        for start, end, meter in self.doc.bars(int(t1) + 1):
            if end < t0:
                continue
            x = v.tick_to_x(start)
            if x - last_x >= 8:  # zoomed far out: not every bar line, or the grid is a blur
                bars.append(QRect(int(x), 0, 1, h))
                last_x = x
            beat = tpb * 4 // meter.denominator
            if beat * v.px_per_tick >= 6:
                beats.extend(QRect(int(v.tick_to_x(t)), 0, 1, h)
                             for t in range(start + beat, end, beat) if t0 <= t <= t1)
            if g > 1 and g * v.px_per_tick >= 8 and g < beat:
                subs.extend(QRect(int(v.tick_to_x(t)), 0, 1, h)
                            for t in range(start + g, end, g)
                            if (t - start) % beat and t0 <= t <= t1)
        p.setPen(Qt.PenStyle.NoPen)
        for rects, colour in ((subs, theme.GRID_SUB), (beats, theme.GRID_BEAT),
                              (bars, theme.GRID_BAR)):
            p.setBrush(colour)
            p.drawRects(rects)

    def _paint_loop(self, p: QPainter) -> None:
        if self.doc.loop is None:
            return
        a, b = self.doc.loop
        x0, x1 = self.view.tick_to_x(a), self.view.tick_to_x(b)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(theme.LOOP)
        p.drawRect(QRectF(x0, 0, x1 - x0, self.height()))

    def _note_geometry(self, index: int, hide: set[Note] | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, w) pixel columns, velocities and note indices of one track's visible notes."""
        v = self.view
        arr = self.doc.note_arrays(index)
        t0, t1 = v.visible_ticks()
        lo, hi = v.visible_pitches()
        idx = arr.visible(t0, t1, lo, hi)
        if hide:
            idx = np.array([i for i in idx.tolist() if arr.notes[i] not in hide], dtype=np.int64)
        if idx.size == 0:
            return np.zeros((0, 3), np.int64), np.zeros(0, np.int64), idx
        x = np.floor(arr.starts[idx] * v.px_per_tick - v.scroll_x).astype(np.int64)
        w = np.maximum(np.floor(arr.ends[idx] * v.px_per_tick - v.scroll_x).astype(np.int64)
                       - x - 1, 1)
        y = np.floor((127 - arr.pitches[idx]) * v.key_height - v.scroll_y).astype(np.int64)
        return np.stack([x, y, w], axis=1), arr.velocities[idx], idx

    def _draw_notes(self, p: QPainter, xyw: np.ndarray) -> None:
        """Draw note rectangles. Many notes (zoomed out): notes that touch or overlap on screen
        are merged first (`merge_runs`), so the cost follows what is visible, not the count."""
        if len(xyw) > MERGE_ABOVE:
            xyw = merge_runs(xyw)
        h = max(int(self.view.key_height) - 1, 1)
        p.drawRects([QRect(x, y, w, h) for x, y, w in xyw.tolist()])

    def _paint_dense(self, p: QPainter, hidden: set[Note]) -> bool:
        """All tracks as one numpy-rasterised image when many notes are visible."""
        tracks = range(len(self.doc.song.tracks))
        geometry = {i: self._note_geometry(i, hidden if i == self.doc.current_track else None)
                    for i in tracks}
        if sum(len(g[2]) for g in geometry.values()) <= DENSE_ABOVE:
            return False
        layers = []
        for i, (xyw, _, idx) in geometry.items():
            if i != self.doc.current_track and len(idx):
                layers.append((self.doc.note_arrays(i).pitches[idx], xyw[:, 0], xyw[:, 2],
                               theme.ghost_colour(i)))
        cur = self.doc.current_track
        if cur >= 0:
            xyw, vel, idx = geometry[cur]
            pitches = self.doc.note_arrays(cur).pitches[idx]
            chosen = np.zeros(len(idx), bool)
            if self.doc.selection:
                notes = self.doc.note_arrays(cur).notes
                chosen = np.array([notes[i] in self.doc.selection for i in idx.tolist()], bool)
            buckets = np.minimum(vel // 32, 3)
            base = theme.track_colour(cur)
            for b in range(4):
                m = (buckets == b) & ~chosen
                layers.append((pitches[m], xyw[m, 0], xyw[m, 2],
                               theme.velocity_colour(base, b * 32 + 16)))
            layers.append((pitches[chosen], xyw[chosen, 0], xyw[chosen, 2], theme.SELECTED))
        lo, hi = self.view.visible_pitches()
        raster.paint_layers(p, layers, width=self.width(), height=self.height(),
                            key_height=self.view.key_height, scroll_y=self.view.scroll_y,
                            top_pitch=hi, bottom_pitch=lo)
        return True

    def _paint_ghosts(self, p: QPainter) -> None:
        p.setPen(Qt.PenStyle.NoPen)
        for i in range(len(self.doc.song.tracks)):
            if i != self.doc.current_track:
                p.setBrush(theme.ghost_colour(i))
                self._draw_notes(p, self._note_geometry(i)[0])

    def _paint_current(self, p: QPainter, hidden: set[Note]) -> None:
        cur = self.doc.current_track
        if cur < 0:
            return
        xyw, vel, idx = self._note_geometry(cur, hidden)
        if not len(xyw):
            return
        base = theme.track_colour(cur)
        dense = len(xyw) > MERGE_ABOVE or self.view.key_height < 6
        selection = self.doc.selection
        chosen = np.zeros(len(idx), bool)
        if selection:
            notes = self.doc.note_arrays(cur).notes
            chosen = np.array([notes[i] in selection for i in idx.tolist()], bool)
        buckets = np.minimum(vel // 32, 3)
        p.setPen(Qt.PenStyle.NoPen if dense else QPen(theme.NOTE_EDGE))
        for b in range(4):
            mask = (buckets == b) & ~chosen
            if mask.any():
                p.setBrush(theme.velocity_colour(base, b * 32 + 16))
                self._draw_notes(p, xyw[mask])
        if chosen.any():
            p.setPen(Qt.PenStyle.NoPen if dense else QPen(theme.SELECTED_EDGE))
            p.setBrush(theme.SELECTED)
            self._draw_notes(p, xyw[chosen])

    def _paint_cursor(self, p: QPainter) -> None:
        x = int(self.view.tick_to_x(self.doc.cursor))
        if 0 <= x <= self.width():
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(theme.CURSOR)
            p.drawRect(QRect(x, 0, 1, self.height()))

    def _paint_overlay(self, p: QPainter) -> None:
        v = self.view
        for name, notes in self.overlays.items():
            colour = theme.OVERLAYS.get(name, theme.PLANNED)
            p.setPen(QPen(colour, 1, Qt.PenStyle.DashLine))
            p.setBrush(QBrush(colour, Qt.BrushStyle.Dense5Pattern))
            p.drawRects([self._rect(n) for n in notes])
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
