"""The Morph dock. The slider never waits: each move submits (alpha, sources) to a
`LatestValueWorker`, which decodes only the newest request; results arrive as queued signals
and are drawn as the "preview" overlay in the roll while the dock is shown (another tab in
front of it takes the preview out of the roll; coming back brings it again). Apply turns the
preview into a track."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel,
                               QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget)

from engine.music import Song, Track
from studio.app import services
from studio.app.commands import InsertTracks
from studio.app.generate import bar_start_at_or_before, placed, rescaled
from studio.app.morph import clip_song
from studio.app.panel import Panel
from studio.app.workers import LatestValueWorker, run_in_thread

CLIP = "Clip {}: {} notes"


@dataclass(frozen=True)
class MorphRequest:
    model: str | None
    a: object  # Song (a clip) or a style name
    b: object
    alpha: float
    seed: int
    temperature: float
    bpm: float
    at: int
    ticks_per_beat: int


def decode(req: MorphRequest):
    song = services.morpher(req.model).morph(req.a, req.b, req.alpha, seed=req.seed,
                                             temperature=req.temperature, bpm=req.bpm)
    return placed(rescaled(song.tracks[0].notes, song.ticks_per_beat, req.ticks_per_beat), req.at)


class MorphPanel(Panel):
    TITLE = "Morph"
    FEATURES = ("morph",)

    def build(self, body: QWidget) -> None:
        self.clips: dict[str, Song | None] = {"A": None, "B": None}
        form = QFormLayout()
        self.model = QComboBox(body)
        form.addRow("Model", self.model)
        self.source: dict[str, QComboBox] = {}
        for side in ("A", "B"):
            box = QComboBox(body)
            box.setToolTip("A style of the model, or a clip captured from the selection")
            grab = QPushButton("From selection", body)
            grab.setToolTip(f"Capture the selected notes as source {side}")
            grab.clicked.connect(lambda _=False, s=side: self.capture(s))
            row = QHBoxLayout()
            row.addWidget(box, 1)
            row.addWidget(grab)
            form.addRow(f"Source {side}", row)
            self.source[side] = box
            box.currentIndexChanged.connect(self._resubmit)
        self.slider = QSlider(Qt.Orientation.Horizontal, body)
        self.slider.setRange(0, 100)
        self.slider.setValue(50)
        self.slider.setToolTip("A ← → B: decoded live into a preview at the cursor")
        self.slider.valueChanged.connect(self._resubmit)
        self.alpha_label = QLabel("0.50", body)
        row = QHBoxLayout()
        row.addWidget(QLabel("A", body))
        row.addWidget(self.slider, 1)
        row.addWidget(QLabel("B", body))
        row.addWidget(self.alpha_label)
        form.addRow("Blend", row)
        self.temperature = QDoubleSpinBox(body)
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(0.0)
        self.temperature.setToolTip("0 = the most likely notes; 1 = sampled")
        self.temperature.valueChanged.connect(self._resubmit)
        form.addRow("Temperature", self.temperature)
        self.seed = QSpinBox(body)
        self.seed.setRange(0, 999999)
        self.seed.valueChanged.connect(self._resubmit)
        form.addRow("Seed", self.seed)
        self.apply_button = QPushButton("Apply as new track", body)
        self.apply_button.clicked.connect(self.apply)
        self.apply_button.setEnabled(False)
        self.status = QLabel("Pick two sources, then drag the slider", body)
        self.status.setWordWrap(True)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.apply_button)
        layout.addWidget(self.status)
        self.preview: list = []
        self.latest: MorphRequest | None = None
        self.worker = LatestValueWorker(decode, self)
        self.worker.done.connect(self._decoded)
        self.worker.failed.connect(lambda req, exc: self.failed("Morph", exc))
        self.model.currentTextChanged.connect(self._load_styles)
        self.visibilityChanged.connect(self._show_preview)

    def refresh_models(self) -> None:
        self.model.clear()
        self.model.addItems(services.model_names("morph"))

    def _load_styles(self, name: str) -> None:
        if name:
            run_in_thread(services.morpher, name, on_done=self._styles_loaded,
                          on_error=lambda exc: self.failed("Loading the morph model", exc))

    def _styles_loaded(self, morpher) -> None:
        for side, box in self.source.items():
            box.blockSignals(True)
            box.clear()
            if self.clips[side] is not None:
                box.addItem(CLIP.format(side, self.clips[side].n_notes), "clip")
            for style in morpher.styles:
                box.addItem(style, style)
            box.blockSignals(False)
        if self.source["B"].count() > 1:
            self.source["B"].setCurrentIndex(1)
        self._resubmit()

    def capture(self, side: str) -> None:
        doc = self.ctx.doc
        if not doc.selection:
            self.ctx.say("Select some notes to use as a morph source")
            return
        self.clips[side] = clip_song(doc.song, doc.selection)
        box = self.source[side]
        label = CLIP.format(side, self.clips[side].n_notes)
        if box.count() and box.itemData(0) == "clip":
            box.setItemText(0, label)
        else:
            box.insertItem(0, label, "clip")
        box.setCurrentIndex(0)
        self._resubmit()

    def _source(self, side: str):
        box = self.source[side]
        data = box.currentData()
        return self.clips[side] if data == "clip" else data

    def _resubmit(self, *_: object) -> None:
        alpha = self.slider.value() / 100
        self.alpha_label.setText(f"{alpha:.2f}")
        a, b = self._source("A"), self._source("B")
        if a is None or b is None or not self.model.currentText():
            return
        doc = self.ctx.doc
        at = bar_start_at_or_before(doc.song, doc.cursor)
        self.latest = MorphRequest(self.model.currentText(), a, b, alpha, self.seed.value(),
                                   self.temperature.value(), doc.song.tempo_at(at), at,
                                   doc.song.ticks_per_beat)
        self.status.setText(f"Decoding α = {alpha:.2f}…")
        self.worker.submit(self.latest)

    def _decoded(self, req: MorphRequest, notes) -> None:
        if req != self.latest:
            return  # an older request finished after a newer one was made
        self.preview = list(notes)
        self._show_preview(self.isVisible())
        self.apply_button.setEnabled(bool(self.preview))
        self.status.setText(f"Preview: α = {req.alpha:.2f}, {len(notes)} notes (dashed, in the "
                            "roll)")

    def _show_preview(self, shown: bool) -> None:
        """The dashed preview is in the roll only while this dock is shown."""
        self.ctx.editor.canvas.set_overlay("preview", self.preview if shown else [])

    def apply(self) -> None:
        if not self.preview or self.latest is None:
            return
        doc = self.ctx.doc
        name = f"Morph {self.latest.alpha:.2f}"
        track = Track(name, program=0, role="other", notes=list(self.preview))
        doc.undo_stack.push(InsertTracks(doc, len(doc.song.tracks), [track], "Apply morph"))
        self.ctx.editor.canvas.set_overlay("preview", [])
        self.preview = []
        self.apply_button.setEnabled(False)
        self.status.setText(f"Added track {name}")

    def shutdown(self) -> None:
        self.worker.stop()
