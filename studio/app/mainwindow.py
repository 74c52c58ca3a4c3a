"""The main window: composes the editor, the track list, the transport and the panels.

It owns no music logic: it wires small controllers (project, transport, inputs) to widgets and
menus, and shows what is missing in the status bar.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QLabel, QMainWindow, QMenu, QMessageBox, QTabWidget,
                               QWidget)

from engine import __version__
from studio.app.context import AppEvents, StudioContext
from studio.app.document import SongDocument
from studio.app.pianoroll.editor import PianoRollEditor
from studio.app.preferences.dialog import PreferencesDialog
from studio.app.project.controller import MIDI_SUFFIXES, ProjectController
from studio.app.settings import Settings
from studio.app.tracks.widget import TrackList
from studio.app.transport.controller import TransportController
from studio.app.transport.inputs import ComputerKeyboard
from studio.app.transport.toolbar import TransportBar

log = logging.getLogger(__name__)

APP_TITLE = "PopMusicNet Studio"


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None, *, open_audio: bool = True,
                 autosave_dir: Path | None = None, panels: bool = True) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.events = AppEvents(self)
        self.doc = SongDocument(parent=self)
        self.editor = PianoRollEditor(self.doc, self)
        self.transport = TransportController(self.doc, self)
        self.keys = ComputerKeyboard(self)
        self.midi_keyboard = None
        self.ctx = StudioContext(self.doc, self.transport, self.editor, self.settings,
                                 self.events)
        self.project = ProjectController(self.doc, self.settings, self, autosave_dir)
        self.setCentralWidget(self.editor)
        self.setAcceptDrops(True)
        self.resize(1360, 820)

        self.tracks = TrackList(self.doc, self)
        self.tracks_dock = self._dock("Tracks", self.tracks, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.resizeDocks([self.tracks_dock], [310], Qt.Orientation.Horizontal)
        self.transport_bar = TransportBar(self.doc, self.transport, self.keys, self)
        self.addToolBar(self.transport_bar)
        self.panels: list[QDockWidget] = self._make_panels() if panels else []
        self._status_bar()
        self._menus()
        self._wire()
        self._update_title()
        self.editor.canvas.setFocus()
        if open_audio:
            QTimer.singleShot(0, self.apply_devices)

    # -- composition --------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.lower())
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _make_panels(self) -> list[QDockWidget]:
        from studio.app.panels import create_panels

        docks = create_panels(self.ctx, self)
        self.setTabPosition(Qt.DockWidgetArea.RightDockWidgetArea, QTabWidget.TabPosition.North)
        # Two tab groups stacked on the right, three tabs each (six do not fit a dock's width):
        # making music on top, analysing and exporting below.
        groups = [docks[:3], docks[3:]]
        tops = []
        for group in groups:
            if not group:
                continue
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, group[0],
                               Qt.Orientation.Vertical)
            for dock in group[1:]:
                self.tabifyDockWidget(group[0], dock)
            group[0].raise_()
            tops.append(group[0])
        if tops:
            self.resizeDocks(tops[:1], [380], Qt.Orientation.Horizontal)
            if len(tops) == 2:
                self.resizeDocks(tops, [470, 330], Qt.Orientation.Vertical)
        return docks

    def _status_bar(self) -> None:
        bar = self.statusBar()
        self.audio_label = QLabel("Audio: opening…", self)
        self.midi_label = QLabel("", self)
        for label in (self.midi_label, self.audio_label):
            label.setStyleSheet("padding: 0 6px;")
            bar.addPermanentWidget(label)

    def _menus(self) -> None:
        mb = self.menuBar()
        stack = self.doc.undo_stack
        file = mb.addMenu("&File")
        self._add(file, "&New", QKeySequence.StandardKey.New, self.project.new)
        self._add(file, "&Open…", QKeySequence.StandardKey.Open, self.project.open_dialog)
        self.recent_menu = file.addMenu("Open &Recent")
        self._fill_recent()
        self._add(file, "&Import MIDI as Tracks…", None, self._import_dialog)
        export = file.addMenu("&Export")
        self._add(export, "&MIDI File…", QKeySequence("Ctrl+Shift+M"),
                  lambda: self._panel_do("Export", lambda p: p.ask("mid")))
        self._add(export, "&WAV Audio…", QKeySequence("Ctrl+Shift+E"),
                  lambda: self._panel_do("Export", lambda p: p.ask("wav")))
        self._add(export, "&Stems…", None,
                  lambda: self._panel_do("Export", lambda p: p.ask("stems")))
        export.setEnabled(bool(self.panels))
        file.addSeparator()
        self._add(file, "&Save", QKeySequence.StandardKey.Save, self.project.save)
        self._add(file, "Save &As…", QKeySequence.StandardKey.SaveAs, self.project.save_as)
        file.addSeparator()
        self._add(file, "&Preferences…", QKeySequence.StandardKey.Preferences, self._preferences)
        file.addSeparator()
        self._add(file, "&Quit", QKeySequence.StandardKey.Quit, self.close)

        edit = mb.addMenu("&Edit")
        undo = stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = stack.createRedoAction(self, "&Redo")
        keys = QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)
        redo.setShortcuts(keys + [QKeySequence("Ctrl+Y")] * (QKeySequence("Ctrl+Y") not in keys))
        edit.addAction(undo)
        edit.addAction(redo)
        edit.addSeparator()
        for a in self.editor.edit_actions():
            edit.addSeparator() if a is None else edit.addAction(a)

        song = mb.addMenu("&Song")
        self._add(song, "&Accompany Track", QKeySequence("Ctrl+Shift+A"),
                  lambda: self._panel_do("Accompany",
                                         lambda p: p.accompany(selection_only=False)))
        self._add(song, "Accompany &Selection", None,
                  lambda: self._panel_do("Accompany",
                                         lambda p: p.accompany(selection_only=True)))
        song.addSeparator()
        self._add(song, "&Generate Bars at Cursor", None,
                  lambda: self._panel_do("Generate", lambda p: p.generate()))
        self._add(song, "&Continue at Cursor", None,
                  lambda: self._panel_do("Generate", lambda p: p.continue_()))
        song.setEnabled(bool(self.panels))

        view = mb.addMenu("&View")
        v = self.editor.view
        # Ctrl++ is Ctrl+Shift+= on most layouts: the pitch zoom keeps clear of both (Alt).
        self.act_zoom_in = self._add(view, "Zoom &In", [QKeySequence("Ctrl++"),
                                                        QKeySequence("Ctrl+=")],
                                     lambda: v.zoom_x(1.5))
        self.act_zoom_out = self._add(view, "Zoom &Out", [QKeySequence("Ctrl+-")],
                                      lambda: v.zoom_x(1 / 1.5))
        self._add(view, "Zoom to &Fit", QKeySequence("Ctrl+0"), self.editor.zoom_to_fit)
        self._add(view, "Taller Keys", QKeySequence("Ctrl+Alt+="), lambda: v.zoom_y(1.2))
        self._add(view, "Shorter Keys", QKeySequence("Ctrl+Alt+-"), lambda: v.zoom_y(1 / 1.2))
        follow = self._add(view, "Follow &Playhead", None, self._toggle_follow)
        follow.setCheckable(True)
        follow.setChecked(True)
        view.addSeparator()
        view.addAction(self.tracks_dock.toggleViewAction())
        for dock in self.panels:
            view.addAction(dock.toggleViewAction())

        transport = mb.addMenu("&Transport")
        for a in (self.transport_bar.act_play, self.transport_bar.act_record,
                  self.transport_bar.act_home, self.transport_bar.act_loop,
                  self.transport_bar.act_metronome, self.transport_bar.act_keys):
            transport.addAction(a)

        help_ = mb.addMenu("&Help")
        self._add(help_, "&Keyboard Shortcuts", None, self._shortcuts_help)
        self._add(help_, "&About", None, self._about)

    def _add(self, menu: QMenu, text: str, shortcut, slot) -> QAction:
        a = QAction(text, self)
        if isinstance(shortcut, list):
            a.setShortcuts(shortcut)
        elif shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        a.triggered.connect(slot)
        menu.addAction(a)
        return a

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files
        for path in files:
            a = self.recent_menu.addAction(path)
            a.triggered.connect(lambda _=False, p=path: self.project.open(p))
        self.recent_menu.setEnabled(bool(files))

    def _wire(self) -> None:
        self.project.titleChanged.connect(self._update_title)
        self.project.recentChanged.connect(self._fill_recent)
        self.project.message.connect(self.say)
        self.project.wavOpened.connect(self.events.wavDropped)
        self.events.message.connect(self.say)
        self.editor.message.connect(self.say)
        self.transport.message.connect(self.say)
        self.transport.deviceChanged.connect(self.audio_label.setText)
        self.transport.positionChanged.connect(self.editor.set_playhead)
        self.transport.heldChanged.connect(self.editor.keyboard.set_held)
        self.transport.takeChanged.connect(
            lambda notes: self.editor.canvas.set_overlay("recording", notes))
        self.editor.auditionOn.connect(lambda p: self.transport.note_on(p, 100))
        self.editor.auditionOff.connect(self.transport.note_off)
        self.editor.seekRequested.connect(self._seek)
        self.keys.noteOn.connect(self.transport.note_on)
        self.keys.noteOff.connect(self.transport.note_off)

    # -- devices ------------------------------------------------------------------------------
    def apply_devices(self) -> None:
        """(Re)open audio and MIDI from the preferences; report what is missing."""
        s = self.settings
        self.transport.open_player(s.audio_backend, s.soundfont or None, s.buffer_frames)
        self._open_midi_input(s.midi_input)

    def _open_midi_input(self, port: str) -> None:
        if self.midi_keyboard is not None:
            self.midi_keyboard.close()
            self.midi_keyboard = None
        if not port:
            self.midi_label.setText("No MIDI input (Transport ▸ Computer keys plays notes)")
            return
        if self.transport.player is None:
            QTimer.singleShot(500, lambda: self._open_midi_input(port))  # wait for the clock
            return
        from studio.app.transport.inputs import MidiKeyboard

        player = self.transport.player
        try:
            self.midi_keyboard = MidiKeyboard(
                port, player.synth.frames,
                lambda on, p, v: player.note_on(p, v) if on else player.note_off(p), self)
        except Exception as exc:  # no MIDI system, port gone: say so, keep working
            self.midi_label.setText(f"No MIDI input: {exc}")
            return
        self.midi_keyboard.noteOn.connect(self.transport.note_on)
        self.midi_keyboard.noteOff.connect(self.transport.note_off)
        self.midi_label.setText(f"MIDI in: {self.midi_keyboard.port_name}")

    def _preferences(self) -> None:
        if PreferencesDialog(self.settings, self).exec():
            self.transport.stop()
            self.apply_devices()

    def _panel_do(self, title: str, act) -> None:
        """A menu command that a panel carries out: show the panel, then act if it can."""
        panel = next((p for p in self.panels if getattr(p, "TITLE", "") == title), None)
        if panel is None:
            return
        panel.show()
        panel.raise_()
        if panel.ensure_checked():
            act(panel)
        else:
            self.say(panel.notice.text())

    # -- small slots --------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _update_title(self, *_: object) -> None:
        self.setWindowTitle(f"{APP_TITLE} — {self.project.name}")

    def _seek(self, tick: int) -> None:
        if self.transport.is_playing:
            self.transport.stop()
            self.transport.play()

    def _toggle_follow(self, on: bool) -> None:
        self.editor.follow_playhead = on

    def _import_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Import MIDI", "", "MIDI files (*.mid *.midi)")
        if path:
            self.project.import_midi(path)

    def _shortcuts_help(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", SHORTCUTS)

    def _about(self) -> None:
        QMessageBox.about(self, APP_TITLE, f"{APP_TITLE} {__version__}\n\nPlay, accompany, "
                          "generate, edit and export music with machine-learned models.")

    # -- drag and drop ------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if any(_droppable(u.toLocalFile()) for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            self.open_dropped(url.toLocalFile())
        event.acceptProposedAction()

    def open_dropped(self, path: str) -> None:
        """MIDI: open it into an empty song, else add its tracks; WAV: classify; project: open."""
        suffix = Path(path).suffix.lower()
        if suffix in MIDI_SUFFIXES:
            if self.doc.song.n_notes == 0 and not self.doc.modified:
                self.project.open(path, prompt=False)
            else:
                self.project.import_midi(path)
        elif suffix == ".wav":
            self.events.wavDropped.emit(path)
        elif suffix == ".pmn":
            self.project.open(path)

    # -- closing ------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self.project.maybe_save():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def interrupt(self) -> None:
        """Quit at once (Ctrl+C in the terminal): unsaved work stays as an autosave."""
        self.project.autosave()
        self._stop_devices()
        self.project._timer.stop()
        from PySide6.QtWidgets import QApplication

        QApplication.quit()

    def shutdown(self) -> None:
        self._stop_devices()
        self.project.shutdown()

    def _stop_devices(self) -> None:
        self.keys.set_enabled(False)
        if self.midi_keyboard is not None:
            self.midi_keyboard.close()
        for dock in self.panels:
            stop = getattr(dock, "shutdown", None)
            if stop is not None:
                stop()
        self.transport.shutdown()


def _droppable(path: str) -> bool:
    return Path(path).suffix.lower() in (*MIDI_SUFFIXES, ".wav", ".pmn")


SHORTCUTS = """Space: play / stop    R: record    Home: go to start
Ctrl+O: open a project, MIDI or WAV file    Ctrl+Shift+A: accompany the track
Ctrl+Shift+E / Ctrl+Shift+M: export WAV / MIDI
Ctrl+Z / Ctrl+Shift+Z: undo / redo
Draw mode (Ctrl+1): click-drag on empty space draws a note; Shift-drag selects
Select mode (Ctrl+2): drag selects; drag a note to move it, its right edge to resize
Ctrl-drag a note: copy it    Right-click a note: delete it
Delete: delete    Ctrl+D: duplicate    Ctrl+C / X / V: copy / cut / paste at the cursor
Up / Down: transpose (Shift: octave)    Left / Right: nudge by the grid
Q: quantize the selected notes to the grid    Ctrl++ / Ctrl+-: zoom time    Ctrl+0: fit
Ctrl+Alt+= / Ctrl+Alt+-: taller / shorter keys
Wheel: scroll pitch; Shift+wheel: scroll time; Ctrl+wheel: zoom time; Alt+wheel: zoom pitch
Computer keys (Transport menu): A S D F G H J K L = white keys, W E T Y U O P = black keys,
Z / X = octave down / up, C / V = softer / louder
Ruler: click to move the cursor, drag to set the loop region"""
