"""The Accompany dock. Offline runs go through `services.accompany` in a worker; the result
becomes new tracks in one undo step. Live mode drives the realtime engine (see live.py)."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)

from studio.app import services
from studio.app.accompany import melody_excerpt, new_tracks
from studio.app.commands import InsertTracks
from studio.app.panel import Panel
from studio.app.workers import run_in_thread

log = logging.getLogger(__name__)


class AccompanyPanel(Panel):
    TITLE = "Accompany"
    FEATURES = ("accompany",)

    def build(self, body: QWidget) -> None:
        form = QFormLayout()
        self.model = QComboBox(body)
        self.model.setToolTip("Accompanist model (its card names the style and roles)")
        form.addRow("Model", self.model)
        self.temperature = QDoubleSpinBox(body)
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(0.0)
        self.temperature.setSpecialValueText("model default")
        self.temperature.setToolTip("0 = the model's default; higher = more varied")
        form.addRow("Temperature", self.temperature)
        self.seed = QSpinBox(body)
        self.seed.setRange(0, 999999)
        form.addRow("Seed", self.seed)
        self.run_track = QPushButton("Accompany track", body)
        self.run_track.setToolTip("Accompany the selected track (as the melody) into new tracks")
        self.run_track.clicked.connect(lambda: self.accompany(selection_only=False))
        self.run_selection = QPushButton("Accompany selection", body)
        self.run_selection.setToolTip("Accompany only the selected notes' bars")
        self.run_selection.clicked.connect(lambda: self.accompany(selection_only=True))
        self.status = QLabel("", body)
        self.status.setWordWrap(True)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.run_track)
        layout.addWidget(self.run_selection)
        layout.addWidget(self.status)
        self.live_box = QWidget(body)
        layout.addWidget(self.live_box)
        self._busy = False
        self.ctx.doc.selectionChanged.connect(self._update_buttons)

    def refresh_models(self) -> None:
        current = self.model.currentText()
        self.model.clear()
        self.model.addItems(services.model_names("accompanist"))
        if current:
            self.model.setCurrentText(current)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.run_selection.setEnabled(not self._busy and bool(self.ctx.doc.selection))
        self.run_track.setEnabled(not self._busy and self.ctx.doc.current_track >= 0)

    def accompany(self, *, selection_only: bool) -> None:
        doc = self.ctx.doc
        melody = doc.current_track
        if melody < 0 or not doc.track(melody).notes:
            self.ctx.say("Select a track with melody notes to accompany")
            return
        song = doc.snapshot()
        keep = None
        if selection_only:
            if not doc.selection:
                self.ctx.say("Select some notes first")
                return
            song, *keep = melody_excerpt(song, melody, doc.selection)
            keep, melody = tuple(keep), 0
        n_before = len(song.tracks)
        self._busy = True
        self._update_buttons()
        self.status.setText("Accompanying…")
        temperature = self.temperature.value() or None
        run_in_thread(services.accompany, song, model=self.model.currentText() or None,
                      melody_track=melody, temperature=temperature, seed=self.seed.value(),
                      on_done=lambda out: self._done(out, n_before, keep),
                      on_error=self._error)

    def _done(self, accompanied, n_before: int, keep) -> None:
        self._busy = False
        self._update_buttons()
        tracks = new_tracks(accompanied, n_before, keep)
        doc = self.ctx.doc
        doc.undo_stack.push(InsertTracks(doc, len(doc.song.tracks), tracks,
                                         f"Accompany ({len(tracks)} tracks)"))
        n = sum(len(t.notes) for t in tracks)
        self.status.setText(f"Added {len(tracks)} tracks, {n} notes")
        self.ctx.say(f"Accompaniment added: {', '.join(t.name for t in tracks)}")

    def _error(self, exc: BaseException) -> None:
        self._busy = False
        self._update_buttons()
        self.status.setText("")
        self.failed("Accompany", exc)
