"""The Accompany dock. Offline runs go through `services.accompany_with_chords` in a worker;
the result becomes new tracks in one undo step, its chords names above the roll. Live mode drives the realtime engine (see live.py)."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QLabel,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)

from studio.app import services
from studio.app.accompany import melody_excerpt, new_tracks
from studio.app.accompany.live import LiveController
from engine.music import PITCH_NAMES, ROLE_ACCOMPANIMENT, ROLE_MELODY
from studio.app.commands import InsertTracks, SetTrackNotes
from studio.app.generate import bar_start_at_or_before
from studio.app.panel import Panel
from studio.app.transport.toolbar import position_text
from studio.app.workers import run_in_thread

log = logging.getLogger(__name__)

AUTO_KEY = "auto (estimated)"
KEY_NAMES = [f"{t} {mode}" for mode in ("major", "minor") for t in PITCH_NAMES]


class AccompanyPanel(Panel):
    TITLE = "Accompany"
    FEATURES = ("accompany",)

    def build(self, body: QWidget) -> None:
        form = QFormLayout()
        self.model = QComboBox(body)
        self.model.setToolTip("Accompanist model (its card names the style and roles)")
        form.addRow("Model", self.model)
        self.style = QComboBox(body)
        self.style.addItems(["auto", "folk", "pop", "waltz", "ballad"])
        self.style.setToolTip("The band's style (band models; auto: by the meter)")
        form.addRow("Band style", self.style)
        self.temperature = QDoubleSpinBox(body)
        # the minimum stands for "the model's default" (its card's, chosen on validation), so
        # that 0 (the most likely accompaniment) stays a value one can pick
        self.temperature.setRange(-0.1, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(-0.1)
        self.temperature.setSpecialValueText("model default")
        self.temperature.setToolTip("0 = the model's most likely accompaniment; higher = more "
                                    "varied; lowest = the model's default")
        form.addRow("Temperature", self.temperature)
        self.seed = QSpinBox(body)
        self.seed.setRange(0, 999999)
        form.addRow("Seed", self.seed)
        self.key = QComboBox(body)
        self.key.addItems([AUTO_KEY] + KEY_NAMES)
        self.key.setToolTip("The melody's key. Auto: estimated, from the whole melody when "
                            "accompanying a track (about 6 tunes in 7 right), from the first bars "
                            "you play live (about 3 in 4); named, the accompaniment is in it "
                            "from the first bar")
        form.addRow("Key", self.key)
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
        self.live_button = QPushButton("Live: play along", body)
        self.live_button.setCheckable(True)
        self.live_button.setToolTip("Play (MIDI keyboard or the computer keys) and hear the "
                                    "model accompany you, after the transport's count-in; the "
                                    "next bar's plan shows dashed in the roll before it sounds")
        self.live_button.toggled.connect(self._live_toggled)
        layout.addWidget(self.live_button)
        self.live_status = QLabel("", body)
        self.live_status.setWordWrap(True)
        layout.addWidget(self.live_status)
        self.live = LiveController(self, describe=lambda t: position_text(self.ctx.doc, t))
        self.live.status.connect(self.live_status.setText)
        self.live.started.connect(self._live_started)
        self.live.failed.connect(self._live_failed)
        self.live.planned.connect(lambda notes: self.ctx.editor.canvas.set_overlay("planned",
                                                                                  notes))
        # One clock: the live position drives the transport's display and the playhead alike.
        self.live.position.connect(self.ctx.transport.positionChanged)
        self._busy = False
        self._accompaniments: dict[int, list] = {}  # id(melody track) -> the voices written
        self._melodies: dict[int, object] = {}
        self.ctx.doc.selectionChanged.connect(self._update_buttons)

    def refresh_models(self) -> None:
        current = self.model.currentText()
        self.model.clear()
        self.model.addItems(services.model_names("accompanist") + services.model_names("band"))
        if current:
            self.model.setCurrentText(current)
        self._update_buttons()

    def chosen_temperature(self) -> float | None:
        """The temperature asked for, or None for the model's default."""
        t = self.temperature.value()
        return None if t < 0 else t

    def chosen_key(self) -> str | None:
        """The key named ("D major"), or None: estimated from the melody."""
        text = self.key.currentText()
        return None if text == AUTO_KEY else text

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
        temperature = self.chosen_temperature()
        source = doc.track(doc.current_track)
        style = self.style.currentText()
        run_in_thread(services.accompany_with_chords, song,
                      model=self.model.currentText() or None, melody_track=melody,
                      temperature=temperature, seed=self.seed.value(),
                      style=None if style == "auto" else style, key=self.chosen_key(),
                      on_done=lambda res: self._done(res[0], n_before, keep, source,
                                                     [] if selection_only else res[1]),
                      on_error=self._error)

    def previous_accompaniment(self, melody) -> list:
        """The tracks an earlier Accompany of this melody track wrote, still in the song."""
        song = self.ctx.doc.song
        kept = [t for t in self._accompaniments.get(id(melody), ())
                if any(t is u for u in song.tracks)]
        if kept or id(melody) in self._accompaniments:
            return kept
        # Not accompanied in this session (a saved project): its accompaniment tracks, when
        # this is the song's only melody.
        melodies = [t for t in song.tracks if t.role == ROLE_MELODY]
        if melodies and not (len(melodies) == 1 and melodies[0] is melody):
            return []
        return [t for t in song.tracks if t.role == ROLE_ACCOMPANIMENT]

    def _done(self, accompanied, n_before: int, keep, melody, labels=()) -> None:
        """New voices replace the ones an earlier Accompany of this melody wrote (a voice's
        notes, in the bars accompanied), else become new tracks; one undo step either way."""
        # the chords above the roll: the band's, or the ones the choir's voices follow
        self.ctx.editor.canvas.set_labels(list(labels))
        self._busy = False
        self._update_buttons()
        tracks = new_tracks(accompanied, n_before, keep)
        doc = self.ctx.doc
        by_name = {t.name: t for t in self.previous_accompaniment(melody)}
        index = {id(t): i for i, t in enumerate(doc.song.tracks)}
        replaced, added, result = [], [], []
        for t in tracks:
            old = by_name.pop(t.name, None)
            if old is None:
                added.append(t)
                result.append(t)
                continue
            outside = [n for n in old.notes if keep is not None
                       and not keep[0] <= n.start < keep[1]]
            replaced.append((index[id(old)], outside + list(t.notes)))
            result.append(old)
        n = sum(len(t.notes) for t in tracks)
        doc.undo_stack.beginMacro(f"Accompany ({len(tracks)} voices)")
        for i, notes in replaced:
            doc.undo_stack.push(SetTrackNotes(doc, i, notes, "Accompany again"))
        if added:
            doc.undo_stack.push(InsertTracks(doc, len(doc.song.tracks), added, "Accompany"))
        doc.undo_stack.endMacro()
        self._accompaniments[id(melody)] = result
        self._melodies[id(melody)] = melody  # keeps the id valid while it is remembered
        verb = "Replaced" if replaced else "Added"
        self.status.setText(f"{verb} {len(tracks)} voices, {n} notes")
        self.ctx.say(f"Accompaniment {verb.lower()}: {', '.join(t.name for t in tracks)}")

    def _error(self, exc: BaseException) -> None:
        self._busy = False
        self._update_buttons()
        self.status.setText("")
        self.failed("Accompany", exc)

    # -- live ---------------------------------------------------------------------------------
    def _live_toggled(self, on: bool) -> None:
        if on:
            cap = services.capability("live")
            if not cap:
                self.live_button.setChecked(False)
                self.failed("Live", RuntimeError(cap.reason))
                return
            self.ctx.transport.stop()
            doc, settings, transport = self.ctx.doc, self.ctx.settings, self.ctx.transport
            song = doc.song
            at = bar_start_at_or_before(song, doc.cursor)
            meter = song.meter_at(at)
            fields = dict(bpm=song.tempo_at(at), meter=(meter.numerator, meter.denominator),
                          ticks_per_beat=song.ticks_per_beat,
                          count_in_bars=max(transport.count_in_bars, 1),
                          metronome=True, model=self._live_model(),
                          temperature=self.chosen_temperature(), seed=self.seed.value(),
                          key=self.chosen_key(), backend=settings.audio_backend,
                          period=settings.buffer_frames,
                          soundfont=settings.soundfont or None,
                          midi_in=settings.midi_input or None,
                          use_midi_in=bool(settings.midi_input), client_name="popmusicnet-live")
            self.live_button.setEnabled(False)
            self.live.start(fields, offset=at)
        else:
            song = self.live.stop()
            self.ctx.transport.live_sink = None
            if song is not None and song.n_notes:
                self._keep_take(song)

    def _live_model(self) -> str | None:
        """The model for live: a band with a style chosen plays as "band:STYLE"."""
        name = self.model.currentText() or None
        style = self.style.currentText()
        if style != "auto" and services.is_band(name):
            return f"band:{style}"
        return name

    def _live_started(self) -> None:
        self.live_button.setEnabled(True)
        self.ctx.transport.live_sink = self.live
        self.ctx.say("Live: play along (computer keys: Transport ▸ Computer keys)")

    def _live_failed(self, exc: BaseException) -> None:
        self.live_button.setEnabled(True)
        self.live_button.blockSignals(True)
        self.live_button.setChecked(False)
        self.live_button.blockSignals(False)
        self.failed("Live", exc)

    def _keep_take(self, take) -> None:
        """The performance becomes tracks at the bar where it started (one undo step)."""
        doc = self.ctx.doc
        for t in take.tracks:
            t.notes = [n.shifted(self.live.offset) for n in t.notes if n.start >= 0]
            t.name = f"Live {t.name}"
        tracks = [t for t in take.tracks if t.notes]
        if tracks:
            doc.undo_stack.push(InsertTracks(doc, len(doc.song.tracks), tracks, "Live take"))
            self.ctx.say(f"Live take kept: {', '.join(t.name for t in tracks)}")

    def shutdown(self) -> None:
        if self.live.running:
            self.live.stop()
