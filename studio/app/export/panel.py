"""The Export dock: each export runs in a worker; WAV reports progress into a progress bar.

The file dialog starts in the last export folder with a name that is never the file the song
was opened from (one Enter must not overwrite the source), and WAV has the command line's
sample rates and bit depths."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QLabel, QProgressBar,
                               QPushButton, QVBoxLayout, QWidget)

from studio.app import services
from studio.app.panel import Panel
from studio.app.workers import run_in_thread

RATES = (22050, 44100, 48000, 96000)  # as `popmusicnet render --rate`
DEPTHS = {"16-bit": "16", "24-bit": "24", "32-bit float": "float"}  # as --bit-depth
TITLES = {"mid": "Export MIDI file", "wav": "Export WAV audio", "stems": "Export stems (one WAV "
          "per track) into a folder"}
FILTERS = {"mid": "MIDI files (*.mid)", "wav": "WAV audio (*.wav)"}


def proposed_path(folder: Path, base: str, ext: str, source: Path | None) -> Path:
    """`folder/base.ext`, unless that is the source file: then `base-export.ext` (and a number
    if that is the source too)."""
    path = folder / f"{base}.{ext}"
    n = 0
    while source is not None and _same(path, source):
        n += 1
        path = folder / f"{base}-export{'' if n == 1 else n}.{ext}"
    return path


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == Path(b).resolve()
    except OSError:
        return str(a) == str(b)


class ExportPanel(Panel):
    TITLE = "Export"
    FEATURES = ("midi", "wav", "stems")

    def build(self, body: QWidget) -> None:
        self.midi_button = QPushButton("Export MIDI…", body)
        self.midi_button.clicked.connect(lambda: self.ask("mid"))
        self.wav_button = QPushButton("Export WAV…", body)
        self.wav_button.clicked.connect(lambda: self.ask("wav"))
        self.stems_button = QPushButton("Export stems…", body)
        self.stems_button.setToolTip("One WAV per track into a folder")
        self.stems_button.clicked.connect(lambda: self.ask("stems"))
        form = QFormLayout()
        self.rate = QComboBox(body)
        self.rate.addItems([f"{r} Hz" for r in RATES])
        self.rate.setCurrentText("48000 Hz")
        self.rate.setToolTip("Sample rate of WAV and stems")
        form.addRow("Sample rate", self.rate)
        self.depth = QComboBox(body)
        self.depth.addItems(list(DEPTHS))
        self.depth.setToolTip("Sample format of WAV and stems")
        form.addRow("Bit depth", self.depth)
        self.progress = QProgressBar(body)
        self.progress.setRange(0, 100)
        self.progress.hide()
        self.status = QLabel("", body)
        self.status.setWordWrap(True)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.midi_button)
        layout.addLayout(form)
        for w in (self.wav_button, self.stems_button, self.progress, self.status):
            layout.addWidget(w)

    def refresh_models(self) -> None:
        for button, feature in ((self.midi_button, "midi"), (self.wav_button, "wav"),
                                (self.stems_button, "stems")):
            cap = services.capability(feature)
            button.setEnabled(cap.available)
            button.setToolTip("" if cap else cap.reason)

    @property
    def sample_rate(self) -> int:
        return int(self.rate.currentText().split()[0])

    @property
    def subtype(self) -> str:
        return DEPTHS[self.depth.currentText()]

    def ask(self, what: str) -> None:
        """Ask where, then export: "mid", "wav" or "stems"."""
        doc, settings = self.ctx.doc, self.ctx.settings
        source = doc.source_path
        folder = Path(settings.folder_for("export") or (source.parent if source else Path.home()))
        base = (source.stem if source else "") or doc.song.title or "song"
        dialog = QFileDialog(self, TITLES[what])
        dialog.setDirectory(str(folder))
        if what == "stems":
            dialog.setFileMode(QFileDialog.FileMode.Directory)
            dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        else:
            dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
            dialog.setNameFilter(FILTERS[what])
            dialog.setDefaultSuffix(what)
            dialog.selectFile(str(proposed_path(folder, base, what, source)))
        if not dialog.exec() or not dialog.selectedFiles():
            return
        path = dialog.selectedFiles()[0]
        settings.set_folder_for("export", str(Path(path).parent if what != "stems" else path))
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
            return
        self.progress.setValue(0)
        self.progress.show()
        write = services.write_wav if what == "wav" else services.write_stems
        run_in_thread(write, song, path, soundfont=soundfont, sample_rate=self.sample_rate,
                      subtype=self.subtype, on_done=lambda _: self._done(path),
                      on_error=self._failed,
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
