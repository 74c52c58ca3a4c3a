"""SongPlayer: the studio's transport. Plays a Song through the realtime synth, no Qt inside.

A feeder thread hands notes to the synth's own sequencer a little ahead of time (`horizon`), stamped
with the sample frame they are due; FluidSynth dispatches them in its render loop, so a busy GUI
thread delays only the feeding (by far less than the horizon), never the notes. The play position is
read from the synth's sample clock, so the GUI cursor follows what is heard, not wall time. The GUI
polls `position_tick` / `is_playing` on a timer (no callbacks into the GUI thread).
"""

from __future__ import annotations

import bisect
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from engine.music import Song
from engine.synth.live import DRUM_CHANNEL, N_CHANNELS, SynthBackend, open_backend

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Ev:
    seconds: float  # from the start of the song
    on: bool
    channel: int
    pitch: int
    velocity: int


def assign_channels(song: Song) -> list[int]:
    """MIDI channel per track: drums on 9, the others in order skipping 9 (wrapping after 16)."""
    out, nxt = [], 0
    for t in song.tracks:
        if t.is_drum:
            out.append(DRUM_CHANNEL)
            continue
        if nxt == DRUM_CHANNEL:
            nxt += 1
        out.append(nxt % N_CHANNELS)
        nxt = (nxt + 1) % N_CHANNELS
    return out


