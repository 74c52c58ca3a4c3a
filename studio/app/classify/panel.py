"""The Classify dock: MIDI classifier on the whole song or the selected track, audio classifier on
a WAV file."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QPushButton, QVBoxLayout, QWidget)

from studio.app import services
from studio.app.panel import Panel
from studio.app.widgets.charts import BarChart
from studio.app.workers import run_in_thread


def classify_track(model: str | None, song, track: int):
    clf = services.classifier(model)
    return clf.name, clf.classify_track(song, track), clf.unsure_below


def classify_song(model: str | None, song):
    clf = services.classifier(model)
    return clf.name, clf.classify_song(song), clf.unsure_below


def classify_wav(model: str | None, path: str):
    clf = services.classifier(model, audio=True)
    return clf.name, clf.classify_wav(path), clf.unsure_below


class ClassifyPanel(Panel):
    TITLE = "Classify"
    FEATURES = ("classify", "classify_audio")

    def build(self, body: QWidget) -> None:
        form = QFormLayout()
        self.midi_model = QComboBox(body)
        form.addRow("MIDI model", self.midi_model)
        self.audio_model = QComboBox(body)
        form.addRow("Audio model", self.audio_model)
        self.song_button = QPushButton("Classify song", body)
        self.song_button.setToolTip("Every track together, as `popmusicnet classify FILE`")
        self.song_button.clicked.connect(self.classify_song)
        self.track_button = QPushButton("Classify selected track", body)
        self.track_button.clicked.connect(self.classify_track)
        self.wav_button = QPushButton("Classify WAV…", body)
        self.wav_button.setToolTip("Or drop a WAV file on the window")
        self.wav_button.clicked.connect(self._choose_wav)
        self.what = QLabel("", body)
        self.what.setWordWrap(True)
        self.chart = BarChart(body)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        row = QHBoxLayout()
        row.addWidget(self.song_button)
        row.addWidget(self.track_button)
        row.addWidget(self.wav_button)
        layout.addLayout(row)
        layout.addWidget(self.what)
        layout.addWidget(self.chart)
        self.ctx.events.wavDropped.connect(self.classify_wav)

    def refresh_models(self) -> None:
        for box, kind, button in ((self.midi_model, "classifier-midi", self.track_button),
                                  (self.audio_model, "classifier-audio", self.wav_button)):
            names = services.model_names(kind)
            box.clear()
            box.addItems(names)
            box.setEnabled(bool(names))
            button.setEnabled(bool(names))
        self.song_button.setEnabled(self.track_button.isEnabled())

    def classify_song(self) -> None:
        doc = self.ctx.doc
        if not any(t.notes for t in doc.song.tracks):
            self.ctx.say("The song has no notes to classify")
            return
        name = doc.song.title or "the song"
        self.what.setText(f"Classifying {name}…")
        run_in_thread(classify_song, self.midi_model.currentText() or None, doc.snapshot(),
                      on_done=lambda r: self._show(name, *r),
                      on_error=lambda exc: self.failed("Classify", exc))

    def classify_track(self) -> None:
        doc = self.ctx.doc
        if doc.current_track < 0:
            self.ctx.say("Select a track to classify")
            return
        name = doc.track(doc.current_track).name or f"track {doc.current_track + 1}"
        self.what.setText(f"Classifying {name}…")
        run_in_thread(classify_track, self.midi_model.currentText() or None, doc.snapshot(),
                      doc.current_track, on_done=lambda r: self._show(name, *r),
                      on_error=lambda exc: self.failed("Classify", exc))

    def _choose_wav(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Classify a recording", "",
                                              "Audio (*.wav *.flac *.ogg)")
        if path:
            self.classify_wav(path)

    def classify_wav(self, path: str) -> None:
        self.show()
        self.raise_()
        self.ensure_checked()
        if not self.audio_model.count():
            self.failed("Classify", RuntimeError("no audio classifier model is installed"))
            return
        self.what.setText(f"Classifying {Path(path).name}…")
        run_in_thread(classify_wav, self.audio_model.currentText() or None, path,
                      on_done=lambda r: self._show(Path(path).name, *r),
                      on_error=lambda exc: self.failed("Classify", exc))

    def _show(self, what: str, model: str, ranked, unsure_below: float | None = None) -> None:
        self.notice.hide()
        self.chart.set_rows(ranked)
        best = ranked[0] if ranked else ("?", 0.0)
        if unsure_below is not None and best[1] < unsure_below:
            self.what.setText(f"{what}: unsure (most likely {best[0]} at "
                              f"{100 * best[1]:.0f} %, below {100 * unsure_below:.0f} %), "
                              f"by {model}")
            return
        self.what.setText(f"{what}: most likely {best[0]} ({100 * best[1]:.0f} %), by {model}")
