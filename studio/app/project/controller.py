"""Open, save, recent files, autosave and crash recovery, and the unsaved-changes prompt.

Autosave writes the project every `Settings.autosave_seconds` while it has unsaved changes, to
one file in the app's data folder; a clean quit deletes it. So an autosave file found at start-up
means the last session did not end cleanly, and the user is offered to recover it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from engine.errors import UserInputError
from engine.music import ROLE_MELODY, Song
from studio.app import services
from studio.app.commands import InsertTracks
from studio.app.document import SongDocument
from studio.app.generate import rescaled
from studio.app.project import fileformat
from studio.app.project.fileformat import Project
from studio.app.settings import Settings

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi", ".kar")
# The Open dialog's filters, the one that shows every file the studio opens first.
OPEN_FILTERS = (f"All supported (*{fileformat.SUFFIX} *.mid *.midi *.wav)",
                f"PopMusicNet projects (*{fileformat.SUFFIX})",
                "MIDI files (*.mid *.midi)",
                "Audio to classify (*.wav)",
                "All files (*)")
FILTER = ";;".join(OPEN_FILTERS)
PROJECT_FILTER = OPEN_FILTERS[1]


def default_autosave_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".popmusicnet") / "autosave"


class ProjectController(QObject):
    titleChanged = Signal(str)  # the project's name for the window title
    message = Signal(str)
    recentChanged = Signal()
    wavOpened = Signal(str)  # a WAV chosen in the Open dialog: the classifier takes it

    def __init__(self, doc: SongDocument, settings: Settings, window: QWidget,
                 autosave_dir: Path | None = None) -> None:
        super().__init__(window)
        self.doc, self.settings, self.window = doc, settings, window
        self.path: Path | None = None
        self.autosave_dir = autosave_dir or default_autosave_dir()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.autosave)
        self._timer.start(max(settings.autosave_seconds, 5) * 1000)
        doc.undo_stack.cleanChanged.connect(self._clean_changed)

    # -- naming -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name(self.doc.modified)

    def _name(self, modified: bool) -> str:
        base = self.path.stem if self.path else (self.doc.song.title or "Untitled")
        return base + (" *" if modified else "")

    def _clean_changed(self, clean: bool) -> None:
        # Uses the signal's value: during teardown the stack may already be gone.
        self.titleChanged.emit(self._name(not clean))

    @property
    def autosave_path(self) -> Path:
        return self.autosave_dir / f"autosave{fileformat.SUFFIX}"

    # -- commands -----------------------------------------------------------------------------
    def new(self) -> None:
        if self.maybe_save():
            self.doc.set_song(SongDocument.empty_song())
            self.path = None
            self.doc.source_path = None
            self.titleChanged.emit(self.name)

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        dialog = QFileDialog(self.window, "Open project, MIDI or WAV file")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        dialog.setNameFilters(list(OPEN_FILTERS))
        last = self.settings.last_filter
        dialog.selectNameFilter(last if last in OPEN_FILTERS else OPEN_FILTERS[0])
        folder = self.settings.last_folder
        if folder and Path(folder).is_dir():
            dialog.setDirectory(folder)
        if not dialog.exec():
            return
        self.settings.last_filter = dialog.selectedNameFilter()
        files = dialog.selectedFiles()
        if not files:
            return
        path = files[0]
        self.settings.last_folder = str(Path(path).parent)
        if Path(path).suffix.lower() == ".wav":
            self.wavOpened.emit(path)
        else:
            self.open(path, prompt=False)

    def open(self, path: str | Path, *, prompt: bool = True) -> bool:
        """Open a project or a MIDI file. Errors go to a dialog, not a traceback."""
        if prompt and not self.maybe_save():
            return False
        path = Path(path)
        try:
            if path.suffix.lower() in MIDI_SUFFIXES:
                song = services.read_midi(path)
                song.title = song.title or path.stem
                mark_melody(song)
                project, self.path = Project(song), None
            else:
                project, self.path = fileformat.load(path), path
        except (UserInputError, OSError) as exc:
            self._error("Cannot open", str(exc))
            return False
        except Exception as exc:  # a bug in reading must not take the window down
            log.exception("opening %s", path)
            self._error("Cannot open", f"{path}: internal error ({type(exc).__name__}: {exc})")
            return False
        self._install(project)
        self.doc.source_path = path
        self.settings.last_folder = str(path.parent)
        self.settings.add_recent(str(path))
        self.recentChanged.emit()
        self.message.emit(f"Opened {path.name}: {len(project.song.tracks)} tracks, "
                          f"{project.song.n_notes} notes")
        return True

    def import_midi(self, path: str | Path) -> bool:
        """Add a MIDI file's tracks to the song (one undo step)."""
        try:
            song = services.read_midi(path)
        except (UserInputError, OSError) as exc:
            self._error("Cannot import", str(exc))
            return False
        n = len(self.doc.song.tracks)
        tpb = self.doc.song.ticks_per_beat
        for t in song.tracks:  # the file's resolution may differ from the song's
            t.notes = rescaled(t.notes, song.ticks_per_beat, tpb)
        self.doc.undo_stack.push(InsertTracks(self.doc, n, song.tracks,
                                              f"Import {Path(path).name}"))
        self.message.emit(f"Imported {len(song.tracks)} tracks from {Path(path).name}")
        return True

    def _install(self, project: Project) -> None:
        self.doc.set_song(project.song, project.mixer)
        self.doc.set_loop(project.loop)
        self.doc.set_cursor(project.cursor)
        self.titleChanged.emit(self.name)

    def save(self) -> bool:
        if self.path is None:
            return self.save_as()
        return self._save_to(self.path)

    def save_as(self) -> bool:
        folder = Path(self.settings.last_folder or Path.home())
        start = str(self.path or folder / (self.doc.song.title or "untitled"))
        path, _ = QFileDialog.getSaveFileName(self.window, "Save project", start, PROJECT_FILTER)
        if not path:
            return False
        if not path.endswith(fileformat.SUFFIX):
            path += fileformat.SUFFIX
        return self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        try:
            fileformat.save(self._project(), path)
        except (UserInputError, OSError) as exc:
            self._error("Cannot save", str(exc))
            return False
        self.path = self.doc.source_path = path
        self.doc.undo_stack.setClean()
        self.settings.add_recent(str(path))
        self.recentChanged.emit()
        self.discard_autosave()
        self.titleChanged.emit(self.name)
        self.message.emit(f"Saved {path}")
        return True

    def _project(self) -> Project:
        return Project(self.doc.song, self.doc.mixer_states(), self.doc.loop, self.doc.cursor)

    def maybe_save(self) -> bool:
        """Ask what to do with unsaved changes. False means: cancel what you were doing."""
        if not self.doc.modified:
            return True
        answer = self.ask_save(f"Save the changes to {self.name.rstrip(' *')}?")
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def ask_save(self, text: str) -> QMessageBox.StandardButton:
        """The unsaved-changes question (a seam: tests and scripts replace it)."""
        return QMessageBox.question(
            self.window, "Unsaved changes", text,
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)

    # -- autosave -----------------------------------------------------------------------------
    def autosave(self) -> None:
        if not self.doc.modified:
            return
        try:
            self.autosave_dir.mkdir(parents=True, exist_ok=True)
            fileformat.save(self._project(), self.autosave_path)
            # The project's own file, so that recovered work keeps its name and its place.
            self.origin_path.write_text(str(self.path) if self.path else "", encoding="utf-8")
            log.info("autosaved to %s", self.autosave_path)
        except (UserInputError, OSError) as exc:  # rate: once per interval at most
            log.warning("autosave failed: %s", exc)

    @property
    def origin_path(self) -> Path:
        return self.autosave_dir / "autosave.origin"

    def discard_autosave(self) -> None:
        self.autosave_path.unlink(missing_ok=True)
        self.origin_path.unlink(missing_ok=True)

    def offer_recovery(self, ask: Callable[[str], bool] | None = None) -> bool:
        """If an autosave is left from a crashed session, offer to restore it."""
        path = self.autosave_path
        if not path.exists():
            return False
        ask = ask or (lambda text: QMessageBox.question(
            self.window, "Recover unsaved work?", text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
            == QMessageBox.StandardButton.Yes)
        if not ask("PopMusicNet Studio did not close cleanly last time. "
                   "Recover the work that was autosaved?"):
            self.discard_autosave()
            return False
        try:
            project = fileformat.load(path)
        except UserInputError as exc:
            self._error("Cannot recover", str(exc))
            return False
        try:
            origin = self.origin_path.read_text(encoding="utf-8").strip()
        except OSError:
            origin = ""
        self._install(project)
        self.path = Path(origin) if origin else None
        self.doc.source_path = self.path
        # Recovered work is unsaved work: mark it so the user is asked before it is lost.
        self.doc.undo_stack.resetClean()
        self.titleChanged.emit(self.name)
        return True

    def shutdown(self) -> None:
        """A clean quit: no crash to recover from."""
        self._timer.stop()
        self.discard_autosave()

    def _error(self, title: str, text: str) -> None:
        self.message.emit(text)
        self.show_error(title, text)

    def show_error(self, title: str, text: str) -> None:
        """A seam like `ask_save`: tests record errors instead of opening a dialog."""
        QMessageBox.warning(self.window, title, text)


def mark_melody(song: Song) -> None:
    """A MIDI file that marks no melody: its only pitched track, or the one named "Melody", is
    the melody (the role the accompanist and the track list then show)."""
    if any(t.role == ROLE_MELODY for t in song.tracks):
        return
    pitched = [t for t in song.tracks if not t.is_drum and t.notes]
    named = [t for t in pitched if t.name.strip().lower() == "melody"]
    if len(pitched) == 1 or len(named) == 1:
        (named or pitched)[0].role = ROLE_MELODY


