"""Painting the pianoroll's static picture: key rows, the meter's grid, the loop, every
visible note (the current track in colour by velocity, the others ghosted), the cursor.

Only what is visible is painted: notes are culled with numpy (`NoteArrays.visible`) and drawn in
a few `drawRects` batches; above `DENSE_ABOVE` visible notes all notes are rasterised at once
with numpy (raster.py). `NoteCanvas` caches the result in a pixmap; the playhead and drag
previews are drawn over it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QRectF, Qt
from PySide6.QtGui import QPainter, QPen

from engine.music import Note
from studio.app import theme
from studio.app.document import SongDocument
from studio.app.pianoroll import raster
from studio.app.pianoroll.view import ViewState, grid_ticks

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


class RollPainter:
    """Paints one static frame of the roll for a document and a view at a size."""

    def __init__(self, doc: SongDocument, view: ViewState, width: int, height: int) -> None:
        self.doc, self.view, self.width, self.height = doc, view, width, height

    def paint(self, p: QPainter, hidden: set[Note]) -> None:
        """Everything under the overlays; `hidden` notes (being dragged) are left out."""
        self.paint_rows(p)
        self.paint_grid(p)
        self.paint_loop(p)
        if not self.paint_dense(p, hidden):
            self.paint_ghosts(p)
            self.paint_current(p, hidden)
        self.paint_cursor(p)

    def paint_rows(self, p: QPainter) -> None:
        v = self.view
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(theme.BACKGROUND)
        p.drawRect(QRect(0, 0, self.width, self.height))
        lo, hi = v.visible_pitches()
        white, black, cs = [], [], []
        for pitch in range(lo, hi + 1):
            y = int(v.pitch_to_y(pitch))
            r = QRect(0, y, self.width, int(v.key_height) - 1)
            (black if pitch % 12 in (1, 3, 6, 8, 10) else white).append(r)
            if pitch % 12 == 0:
                cs.append(QRect(0, y + int(v.key_height) - 1, self.width, 1))
        p.setBrush(theme.ROW_WHITE)
        p.drawRects(white)
        p.setBrush(theme.ROW_BLACK)
        p.drawRects(black)
        p.setBrush(theme.ROW_C)
        p.drawRects(cs)

    def paint_grid(self, p: QPainter) -> None:
        v, song = self.view, self.doc.song
        t0, t1 = v.visible_ticks()
        tpb = song.ticks_per_beat
        g = grid_ticks(v.grid, tpb)
        h = self.height
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

    def paint_loop(self, p: QPainter) -> None:
        if self.doc.loop is None:
            return
        a, b = self.doc.loop
        x0, x1 = self.view.tick_to_x(a), self.view.tick_to_x(b)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(theme.LOOP)
        p.drawRect(QRectF(x0, 0, x1 - x0, self.height))

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

    def paint_dense(self, p: QPainter, hidden: set[Note]) -> bool:
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
        raster.paint_layers(p, layers, width=self.width, height=self.height,
                            key_height=self.view.key_height, scroll_y=self.view.scroll_y,
                            top_pitch=hi, bottom_pitch=lo)
        return True

    def paint_ghosts(self, p: QPainter) -> None:
        p.setPen(Qt.PenStyle.NoPen)
        for i in range(len(self.doc.song.tracks)):
            if i != self.doc.current_track:
                p.setBrush(theme.ghost_colour(i))
                self._draw_notes(p, self._note_geometry(i)[0])

    def paint_current(self, p: QPainter, hidden: set[Note]) -> None:
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

    def paint_cursor(self, p: QPainter) -> None:
        x = int(self.view.tick_to_x(self.doc.cursor))
        if 0 <= x <= self.width:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(theme.CURSOR)
            p.drawRect(QRect(x, 0, 1, self.height))
