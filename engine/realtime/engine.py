"""The live engine: MIDI in -> melody at once (thru) -> accompaniment scheduled on the beat.

Threads (docs/ARCHITECTURE.md "Threads and processes"):
- Audio: FluidSynth's own C driver. No Python in it.
- Melody thru: with JACK, the keyboard's port is connected to FluidSynth's own MIDI input as well as
  to ours (JACK ports fan out), so a played note reaches the synth without waiting for Python (a
  Python callback next to a busy Python thread measured p50 10-70 ms). Without a JACK port to
  fan out (virtual input, offline tests) the MIDI thread calls synth.noteon (one C call).
- MIDI thread (rtmidi): raw bytes -> typed, timestamped MidiEvent -> bounded queue (put_nowait).
- Engine thread (this module): drains that queue into the melody (capture.py), plans each bar a
  lookahead before it sounds and lets the accompanist observe it after its bar line
  (planner.py, accompaniment.py), follows the ports (devices.py). Commands (commands.py) arrive
  through a bounded queue and take effect between bars; status, the notes so far and the planned
  next bar leave as one immutable `LiveSnapshot` (status.py) the engine builds on its own thread
  and the GUI polls. Models loaded while it plays come back from their loader thread through a
  queue.

Tests drive `step()` themselves with a virtual clock and an offline synth (no thread, no device).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.music import ROLE_ACCOMPANIMENT, ROLE_MELODY, MeterChange, Song, TempoChange, Track
from engine.realtime import commands as C
from engine.realtime.accompaniment import Accompaniment, load_accompanist
from engine.realtime.capture import Capture
from engine.realtime.devices import Devices
from engine.realtime.midi import CONTROL, NOTE_OFF, NOTE_ON, MidiEvent
from engine.realtime.planner import Planner
from engine.realtime.status import LiveSnapshot, LiveStatus, Stats, bar_and_beat, snapshot
from engine.synth.live import MELODY_CHANNEL, SynthBackend, open_backend

log = logging.getLogger(__name__)

__all__ = ["LiveConfig", "LiveEngine", "LiveSnapshot", "LiveStatus", "freeze_heap",
           "load_accompanist"]


@dataclass
class LiveConfig:
    """Everything a live session needs; defaults suit a keyboard player at 100 BPM in 4/4."""

    bpm: float = 100.0
    meter: tuple[int, int] = (4, 4)
    ticks_per_beat: int = 480
    lookahead_beats: float = 1.0
    count_in_bars: int = 1
    metronome: bool = True
    metronome_velocity: int = 90
    model: str | None = None  # accompanist name; None = the bundled default
    accompany: bool = True
    providers: str = "cpu"  # ONNX Runtime: "cpu", "cuda" or "auto" (reported in status)
    temperature: float | None = None
    key: str | None = None  # "D major", "A minor"...; None: the session estimates it
    seed: int | None = None
    backend: str = "auto"  # "auto" | "jack" | "null" | "offline" | a FluidSynth driver name
    sample_rate: int = 48000
    period: int = 128
    soundfont: str | Path | None = None
    reverb: bool = True
    melody_soundfont: str | Path | None = None  # per-part soundfonts: the melody's own
    accompaniment_soundfont: str | Path | None = None
    melody_program: int = 0
    programs: tuple[int, ...] | None = None  # accompaniment programs; None = the model's
    midi_in: str | int | None = None  # port index / name substring; None = virtual input
    use_midi_in: bool = True  # False: no port at all (tests feed events with feed())
    midi_api: str = "auto"
    midi_out: bool = False
    midi_out_melody: bool = False
    clock_out: bool = True
    thru: str = "auto"  # "auto" | "synth" (JACK fan-out) | "python" | "off"
    port_poll_s: float = 0.5
    step_s: float = 0.002
    # Python's GIL hand-over interval while the engine runs (None: leave it). The model makes
    # ~13 ONNX Runtime calls a bar, each releasing the GIL; with a busy GUI thread every
    # re-acquisition waits up to the interval (default 5 ms): measured p99 129 ms per bar at
    # 5 ms with a busy thread, so the engine asks for 1 ms (`popmusicnet bench live`).
    switch_interval_s: float | None = 0.001
    client_name: str = "popmusicnet"


def freeze_heap() -> None:
    """Move every object alive now (models, sessions, the GUI) out of the garbage collector's
    reach: a full collection then scans only what the performance allocates. Unfrozen, the
    collector's full passes over the loaded process showed up in the per-bar p99 (measured on
    the bench accompanist's bars: offline p99 2.4-3.3 ms unfrozen, 1.65-1.93 ms frozen)."""
    import gc

    gc.collect()
    gc.freeze()


