"""The Export dock: each export runs in a worker; WAV reports progress into a progress bar."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QFileDialog, QLabel, QProgressBar, QPushButton, QVBoxLayout,
                               QWidget)

from studio.app import services
from studio.app.panel import Panel
from studio.app.workers import run_in_thread


class ExportPanel(Panel):
    TITLE = "Export"
    FEATURES = ("midi", "wav", "stems")

    def build(self, body: QWidget) -> None:
        self.midi_button = QPushButton("Export MIDI…", body)
        self.midi_button.clicked.connect(lambda: self._ask("mid"))
        self.wav_button = QPushButton("Export WAV…", body)
        self.wav_button.clicked.connect(lambda: self._ask("wav"))
        self.stems_button = QPushButton("Export stems…", body)
        self.stems_button.setToolTip("One WAV per track into a folder")
        self.stems_button.clicked.connect(lambda: self._ask("stems"))
        self.progress = QProgressBar(body)
        self.progress.setRange(0, 100)
        self.progress.hide()
        self.status = QLabel("", body)
        self.status.setWordWrap(True)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.midi_button, self.wav_button, self.stems_button, self.progress,
                  self.status):
            layout.addWidget(w)

    def refresh_models(self) -> None:
        for button, feature in ((self.midi_button, "midi"), (self.wav_button, "wav"),
                                (self.stems_button, "stems")):
            cap = services.capability(feature)
            button.setEnabled(cap.available)
            button.setToolTip("" if cap else cap.reason)

    def _ask(self, what: str) -> None:
        title = self.ctx.doc.song.title or "song"
        if what == "stems":
            path = QFileDialog.getExistingDirectory(self, "Export stems into")
        else:
            path, _ = QFileDialog.getSaveFileName(self, f"Export {what.upper()}",
                                                  f"{title}.{what}", f"*.{what}")
        if path:
            self.export(what, path)

    def export(self, what: str, path: str) -> None:
        """Export the song as it sounds (mute/solo applied) to `path`."""
        doc = self.ctx.doc
        song = doc.snapshot()
        song.tracks = [song.tracks[i] for i in doc.audible_tracks()]
        soundfont = self.ctx.settings.soundfont or None
        self._set_busy(True, f"Exporting {Path(path).name}…")
        if what == "mid":
            run_in_thread(services.write_midi, song, path, on_done=lambda _: self._done(path),
                          on_error=self._failed)
        elif what == "wav":
            self.progress.setValue(0)
            self.progress.show()
            run_in_thread(services.write_wav, song, path, soundfont=soundfont,
                          on_done=lambda _: self._done(path), on_error=self._failed,
                          on_progress=lambda f: self.progress.setValue(int(100 * f)))
        else:
            self.progress.setValue(0)
            self.progress.show()
            run_in_thread(services.write_stems, song, path, soundfont=soundfont,
                          on_done=lambda _: self._done(path), on_error=self._failed,
                          on_progress=lambda f: self.progress.setValue(int(100 * f)))

    def _set_busy(self, busy: bool, text: str = "") -> None:
        for b in (self.midi_button, self.wav_button, self.stems_button):
            b.setEnabled(not busy)
        self.status.setText(text)

    def _done(self, path: str) -> None:
        self.progress.hide()
        self._set_busy(False, f"Exported {path}")
        self.refresh_models()
        self.ctx.say(f"Exported {path}")

    def _failed(self, exc: BaseException) -> None:
        self.progress.hide()
        self._set_busy(False)
        self.refresh_models()
        self.failed("Export", exc)
