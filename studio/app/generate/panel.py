"""The Generate / Continue dock: one button each, computed in a worker; the result becomes a new
track below the one it was made from (never written into the melody), one undo step, and the
view scrolls to it."""

from __future__ import annotations

import inspect

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)

from engine.music import ROLE_OTHER, Track
from studio.app import services
from studio.app.commands import InsertTracks
from studio.app.generate import bar_start_at_or_before, context_before, placed, rescaled
from studio.app.panel import Panel
from studio.app.transport.toolbar import position_text
from studio.app.workers import run_in_thread


def generate_bars(model: str | None, n_bars: int, seed: int, temperature: float,
                  style: str | None, bpm: float, program: int, ticks_per_beat: int,
                  meter: tuple[int, int] | None = None):
    gen = services.bar_generator(model)
    options = dict(seed=seed, temperature=temperature, style=style, bpm=bpm, program=program)
    if meter is not None and accepts(gen.generate, "meter"):
        options["meter"] = meter  # the song's meter, where the model can write in it
    song = gen.generate(n_bars, **options)
    return rescaled(song.tracks[0].notes, song.ticks_per_beat, ticks_per_beat)


def accepts(function, name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def continue_track(model: str | None, context, n_bars: int, seed: int,
                   temperature: float | None):
    out = services.continuer(model).continue_song(context, n_bars, seed=seed,
                                                  temperature=temperature)
    return out.tracks[-1].notes


class GeneratePanel(Panel):
    TITLE = "Generate"
    FEATURES = ("generate", "continue")

    def build(self, body: QWidget) -> None:
        form = QFormLayout()
        self.gan_model = QComboBox(body)
        form.addRow("GAN model", self.gan_model)
        self.style = QComboBox(body)
        self.style.setToolTip("Style, for a style-conditioned GAN")
        form.addRow("Style", self.style)
        self.cont_model = QComboBox(body)
        form.addRow("Continuation", self.cont_model)
        self.bars = QSpinBox(body)
        self.bars.setRange(1, 64)
        self.bars.setValue(4)
        form.addRow("Bars", self.bars)
        self.temperature = QDoubleSpinBox(body)
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(1.0)
        form.addRow("Temperature", self.temperature)
        self.cont_sample = QCheckBox("sample at the temperature", body)
        self.cont_sample.setToolTip("Continue samples at the temperature above; unchecked, it "
                                    "writes the model's own decoding (chosen on held-out "
                                    "music, in its model card)")
        form.addRow("Continue", self.cont_sample)
        self.seed = QSpinBox(body)
        self.seed.setRange(0, 999999)
        form.addRow("Seed", self.seed)
        self.generate_button = QPushButton("Generate bars at cursor", body)
        self.generate_button.setToolTip("GAN bars into a new track, from the cursor's bar")
        self.generate_button.clicked.connect(self.generate)
        self.continue_button = QPushButton("Continue at cursor", body)
        self.continue_button.setToolTip("LSTM continuation of the selected track's notes before "
                                        "the cursor, after its last bar, into a new track")
        self.continue_button.clicked.connect(self.continue_)
        self.status = QLabel("", body)
        self.status.setWordWrap(True)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        row = QHBoxLayout()
        row.addWidget(self.generate_button)
        row.addWidget(self.continue_button)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self.gan_model.currentTextChanged.connect(self._load_styles)

    def refresh_models(self) -> None:
        for box, kind, button in ((self.gan_model, "gan", self.generate_button),
                                  (self.cont_model, "continuation", self.continue_button)):
            names = services.model_names(kind)
            box.clear()
            box.addItems(names)
            button.setEnabled(bool(names))
            box.setEnabled(bool(names))

    def _load_styles(self, name: str) -> None:
        self.style.clear()
        if name:
            run_in_thread(services.bar_generator, name, on_done=self._styles_loaded,
                          on_error=lambda exc: self.failed("Loading the GAN", exc))

    def _styles_loaded(self, gen) -> None:
        self.style.clear()
        if gen.conditional:
            self.style.addItems(["(any)", *gen.styles])
        self.style.setEnabled(bool(gen.conditional))

    def _target(self) -> int | None:
        doc = self.ctx.doc
        if doc.current_track < 0:
            self.ctx.say("Add or select a track first")
            return None
        return doc.current_track

    def generate(self) -> None:
        track = self._target()
        if track is None:
            return
        doc = self.ctx.doc
        at = bar_start_at_or_before(doc.song, doc.cursor)
        style = self.style.currentText() if self.style.isEnabled() else None
        meter = doc.song.meter_at(at)
        self._busy("Generating…")
        run_in_thread(generate_bars, self.gan_model.currentText() or None, self.bars.value(),
                      self.seed.value(), self.temperature.value(),
                      None if style in (None, "", "(any)") else style,
                      doc.song.tempo_at(at), doc.track(track).program, doc.song.ticks_per_beat,
                      (meter.numerator, meter.denominator),
                      on_done=lambda notes: self._insert(track, placed(notes, at), "Generate"),
                      on_error=lambda exc: self._failed("Generate", exc))

    def continue_(self) -> None:
        track = self._target()
        if track is None:
            return
        doc = self.ctx.doc
        context = context_before(doc.snapshot(), track, max(doc.cursor, 1))
        if not context.tracks[0].notes:
            self.ctx.say("Put the cursor after some notes of the selected track to continue them")
            return
        self._busy("Continuing…")
        run_in_thread(continue_track, self.cont_model.currentText() or None, context,
                      self.bars.value(), self.seed.value(), self.continue_temperature(),
                      on_done=lambda notes: self._insert(track, notes, "Continue"),
                      on_error=lambda exc: self._failed("Continue", exc))

    def continue_temperature(self) -> float | None:
        """None = the continuation model's own decoding (its card's)."""
        return self.temperature.value() if self.cont_sample.isChecked() else None

    def _busy(self, text: str) -> None:
        self.status.setText(text)
        self.generate_button.setEnabled(False)
        self.continue_button.setEnabled(False)

    def _insert(self, track: int, notes, what: str) -> None:
        self.refresh_models()
        doc = self.ctx.doc
        if track >= len(doc.song.tracks):
            return
        source = doc.track(track)
        name = {"Generate": "Generated", "Continue": "Continuation"}.get(what, what)
        new = Track(f"{name} ({source.name})" if source.name else name, source.program,
                    source.is_drum, ROLE_OTHER, list(notes))
        doc.undo_stack.push(InsertTracks(doc, track + 1, [new], f"{what} {len(notes)} notes"))
        doc.set_current_track(track + 1)
        self.ctx.editor.reveal(notes)
        where = f"from {position_text(doc, min(n.start for n in notes))}" if notes else ""
        self.status.setText(f"{what}: {len(notes)} notes {where}")
        self.ctx.say(f"{what}: {len(notes)} notes in the new track {new.name}")

    def _failed(self, what: str, exc: BaseException) -> None:
        self.refresh_models()
        self.status.setText("")
        self.failed(what, exc)
