"""Live accompaniment: the realtime engine (engine.realtime.LiveEngine) plays along while you
play; the roll shows its count-in, the playhead, and the next bar's planned accompaniment
(notes already scheduled but not yet sounding) before it sounds.

The engine runs its own threads; this controller only starts it in a worker (opening audio and
loading the model may take a while), hands it the computer keyboard's notes through its input
(`play_note` never blocks), and polls the immutable `LiveSnapshot` the engine builds on its own
thread (status, the notes so far, the planned next bar) on a GUI timer. It never touches the
synth, the engine's tempo map or its lists.
"""

from __future__ import annotations

import logging
import time
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

    def __init__(self, parent: QObject | None = None, describe=None) -> None:
        super().__init__(parent)
        self.engine: Any = None
        # song tick -> "bar.beat.sixteenth", the transport's own clock text
        self.describe = describe or (lambda tick: f"tick {int(tick)}")
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
        engine.stop("stopped in the studio")
        song = engine.recorded_song()  # the engine's last snapshot, built as it stopped
        self.stopped.emit(song)
        return song

    def note_on(self, pitch: int, velocity: int) -> None:
        self._feed(True, pitch, velocity)

    def note_off(self, pitch: int) -> None:
        self._feed(False, pitch, 0)

    def _feed(self, on: bool, pitch: int, velocity: int) -> None:
        engine = self.engine
        if engine is not None:
            engine.play_note(on, pitch, velocity)

    def send(self, command: Any) -> None:
        """Pass a command (engine.realtime.commands) to the running engine."""
        if self.engine is not None:
            self.engine.send(command)

    def _poll(self) -> None:
        engine = self.engine
        if engine is None:
            return
        snap = engine.snapshot()
        st = snap.status
        if not engine.running:
            self.status.emit(f"Live engine stopped: {engine.stopped_reason or st.message}")
            self.stop()
            return
        now = snap.tick_at(time.monotonic())
        self.planned.emit([n.shifted(self.offset) for n in snap.planned
                           if n.start >= now and n.start + self.offset >= 0])
        song_tick = now + self.offset
        self.position.emit(song_tick if now >= 0 else None)
        where = (f"count-in, bar {st.bar}" if now < 0 else self.describe(song_tick))
        self.status.emit(f"Live: {where} · accompaniment {st.accompaniment} · late {st.late} · "
                         f"skipped {st.skipped} · {st.provider or 'cpu'}"
                         + (f" · {st.errors[-1]}" if st.errors else ""))


def capability() -> services.Capability:
    return services.capability("live")
