"""Live accompaniment: the realtime engine (engine.realtime.LiveEngine) plays along while you
play; the roll shows its count-in, the playhead, and the next bar's planned accompaniment
(notes already scheduled but not yet sounding) before it sounds.

The engine runs its own threads; this controller only starts it in a worker (opening audio and
loading the model may take a while), feeds it the computer keyboard's notes (`feed` never
blocks), and polls its immutable status snapshot and scheduled notes on a GUI timer.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from engine.music import Song
from studio.app import services
from studio.app.workers import run_in_thread

log = logging.getLogger(__name__)

POLL_MS = 40


class LiveController(QObject):
    started = Signal()
    stopped = Signal(object)  # the recorded performance (Song) or None
    status = Signal(str)
    failed = Signal(object)
    planned = Signal(object)  # list[Note] in song ticks (offset applied)
    position = Signal(object)  # song tick or None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine: Any = None
        self.offset = 0  # song tick of the live session's bar 0
        self._starting = False
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)

    @property
    def running(self) -> bool:
        return self.engine is not None

    def start(self, config_fields: dict, offset: int) -> None:
        if self.engine is not None or self._starting:
            return
        realtime = services._import("engine.realtime")
        config = realtime.LiveConfig(**config_fields)
        engine = realtime.LiveEngine(config)
        self.offset = offset
        self._starting = True
        self.status.emit("Starting live engine (audio, model)…")
        run_in_thread(engine.start, on_done=lambda _: self._started(engine),
                      on_error=self._start_failed)

    def _started(self, engine: Any) -> None:
        self._starting = False
        self.engine = engine
        self._timer.start()
        self.started.emit()

    def _start_failed(self, exc: BaseException) -> None:
        self._starting = False
        self.failed.emit(exc)

    def stop(self) -> Song | None:
        """Stop and return the performance (melody as played, accompaniment as scheduled)."""
        engine, self.engine = self.engine, None
        self._timer.stop()
        self.planned.emit([])
        self.position.emit(None)
        if engine is None:
            return None
        song = engine.recorded_song()
        engine.stop("stopped in the studio")
        self.stopped.emit(song)
        return song

    def note_on(self, pitch: int, velocity: int) -> None:
        self._feed(True, pitch, velocity)

    def note_off(self, pitch: int) -> None:
        self._feed(False, pitch, 0)

    def _feed(self, on: bool, pitch: int, velocity: int) -> None:
        engine = self.engine
        if engine is None:
            return
        from engine.realtime.midi import NOTE_OFF, NOTE_ON, MidiEvent

        frame = engine.synth.frames()
        engine.feed(MidiEvent(frame, NOTE_ON if on else NOTE_OFF, 0, pitch, velocity))
        if engine.thru != "python":  # the engine sounds only its MIDI port's notes itself
            engine.synth.noteon(0, pitch, velocity) if on else engine.synth.noteoff(0, pitch)

    def send(self, command: str, value: object) -> None:
        if self.engine is not None:
            self.engine.send(command, value)

    def _poll(self) -> None:
        engine = self.engine
        if engine is None:
            return
        st = engine.status()
        if not engine.running:
            self.status.emit(f"Live engine stopped: {engine.stopped_reason or st.message}")
            self.stop()
            return
        now = engine.tempo.tick_at(engine.synth.frames()) if engine.tempo is not None else 0.0
        song = engine.recorded_song()
        upcoming = [n.shifted(self.offset) for t in song.tracks[1:] for n in t.notes
                    if n.start >= now and n.start + self.offset >= 0]
        self.planned.emit(upcoming)
        self.position.emit(now + self.offset if now + self.offset >= 0 else None)
        where = "count-in" if st.bar < 0 else f"bar {st.bar + 1}, beat {int(st.beat) + 1}"
        self.status.emit(f"Live: {where} · accompaniment {st.accompaniment} · late {st.late} · "
                         f"skipped {st.skipped} · {st.provider or 'cpu'}"
                         + (f" · {st.errors[-1]}" if st.errors else ""))


def capability() -> services.Capability:
    return services.capability("live")