class SongPlayer:
    """Play a Song from a tick, optionally looping a region, through a synth backend.

    `backend`: "auto" (JACK, else the platform driver, else silent null), "jack", "null",
    a FluidSynth driver name, or a ready SynthBackend (shared with a LiveEngine, or a test's).
    """

    PREROLL_S = 0.03  # first notes are stamped this far ahead: they are never late
    HORIZON_S = 0.5  # how far ahead the feeder keeps the synth's queue filled
    TICK_S = 0.02

    def __init__(self, backend: str | SynthBackend = "auto", soundfont: str | Path | None = None,
                 *, sample_rate: int = 48000, period: int = 128) -> None:
        if isinstance(backend, SynthBackend):
            self.synth, self._owns_synth = backend, False
        else:
            self.synth = open_backend(backend, sample_rate=sample_rate, period=period,
                                      soundfont=soundfont, fallback_null=(backend == "auto"),
                                      client_name="popmusicnet-player")
            self._owns_synth = True
        self.soundfont = soundfont
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._song: Song | None = None
        self._origin_frame = 0
        self._start_s = 0.0
        self._loop_s: tuple[float, float] | None = None
        self._end_s = 0.0
        self._last_tick = 0.0
        self._playing = False
        self._sounding: set[tuple[int, int]] = set()

    @property
    def backend_name(self) -> str:
        return self.synth.name

    # -- transport ----------------------------------------------------------------------------
    def play(self, song: Song, start_tick: int = 0, loop: tuple[int, int] | None = None) -> None:
        """Start playing `song` (a snapshot is taken: later edits need another play())."""
        self.stop()
        song = song.copy()
        sr = self.synth.sample_rate
        channels = assign_channels(song)
        for track, ch in zip(song.tracks, channels):
            self.synth.set_program(ch, track.program, is_drum=track.is_drum)
            self.synth.cc(ch, 7, track.volume)
            self.synth.cc(ch, 10, track.pan)
        events: list[_Ev] = []
        for track, ch in zip(song.tracks, channels):
            for n in track.notes:
                events.append(_Ev(song.tick_to_seconds(n.start), True, ch, n.pitch, n.velocity))
                events.append(_Ev(song.tick_to_seconds(n.end), False, ch, n.pitch, 0))
        # Offs before ons at the same time, so a repeated note is re-struck, not cut.
        events.sort(key=lambda e: (e.seconds, e.on))
        start_s = song.tick_to_seconds(start_tick)
        loop_s = None
        if loop is not None:
            a, b = int(loop[0]), int(loop[1])
            if b <= a:
                raise ValueError(f"loop end must be after loop start, got {a}..{b}")
            loop_s = (song.tick_to_seconds(a), song.tick_to_seconds(b))
            if not loop_s[0] <= start_s < loop_s[1]:
                start_s = loop_s[0]
        with self._lock:
            self._song = song
            self._events = events
            self._times = [e.seconds for e in events]
            self._start_s = start_s
            self._loop_s = loop_s
            self._end_s = max(self._times, default=start_s)
            self._origin_frame = self.synth.frames() + int(self.PREROLL_S * sr)
            self._playing = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._feed, name="SongPlayer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop at once: drop what is queued and silence what sounds. The position stays."""
        t = self._thread
        if t is not None:
            self._stop.set()
            t.join(timeout=2.0)
            self._thread = None
        if self._playing:
            self._last_tick = self.position_tick
        self._playing = False
        self.synth.cancel_scheduled()
        for ch, pitch in list(self._sounding):
            self.synth.noteoff(ch, pitch)
        self._sounding.clear()
        self.synth.all_notes_off()

    @property
    def is_playing(self) -> bool:
        return self._playing

    def _elapsed_song_s(self, frame: int) -> float:
        """Song time (seconds) heard at `frame`, loops unrolled into song time."""
        t = self._start_s + (frame - self._origin_frame) / self.synth.sample_rate
        t = max(t, self._start_s)
        if self._loop_s is not None and t >= self._loop_s[1]:
            a, b = self._loop_s
            t = a + (t - b) % (b - a)
        return t

    @property
    def position_tick(self) -> float:
        """Where playback is, in ticks of the song, from the synth's sample clock."""
        if not self._playing or self._song is None:
            return self._last_tick
        return self._song.seconds_to_tick(self._elapsed_song_s(self.synth.frames()))

    # -- the feeder thread --------------------------------------------------------------------
    def _feed(self) -> None:
        sr = self.synth.sample_rate
        events, times = self._events, self._times
        start, loop = self._start_s, self._loop_s
        # Song-time segments to schedule: [seg_start, seg_end) placed at frame offset `base`.
        seg_start, base = start, self._origin_frame
        seg_end = loop[1] if loop else self._end_s + 1e-9
        i = bisect.bisect_left(times, seg_start)
        try:
            while not self._stop.is_set():
                horizon = self.synth.frames() + int(self.HORIZON_S * sr)
                while True:
                    if i < len(events) and times[i] < seg_end:
                        ev = events[i]
                        frame = base + int(round((ev.seconds - seg_start) * sr))
                        if frame > horizon:
                            break
                        self._schedule(ev, frame)
                        i += 1
                        continue
                    if loop is None:
                        break
                    # End of a loop pass: close sounding notes at the loop end, start the next pass.
                    end_frame = base + int(round((seg_end - seg_start) * sr))
                    if end_frame > horizon:
                        break
                    for ch, pitch in list(self._sounding):
                        self.synth.schedule_note_off(end_frame, ch, pitch)
                    self._sounding.clear()
                    base, seg_start = end_frame, loop[0]
                    i = bisect.bisect_left(times, seg_start)
                if loop is None and i >= len(events):
                    end_frame = base + int(round((self._end_s - seg_start) * sr))
                    if self.synth.frames() >= end_frame:
                        self._last_tick = self._song.seconds_to_tick(self._end_s)
                        self._playing = False
                        return
                self._stop.wait(self.TICK_S)
        except Exception:  # the feeder must never take the GUI down with it
            log.exception("SongPlayer feeder failed")
            self._playing = False

    def _schedule(self, ev: _Ev, frame: int) -> None:
        key = (ev.channel, ev.pitch)
        if ev.on:
            self.synth.schedule_note_on(frame, ev.channel, ev.pitch, ev.velocity)
            self._sounding.add(key)
        elif key in self._sounding:
            self.synth.schedule_note_off(frame, ev.channel, ev.pitch)
            self._sounding.discard(key)

    # -- live notes (on-screen keyboard) ------------------------------------------------------
    def note_on(self, pitch: int, velocity: int = 100, channel: int = 0) -> None:
        self.synth.noteon(channel, int(pitch), int(velocity))

    def note_off(self, pitch: int, velocity: int = 0, channel: int = 0) -> None:
        self.synth.noteoff(channel, int(pitch))

    def set_program(self, channel: int, program: int, is_drum: bool = False) -> None:
        self.synth.set_program(channel, program, is_drum=is_drum)

    def close(self) -> None:
        self.stop()
        if self._owns_synth:
            self.synth.close()

    def __enter__(self) -> SongPlayer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
