"""The pianoroll editor: ruler, keyboard, canvas, velocity lane and scroll bars over one view,
plus the Edit actions (delete, duplicate, copy/cut/paste, select all, transpose, nudge)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QScrollBar,
                               QToolButton, QVBoxLayout, QWidget)

from engine.music import Note
from studio.app.commands import EditNotes
from studio.app.document import SongDocument
from studio.app.pianoroll import operations as ops
from studio.app.pianoroll.canvas import NoteCanvas
from studio.app.pianoroll.keyboard import PianoKeyboard
from studio.app.pianoroll.ruler import Ruler
from studio.app.pianoroll.velocity import VelocityLane
from studio.app.pianoroll.view import GRIDS, ViewState, grid_ticks

log = logging.getLogger(__name__)


class PianoRollEditor(QWidget):
    auditionOn = Signal(int)  # pitch: sound it now (keyboard click, touched note)
    auditionOff = Signal(int)
    seekRequested = Signal(int)
    message = Signal(str)

    def __init__(self, doc: SongDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.view = ViewState(self)
        self.follow_playhead = True
        self._clipboard: list[Note] = []
        self.canvas = NoteCanvas(doc, self.view, self)
        self.keyboard = PianoKeyboard(self.view, self)
        self.ruler = Ruler(doc, self.view, self)
        self.velocity = VelocityLane(doc, self.view, self)
        self.hbar = QScrollBar(Qt.Orientation.Horizontal, self)
        self.vbar = QScrollBar(Qt.Orientation.Vertical, self)
        self._build_actions()
        self._layout()
        self.view.changed.connect(self._sync_scrollbars)
        doc.songReplaced.connect(self.show_song)
        doc.notesChanged.connect(self._sync_scrollbars)
        self.hbar.valueChanged.connect(lambda v: self.view.set_scroll(x=v))
        self.vbar.valueChanged.connect(lambda v: self.view.set_scroll(y=v))
        self.keyboard.notePressed.connect(self.auditionOn)
        self.keyboard.noteReleased.connect(self.auditionOff)
        self.canvas.auditionRequested.connect(self._audition_briefly)
        self.canvas.seekRequested.connect(self.seekRequested)
        self.ruler.seekRequested.connect(self.seekRequested)

    # -- layout -------------------------------------------------------------------------------
    def _layout(self) -> None:
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        self.tool_buttons: list[QToolButton] = []
        for act in (self.act_draw, self.act_select):
            b = QToolButton(self)
            b.setDefaultAction(act)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            b.setStyleSheet(TOOL_STYLE)
            bar.addWidget(b)
            self.tool_buttons.append(b)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Grid", self))
        self.grid_box = QComboBox(self)
        self.grid_box.addItems(list(GRIDS))
        self.grid_box.setCurrentText(self.view.grid)
        self.grid_box.setToolTip("Snap grid (T = triplets)")
        self.grid_box.currentTextChanged.connect(self.view.set_grid)
        bar.addWidget(self.grid_box)
        bar.addSpacing(12)
        for text, tip, slot in (("−", "Zoom out (Ctrl+wheel)", lambda: self.view.zoom_x(1 / 1.5)),
                                ("+", "Zoom in (Ctrl+wheel)", lambda: self.view.zoom_x(1.5)),
                                ("Fit", "Show the whole song, every track's notes (Ctrl+0)",
                                 self.zoom_to_fit)):
            b = QToolButton(self)
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            bar.addWidget(b)
            if text == "Fit":
                self.fit_button = b
        bar.addStretch(1)
        self.track_label = QLabel(self)
        bar.addWidget(self.track_label)
        self.doc.currentTrackChanged.connect(self._show_track_name)
        self.doc.tracksChanged.connect(self._show_track_name)

        grid = QGridLayout()
        grid.setSpacing(0)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.ruler, 0, 1)
        grid.addWidget(self.keyboard, 1, 0)
        grid.addWidget(self.canvas, 1, 1)
        grid.addWidget(self.vbar, 1, 2)
        vel_label = QLabel("Vel", self)
        vel_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        grid.addWidget(vel_label, 2, 0)
        grid.addWidget(self.velocity, 2, 1)
        grid.addWidget(self.hbar, 3, 1)
        grid.setRowStretch(1, 1)
        grid.setColumnStretch(1, 1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addLayout(bar)
        outer.addLayout(grid)

    def _show_track_name(self, *_: object) -> None:
        i = self.doc.current_track
        self.track_label.setText(f"Editing: {self.doc.track(i).name or f'Track {i + 1}'}"
                                 if i >= 0 else "No track")

    def _sync_scrollbars(self, *_: object) -> None:
        v = self.view
        width = (self.doc.length_ticks() + 4 * self.doc.song.ticks_per_beat) * v.px_per_tick
        for bar, maximum, value, page in (
                (self.hbar, max(0, int(width - v.width)), v.scroll_x, v.width),
                (self.vbar, max(0, int(v.content_height - v.height)), v.scroll_y, v.height)):
            bar.blockSignals(True)
            bar.setRange(0, max(maximum, int(value)))
            bar.setPageStep(max(int(page), 1))
            bar.setSingleStep(20)
            bar.setValue(int(value))
            bar.blockSignals(False)

    # -- view ---------------------------------------------------------------------------------
    def show_song(self) -> None:
        """After open/new: the whole song in view (time and every track's pitches)."""
        self.zoom_to_fit()
        if not any(t.notes for t in self.doc.song.tracks if not t.is_drum):
            self.view.show_pitch_range(55, 79)
        self._show_track_name()

    def zoom_to_fit(self) -> None:
        """The whole song in view: its length across, every pitched track's range down."""
        length = max(self.doc.length_ticks(), 1)
        self.view.px_per_tick = min(max((self.view.width - 20) / length, ViewState.MIN_PPT),
                                    ViewState.MAX_PPT)
        self.view.set_scroll(x=0)
        ranges = [t.pitch_range() for t in self.doc.song.tracks if t.notes and not t.is_drum]
        if ranges:
            low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
            rows = high - low + 3  # a key of room above and below
            self.view.key_height = min(max(self.view.height / rows, ViewState.MIN_KEY),
                                       ViewState.MAX_KEY)
            self.view.show_pitch_range(low, high)

    def reveal(self, notes: Sequence[Note]) -> None:
        """Scroll (not zoom) so that `notes` are in view: what a panel has just written."""
        if not notes:
            return
        v = self.view
        start, end = min(n.start for n in notes), max(n.end for n in notes)
        if v.tick_to_x(start) < 0 or v.tick_to_x(end) > v.width:
            v.set_scroll(x=max(0.0, start * v.px_per_tick - 40))
        low, high = min(n.pitch for n in notes), max(n.pitch for n in notes)
        p0, p1 = v.visible_pitches()
        if low < p0 or high > p1:
            v.show_pitch_range(low, high)

    def set_playhead(self, tick: float | None) -> None:
        if tick is not None and self.follow_playhead:
            x = self.view.tick_to_x(tick)
            if x < 0 or x > self.view.width - 20:
                self.view.set_scroll(x=max(0.0, tick * self.view.px_per_tick - 40))
        self.canvas.set_playhead(tick)
        self.ruler.set_playhead(tick)

    def _audition_briefly(self, pitch: int) -> None:
        self.auditionOn.emit(pitch)
        timer = QTimer(self)  # a child: it dies with the editor, never fires after it
        timer.setSingleShot(True)
        timer.timeout.connect(lambda: self.auditionOff.emit(pitch))
        timer.timeout.connect(timer.deleteLater)
        timer.start(250)

    # -- edit actions -------------------------------------------------------------------------
    def _build_actions(self) -> None:
        def act(text: str, shortcut, slot, tip: str = "") -> QAction:
            a = QAction(text, self)
            if shortcut is not None:
                a.setShortcuts(shortcut if isinstance(shortcut, list) else [shortcut])
                a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            a.setToolTip(tip or text)
            a.triggered.connect(slot)
            self.addAction(a)
            return a

        K = QKeySequence
        self.act_draw = act("Draw", K("Ctrl+1"), lambda: self._set_mode("draw"),
                            "Draw notes: click and drag on empty space (Ctrl+1)")
        self.act_select = act("Select", K("Ctrl+2"), lambda: self._set_mode("select"),
                              "Select notes with a rubber band (Ctrl+2; Shift-drag in Draw mode)")
        group = QActionGroup(self)
        for a in (self.act_draw, self.act_select):
            a.setCheckable(True)
            group.addAction(a)
        self.act_draw.setChecked(True)
        self.act_delete = act("Delete", [K(K.StandardKey.Delete), K("Backspace")],
                              self.delete_selection)
        self.act_duplicate = act("Duplicate", K("Ctrl+D"), self.duplicate_selection)
        self.act_copy = act("Copy", K(K.StandardKey.Copy), self.copy_selection)
        self.act_cut = act("Cut", K(K.StandardKey.Cut), self.cut_selection)
        self.act_paste = act("Paste", K(K.StandardKey.Paste), self.paste)
        self.act_select_all = act("Select All", K(K.StandardKey.SelectAll), self.select_all)
        self.act_up = act("Transpose Up", K("Up"), lambda: self.transpose(1))
        self.act_down = act("Transpose Down", K("Down"), lambda: self.transpose(-1))
        self.act_oct_up = act("Octave Up", K("Shift+Up"), lambda: self.transpose(12))
        self.act_oct_down = act("Octave Down", K("Shift+Down"), lambda: self.transpose(-12))
        self.act_quantize = act("Quantize", K("Q"), self.quantize_selection,
                                "Move the selected notes' starts to the grid (Q)")
        self.act_left = act("Nudge Left", K("Left"), lambda: self.nudge(-1))
        self.act_right = act("Nudge Right", K("Right"), lambda: self.nudge(1))

    def edit_actions(self) -> list[QAction]:
        return [self.act_delete, self.act_duplicate, self.act_copy, self.act_cut, self.act_paste,
                self.act_select_all, None, self.act_quantize, self.act_up, self.act_down,
                self.act_oct_up,
                self.act_oct_down, self.act_left, self.act_right]

    def _set_mode(self, mode: str) -> None:
        self.canvas.mode = mode
        (self.act_draw if mode == "draw" else self.act_select).setChecked(True)

    def _selected(self) -> list[Note]:
        return sorted(self.doc.selection)

    def _push(self, removed: Sequence[Note], added: Sequence[Note], text: str) -> None:
        self.doc.undo_stack.push(EditNotes(self.doc, self.doc.current_track, removed, added, text))

    def delete_selection(self) -> None:
        sel = self._selected()
        if sel:
            self._push(sel, [], "Delete notes")

    def duplicate_selection(self) -> None:
        sel = self._selected()
        if sel:
            bar = self.doc.song.meter_at(sel[0].start).bar_ticks(self.doc.song.ticks_per_beat)
            self._push([], ops.duplicated(sel, bar), "Duplicate notes")

    def copy_selection(self) -> None:
        sel = self._selected()
        if sel:
            self._clipboard = ops.relative(sel)
            self.message.emit(f"Copied {len(sel)} notes")

    def cut_selection(self) -> None:
        sel = self._selected()
        if sel:
            self._clipboard = ops.relative(sel)
            self._push(sel, [], "Cut notes")

    def paste(self) -> None:
        if self._clipboard and self.doc.current_track >= 0:
            at = self.doc.cursor
            notes = ops.pasted(self._clipboard, at)
            self._push([], notes, "Paste notes")
            self.doc.set_cursor(max(n.end for n in notes))

    def select_all(self) -> None:
        if self.doc.current_track >= 0:
            self.doc.set_selection(self.doc.track(self.doc.current_track).notes)

    def transpose(self, semitones: int) -> None:
        sel = self._selected()
        moved = ops.transposed(sel, semitones) if sel else None
        if moved:
            self._push(sel, moved, "Transpose notes")

    def nudge(self, steps: int) -> None:
        sel = self._selected()
        g = grid_ticks(self.view.grid, self.doc.song.ticks_per_beat)
        moved = ops.nudged(sel, steps * g) if sel else None
        if moved:
            self._push(sel, moved, "Nudge notes")

    def quantize_selection(self) -> None:
        sel = self._selected()
        if not sel:
            self.message.emit("Select notes to quantize")
            return
        g = grid_ticks(self.view.grid, self.doc.song.ticks_per_beat)
        if g <= 1:
            self.message.emit("Choose a grid to quantize to")
            return
        moved = ops.quantized(sel, g)
        if moved:
            self._push(sel, moved, f"Quantize {len(sel)} notes to {self.view.grid}")


# The active tool must read at a glance: the checked button is filled with the accent colour.
TOOL_STYLE = ("QToolButton { padding: 2px 10px; border: 1px solid #555a62; border-radius: 3px; }"
              "QToolButton:checked { background: #3d8fe0; color: white; font-weight: bold;"
              " border-color: #8cc4ff; }")
