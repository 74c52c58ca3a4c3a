"""The transport's logic: player, position polling, recording, note inputs. No widgets here.

The player (engine.realtime.SongPlayer) is opened off the GUI thread at start-up; until then,
or if it cannot be opened, the transport says so and stays disabled. The GUI pulls the play
position from the player on a timer (the position comes from the audio clock), as Carla's
`idleFast()` does; nothing calls into the GUI from the audio side.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from engine.music import Note
from studio.app import services
from studio.app.commands import EditNotes
from studio.app.document import SongDocument
from studio.app.generate import bar_start_at_or_before
from studio.app.transport.playback import Playback, build_playback
from studio.app.workers import run_in_thread

log = logging.getLogger(__name__)

POLL_MS = 16


class TransportController(QObject):
    positionChanged = Signal(object)  # editor tick (float) or None when stopped
    stateChanged = Signal()
    deviceChanged = Signal(str)  # a one-line description for the status bar
    heldChanged = Signal(object)  # set of pitches held on the inputs
    countInChanged = Signal(object)  # beats left before the start (int), None when not counting
    takeChanged = Signal(object)  # the notes recorded so far (list[Note]); [] when not recording
    message = Signal(str)

    def __init__(self, doc: SongDocument, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.player: Any = None
        self.player_error = "audio not opened yet"
        self.loop_enabled = False
        self.metronome = False
        self.count_in_bars = 0
        self.recording = False
        self.live_sink: Any = None  # the live engine while Live is on: notes go to it instead
        self._playback: Playback | None = None
        self._start = 0  # the editor tick playback starts from (after any count-in)
        self._counting = False
        self._held: dict[int, tuple[float, int]] = {}  # pitch -> (editor tick, velocity)
        self._recorded: list[Note] = []
        self._programs: dict[int, tuple[int, bool]] = {}
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        doc.songReplaced.connect(self._song_replaced)

    def _song_replaced(self) -> None:
        """Another song was opened: what plays is a snapshot of the old one, so stop."""
        if self.is_playing:
            self.recording = False  # the take belonged to the song that is gone
            self._recorded = []
            self.stop()

    # -- the player ---------------------------------------------------------------------------
    def open_player(self, backend: str = "auto", soundfont: str | None = None,
                    period: int = 128) -> None:
        """Open the audio player in a worker; `deviceChanged` reports the outcome."""
        cap = services.capability("player")
        if not cap:
            self.player_error = cap.reason
            self.deviceChanged.emit(f"No playback: {cap.reason}")
            return
        self.close_player()
        self.player_error = "opening audio..."
        run_in_thread(services.open_player, backend, soundfont, period,
                      on_done=self._player_opened, on_error=self._player_failed)

    def _player_opened(self, player: Any) -> None:
        self.player = player
        self.player_error = ""
        self._programs.clear()
        name = getattr(player, "backend_name", "?")
        if name == "null":
            why = getattr(getattr(player, "synth", None), "reason", "")
            tried = why.split("(tried ", 1)[1].split(")")[0] if "(tried " in why else ""
            self.deviceChanged.emit(f"No audio device (tried {tried}): playback runs silently"
                                    if tried else "Audio off (null backend): playback runs "
                                    "silently")
        else:
            self.deviceChanged.emit(f"Audio: {name}")
        self.stateChanged.emit()

    def _player_failed(self, exc: BaseException) -> None:
        self.player = None
        self.player_error = str(exc)
        self.deviceChanged.emit(f"No audio: {exc}")
        self.stateChanged.emit()

    def close_player(self) -> None:
        if self.player is not None:
            try:
                self.player.close()
            except Exception:  # closing a dead device must not stop the app from quitting
                log.warning("closing the player failed", exc_info=True)
            self.player = None

    @property
    def can_play(self) -> bool:
        return self.player is not None

    @property
    def is_playing(self) -> bool:
        return self.player is not None and self._playback is not None

    # -- transport ----------------------------------------------------------------------------
    def play(self) -> None:
        if self.player is None:
            self.message.emit(f"Cannot play: {self.player_error}")
            return
        loop = self.doc.loop if self.loop_enabled else None
        start = self.doc.cursor
        if loop is not None and not loop[0] <= start < loop[1]:
            start = loop[0]
        self._playback = build_playback(
            self.doc.song, self.doc.audible_tracks(), start_tick=start, loop=loop,
            metronome=self.metronome, count_in_bars=self.count_in_bars,
            open_end=self.recording)
        pb = self._playback
        # With a count-in the player starts on the bar line before the cursor, a bar early.
        self._start = start if pb.loop is not None or not self.count_in_bars else \
            bar_start_at_or_before(self.doc.song, start)
        self._counting = False
        self.player.play(pb.song, start_tick=pb.start_tick, loop=pb.loop)
        self._timer.start()
        self.stateChanged.emit()
        self._poll()

    def stop(self) -> None:
        if self.player is not None and self._playback is not None:
            self.player.stop()
        self._timer.stop()
        self._playback = None
        if self._counting:
            self._counting = False
            self.countInChanged.emit(None)
        if self.recording:
            self._finish_recording()
        self.takeChanged.emit([])
        self.positionChanged.emit(None)
        self.stateChanged.emit()

    def toggle_play(self) -> None:
        self.stop() if self.is_playing else self.play()

    def toggle_record(self) -> None:
        if self.recording:
            self.stop()
            return
        if self.player is None:
            self.message.emit(f"Cannot record: {self.player_error}")
            return
        if self.doc.current_track < 0:
            self.message.emit("Add a track to record into")
            return
        self.recording = True
        self._recorded = []
        self.play()

    def position(self) -> float | None:
        if self.player is None or self._playback is None:
            return None
        return self.player.position_tick + self._playback.offset

    def _poll(self) -> None:
        if self.player is None or self._playback is None:
            return
        if not self.player.is_playing:
            self.stop()
            return
        pos = self.position()
        if pos is None:
            return
        if pos < self._start:  # the count-in: the playhead waits, the position counts down
            meter = self.doc.song.meter_at(self._start)
            beat = self.doc.song.ticks_per_beat * 4 // meter.denominator
            self._counting = True
            self.countInChanged.emit(max(1, -int(-(self._start - pos) // beat)))
            return
        if self._counting:
            self._counting = False
            self.countInChanged.emit(None)
        self.positionChanged.emit(pos)
        if self.recording:
            self.takeChanged.emit(self.take_so_far(pos))

    @property
    def counting_in(self) -> bool:
        return self._counting

    def take_so_far(self, now: float) -> list[Note]:
        """What recording has caught up to `now`: finished notes, and held ones up to now."""
        held = [Note(max(0, int(s)), max(int(now), int(s) + 1), p, max(1, min(v, 127)))
                for p, (s, v) in self._held.items() if s >= 0]
        return self._recorded + held

    # -- notes from the inputs ----------------------------------------------------------------
    def note_on(self, pitch: int, velocity: int = 100) -> None:
        if self.live_sink is not None:
            self.live_sink.note_on(pitch, velocity)
            self.heldChanged.emit(set(self._held) | {pitch})
            return
        if self.player is not None:
            channel = self._audition_channel()
            self.player.note_on(pitch, velocity, channel=channel)
        pos = self.position()
        self._held[pitch] = (pos if pos is not None else -1.0, velocity)
        self.heldChanged.emit(set(self._held))

    def note_off(self, pitch: int) -> None:
        if self.live_sink is not None:
            self.live_sink.note_off(pitch)
            self.heldChanged.emit(set(self._held) - {pitch})
            return
        if self.player is not None:
            self.player.note_off(pitch, channel=self._audition_channel())
        start, velocity = self._held.pop(pitch, (-1.0, 0))
        end = self.position()
        if self.recording and end is not None and start >= 0:
            s = max(0, int(round(start)))
            e = max(int(round(end)), s + 1)
            self._recorded.append(Note(s, e, pitch, max(1, min(velocity, 127))))
        self.heldChanged.emit(set(self._held))

    def _audition_channel(self) -> int:
        """Sound inputs with the current track's instrument (channel 0, or 9 for drums)."""
        cur = self.doc.current_track
        program, drum = (self.doc.track(cur).program, self.doc.track(cur).is_drum) \
            if cur >= 0 else (0, False)
        channel = 9 if drum else 0
        if self._programs.get(channel) != (program, drum) and self.player is not None:
            self.player.set_program(channel, program, is_drum=drum) \
                if hasattr(self.player, "set_program") else None
            self._programs[channel] = (program, drum)
        return channel

    def _finish_recording(self) -> None:
        self.recording = False
        for pitch in list(self._held):
            self.note_off(pitch)
        notes, self._recorded = self._recorded, []
        if notes and self.doc.current_track >= 0:
            self.doc.undo_stack.push(EditNotes(self.doc, self.doc.current_track, [], notes,
                                               f"Record {len(notes)} notes"))
            self.message.emit(f"Recorded {len(notes)} notes")

    def shutdown(self) -> None:
        self._timer.stop()
        if self.player is not None and self._playback is not None:
            self.player.stop()
        self.close_player()