class LiveEngine:
    """A live session. `start()` opens devices and the engine thread; `stop()` closes everything.

    Injection points (tests, the studio): `synth` (a SynthBackend shared with a SongPlayer, or an
    offline one), `clock` (a callable returning sample frames: a virtual clock), `accompanist` (any
    object with session()/name/provider/roles/programs), `midi_in`/`midi_out` (rtmidi-like objects,
    e.g. fake ports).
    """

    def __init__(self, config: LiveConfig | None = None, *, synth: SynthBackend | None = None,
                 clock: Callable[[], int] | None = None, accompanist=None, midi_in=None,
                 midi_out=None) -> None:
        self.config = cfg = config or LiveConfig()
        self.synth = synth
        self._owns_synth = synth is None
        self._clock = clock
        self._initial_model = accompanist
        self.commands: queue.Queue = queue.Queue(maxsize=256)
        self.stats = Stats()
        self.capture = Capture(self.stats)
        self.devices = Devices(cfg, self.stats, midi_in, midi_out)
        self.accompaniment = Accompaniment(cfg, synth, self.stats)
        self.planner = Planner(cfg, synth, clock, self.stats, self.capture, self.accompaniment)
        self._status = LiveStatus()
        self._snapshot = LiveSnapshot()
        self._thread: threading.Thread | None = None
        self._stop_flag = threading.Event()
        self.stopped_reason = ""
        self._old_switch: float | None = None
        self._last_status = 0.0
        self._started = False

    # -- public API ---------------------------------------------------------------------------
    def start(self, threaded: bool = True) -> None:
        cfg = self.config
        if self.synth is None:
            self.synth = open_backend(cfg.backend, sample_rate=cfg.sample_rate, period=cfg.period,
                                      soundfont=cfg.soundfont, client_name=cfg.client_name,
                                      midi_thru=cfg.thru in ("auto", "synth"), reverb=cfg.reverb)
        try:
            self._start_inner()
        except BaseException:
            self.devices.close(self.synth, self._owns_synth)
            raise
        self._started = True
        freeze_heap()
        if cfg.switch_interval_s:
            self._old_switch = sys.getswitchinterval()
            sys.setswitchinterval(cfg.switch_interval_s)
        self._publish()
        if threaded:
            self._thread = threading.Thread(target=self._run, name="LiveEngine", daemon=True)
            self._thread.start()

    def _start_inner(self) -> None:
        cfg, synth = self.config, self.synth
        if self._clock is None:
            self._clock = synth.frames
        self.accompaniment.synth = self.planner.synth = synth
        self.planner.clock = self._clock
        self.devices.open_monitor(synth)
        synth.set_program(MELODY_CHANNEL, cfg.melody_program, soundfont=cfg.melody_soundfont)
        model = self._initial_model
        self.accompaniment.set_model(model if model is not None
                                     else self.accompaniment.load_initial())
        self.devices.open_midi(synth, self._clock, self.feed)
        self.planner.begin(self.devices.midi_output)

    @property
    def tempo(self):
        """The session's TempoMap (None before start)."""
        return self.planner.tempo

    @property
    def thru(self) -> str:
        return self.devices.thru

    @property
    def midi_input(self):
        return self.devices.midi_input

    @property
    def margin_frames(self) -> int:
        return self.planner.margin_frames

    def play_note(self, on: bool, pitch: int, velocity: int = 100, channel: int = 0) -> None:
        """A note from another input (the studio's computer keyboard): stamped now, sounded at
        once, then handled as a played note. Never blocks."""
        ev = MidiEvent(self._clock(), NOTE_ON if on else NOTE_OFF, channel, pitch,
                       velocity if on else 0)
        self.feed(ev, sound=True)

    def feed(self, ev: MidiEvent, sound: bool = False) -> None:
        """A MIDI event from the input (rtmidi's thread) or a test. Never blocks. `sound`: play
        it even when the keyboard's notes reach the synth by themselves (JACK thru)."""
        if (self.thru == "python" or sound) and ev.kind in (NOTE_ON, NOTE_OFF):
            if ev.kind == NOTE_ON:
                self.synth.noteon(ev.channel, ev.data1, ev.data2)
            else:
                self.synth.noteoff(ev.channel, ev.data1)
        out = self.devices.midi_output
        if out is not None and self.config.midi_out_melody:
            status = {NOTE_ON: 0x90, NOTE_OFF: 0x80, CONTROL: 0xB0}[ev.kind] | ev.channel
            out.send_now((status, ev.data1, ev.data2))
        self.capture.put(ev)

    def send(self, command: C.Command) -> bool:
        """Queue a command (engine.realtime.commands); it takes effect at the next bar. False if
        the queue is full."""
        if not isinstance(command, C.Command):
            raise TypeError(f"not a live engine command: {command!r}")
        try:
            self.commands.put_nowait(command)
            return True
        except queue.Full:
            return False

    def status(self) -> LiveStatus:
        return self._status

    def snapshot(self) -> LiveSnapshot:
        """The latest published snapshot (the engine thread replaces it every 50 ms and at
        every bar it plans or hears)."""
        return self._snapshot

    @property
    def running(self) -> bool:
        return self._started and not self._stop_flag.is_set()

    def stop(self, reason: str = "") -> None:
        if reason and not self.stopped_reason:
            self.stopped_reason = reason
        self._stop_flag.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5.0)
        self._thread = None
        if self._started:
            self._started = False
            if self._old_switch:
                sys.setswitchinterval(self._old_switch)
            self._publish()  # the thread is gone: the last snapshot, while the clock still runs
            self.devices.close(self.synth, self._owns_synth)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the engine stops by itself (e.g. JACK went away); True if it did."""
        return self._stop_flag.wait(timeout)

    # -- the engine thread --------------------------------------------------------------------
    def _run(self) -> None:
        step_s = self.config.step_s
        cpu0 = time.thread_time()
        while not self._stop_flag.is_set():
            try:
                if not self.step():
                    break
            except Exception as exc:  # the loop must survive a bug in one step, but say so
                log.exception("engine step failed")
                self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            self.stats.engine_cpu_s = time.thread_time() - cpu0
            time.sleep(step_s)
        self._stop_flag.set()

    def step(self) -> bool:
        """One pass of the engine loop at the clock's current frame. False once it must stop."""
        if self.devices.jack_stopped:
            self.stopped_reason = self.stopped_reason or "JACK server stopped"
            self.stats.message = self.stopped_reason
            self._stop_flag.set()
            self._publish()
            return False
        now = self._clock()
        self._drain_commands()
        self.capture.drain(self.planner.tempo)
        self._poll_ports()
        model = self.accompaniment.adopt_loaded()
        if model is not None:
            self.planner.changes["model"] = model
        if self.planner.advance(now):
            self._last_status = 0.0
        if time.monotonic() - self._last_status > 0.05:
            self._publish()
            self._last_status = time.monotonic()
        return True

    def _poll_ports(self) -> None:
        change = self.devices.poll(self.synth)
        if change:
            self._last_status = 0.0
        if change == "vanished":  # notes held on the vanished keyboard would hang: release them
            end = int(self.tempo.tick_at(self._clock()))
            for ch, pitch in self.capture.release_all(end):
                if self.thru == "python":
                    self.synth.noteoff(ch, pitch)

    def _drain_commands(self) -> None:
        acc, changes = self.accompaniment, self.planner.changes
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                return
            match cmd:
                case C.SetTempo(bpm=bpm):
                    changes["tempo"] = bpm
                case C.SetMeter(meter=meter):
                    changes["meter"] = meter
                case C.SetMetronome(on=on):
                    self.planner.metronome = bool(on)
                case C.SetAccompany(on=on) if on:
                    if acc.model is not None and acc.session is None:
                        acc.set_model(acc.model)
                        self.stats.message = "accompaniment on"
                case C.SetAccompany():
                    acc.pause("off by request")
                case C.SetTemperature(temperature=t):
                    self.config.temperature = t
                    changes["reload_session"] = True
                case C.LoadModel(name=name):
                    acc.start_loader(name)

    # -- status and recording -----------------------------------------------------------------
    def _publish(self) -> None:
        """Build the status and the snapshot from the engine's own state and swap them in.
        Called by the engine thread (or by start/stop when that thread is not running)."""
        tempo, tpb = self.tempo, self.config.ticks_per_beat
        acc, dev, stats = self.accompaniment, self.devices, self.stats
        if tempo is None:
            self._status = LiveStatus()
            self._snapshot = snapshot(self._status, tick=0.0, wall=time.monotonic(),
                                      ticks_per_second=0.0, melody=self.capture.melody,
                                      parts=acc.parts, voices=acc.voices)
            return
        tick = tempo.tick_at(self._clock())
        bar, beat = bar_and_beat(tempo, self.planner.bars, tick, tpb)
        meter = tempo.meter_at(max(tick, 0))
        bpm = tempo.bpm_at(max(tick, 0))
        inf = stats.inference_ms
        status = LiveStatus(
            running=self.running, bar=bar, beat=beat, bpm=bpm, meter=f"{meter[0]}/{meter[1]}",
            late=stats.late, skipped=stats.skipped, bars_accompanied=stats.bars_accompanied,
            xruns=dev.xruns, provider=str(getattr(acc.model, "provider", "") or ""),
            model=str(getattr(acc.model, "name", "") or ""), accompaniment=acc.state,
            midi_in=dev.input_state(), thru=dev.thru, notes_in=stats.notes_in,
            dropped=stats.dropped, inference_ms=inf[-1] if inf else 0.0,
            errors=tuple(stats.errors), message=stats.message)
        self._status = status
        self._snapshot = snapshot(status, tick=tick, wall=time.monotonic(),
                                  ticks_per_second=bpm * tpb / 60.0,
                                  melody=self.capture.played(tick), parts=acc.parts,
                                  voices=acc.voices, segments=tempo.segments)

    def recorded_song(self, title: str = "Live performance") -> Song:
        """The performance so far: the melody as played, the accompaniment as scheduled. Read
        from the latest snapshot, so any thread may call it (tests stepping the engine by
        hand, with no thread, get one built now)."""
        t = self._thread
        if self._started and (t is None or t is threading.current_thread()):
            self._publish()
        snap = self._snapshot
        tracks = [Track("Melody", self.config.melody_program, role=ROLE_MELODY,
                        notes=list(snap.melody))]
        for i, notes in enumerate(snap.parts):
            tracks.append(Track(snap.names[i].capitalize(), snap.programs[i],
                                is_drum=snap.drums[i], role=ROLE_ACCOMPANIMENT,
                                notes=sorted(notes)))
        segs = snap.segments
        return Song(tracks=tracks, ticks_per_beat=self.config.ticks_per_beat,
                    tempos=[TempoChange(s.tick, s.bpm) for s in segs] or [TempoChange(0, 120.0)],
                    meters=[MeterChange(s.tick, *s.meter) for s in segs] or [MeterChange(0)],
                    title=title)
