"""The live engine: MIDI in -> melody at once (thru) -> accompaniment scheduled on the beat.

Threads (ARCHITECTURE.md "Threads and processes", ENVIRONMENT.md measurements):
- Audio: FluidSynth's own C driver. No Python in it.
- Melody thru: with JACK, the keyboard's port is connected to FluidSynth's own MIDI input as well as
  to ours (JACK ports fan out), so a played note reaches the synth without waiting for Python (a
  Python callback next to a busy Python thread measured p50 10-70 ms here). Without a JACK port to
  fan out (virtual input, offline tests) the MIDI thread calls synth.noteon (one C call).
- MIDI thread (rtmidi): raw bytes -> typed, timestamped MidiEvent -> bounded queue (put_nowait).
- Engine thread (this module): owns musical time (TempoMap over the synth's sample clock), turns
  the queue into notes, one beat (configurable) before each bar runs the accompanist for the next
  bar and stamps its notes at exact sample frames into FluidSynth's sequencer, which plays them in
  C. If inference ends after the bar's deadline the bar is skipped and counted: never played late.
  After each bar line it observes the finished bar. Commands arrive through a bounded queue and
  take effect between bars; status, the notes so far and the planned next bar leave as one
  immutable `LiveSnapshot` the engine builds on its own thread and the GUI polls. Loaded models
  come back from their loader thread through a queue.

Tests drive `step()` themselves with a virtual clock and an offline synth (no thread, no device).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import DeviceError, UserInputError
from engine.music import (ROLE_ACCOMPANIMENT, ROLE_MELODY, MeterChange, Note, Song, TempoChange,
                          Track)
from engine.realtime.clock import TempoMap, bar_ticks, click_ticks, quantise
from engine.realtime.midi import (CLOCK, CONTROL, NOTE_OFF, NOTE_ON, START, STOP, MidiEvent,
                                  MidiInput, MidiOutput)
from engine.synth.live import (BLOCK, DRUM_CHANNEL, MELODY_CHANNEL, METRONOME_CHANNEL,
                               SynthBackend, open_backend)

log = logging.getLogger(__name__)

CLICK_HIGH, CLICK_LOW = 76, 77  # GM hi / low wood block
QUEUE_SIZE = 4096


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


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """What the GUI / CLI shows. Immutable: the engine swaps in a new one, readers never lock."""

    running: bool = False
    bar: int = -1  # bar being heard (0 = first bar after the count-in; negative in the count-in)
    beat: float = 0.0
    bpm: float = 0.0
    meter: str = ""
    late: int = 0
    skipped: int = 0
    bars_accompanied: int = 0
    xruns: int = 0
    provider: str = ""
    model: str = ""
    accompaniment: str = "off"  # "on" | "off" | "paused: <why>"
    midi_in: str = ""
    thru: str = ""
    notes_in: int = 0
    dropped: int = 0
    inference_ms: float = 0.0
    errors: tuple[str, ...] = ()
    message: str = ""

    def line(self) -> str:
        return (f"bar {self.bar:>4}  beat {self.beat:4.1f}  {self.bpm:g} BPM {self.meter}  "
                f"late={self.late} skipped={self.skipped} xruns={self.xruns} "
                f"provider={self.provider or '-'} acc={self.accompaniment.split(':')[0]} "
                f"midi={self.midi_in or '-'} notes={self.notes_in}"
                + (f"  [{self.message}]" if self.message else ""))


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    """Everything a reader (the studio, the CLI) may see of a performance, built on the engine's
    thread and swapped in whole: readers never touch the engine's own lists, its tempo map or
    the synth. Ticks count from bar 0 (negative in the count-in)."""

    status: LiveStatus = LiveStatus()
    tick: float = 0.0  # musical time when it was built
    wall: float = 0.0  # time.monotonic() when it was built
    ticks_per_second: float = 0.0  # to move `tick` on between snapshots
    melody: tuple[Note, ...] = ()  # as played; held notes end at `tick`
    parts: tuple[tuple[Note, ...], ...] = ()  # the accompaniment as scheduled, per voice
    planned: tuple[Note, ...] = ()  # accompaniment scheduled but not started yet (the next bar)
    names: tuple[str, ...] = ()  # the voices' names
    programs: tuple[int, ...] = ()
    drums: tuple[bool, ...] = ()
    segments: tuple = ()  # the tempo map's segments (engine.realtime.clock.Segment, frozen)

    def tick_at(self, wall: float) -> float:
        """Musical time at `wall` (time.monotonic()), moved on from the snapshot's."""
        return self.tick + max(0.0, wall - self.wall) * self.ticks_per_second


@dataclass
class _Bar:
    index: int
    start: int  # tick
    length: int  # ticks
    meter: tuple[int, int]
    prepared: str = ""  # "scheduled" | "skipped" | "paused" | "error"


@dataclass
class _Stats:
    late: int = 0
    skipped: int = 0
    bars_accompanied: int = 0
    notes_in: int = 0
    dropped: int = 0
    errors: deque = field(default_factory=lambda: deque(maxlen=8))
    inference_ms: deque = field(default_factory=lambda: deque(maxlen=10_000))
    scheduled_frames: deque = field(default_factory=lambda: deque(maxlen=100_000))
    lead_frames: deque = field(default_factory=lambda: deque(maxlen=100_000))  # per bar: how far
    # ahead of the clock its first note was stamped (the margin left; < margin_frames = late)
    engine_cpu_s: float = 0.0  # CPU time of the engine thread (time.thread_time)


def load_accompanist(name: str | None, providers: str = "cpu"):
    """The accompanist engineer's runtime (engine.models.accompanist). ModelError if missing."""
    from engine.errors import ModelError

    from engine.models.band import is_band_model

    if is_band_model(name):  # the band (chords, bass, drums): same interface
        from engine.models.band import BandAccompanist

        return BandAccompanist.load(name, providers=providers)
    try:
        from engine.models.accompanist import Accompanist
    except ImportError as exc:
        raise ModelError(f"no accompanist runtime available ({exc})") from exc
    return Accompanist.load(name, providers=providers)


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
        self.config = config or LiveConfig()
        self.synth = synth
        self._owns_synth = synth is None
        self._clock = clock
        self._accompanist = accompanist
        self._fake_in, self._fake_out = midi_in, midi_out
        self.commands: queue.Queue = queue.Queue(maxsize=256)
        self._events: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self.stats = _Stats()
        self._status = LiveStatus()
        self._snapshot = LiveSnapshot()
        self._thread: threading.Thread | None = None
        self._stop_flag = threading.Event()
        self.stopped_reason = ""
        self.midi_input: MidiInput | None = None
        self.midi_output: MidiOutput | None = None
        self.monitor = None
        self.thru = "off"
        self._session = None
        self._paused_reason = ""
        # (accompanist | None, error | None) from a loader thread, adopted by the engine thread
        self._loaded: queue.Queue = queue.Queue(maxsize=4)
        self._pending_changes: dict = {}
        self._metronome = self.config.metronome
        self.tempo: TempoMap | None = None
        self._bars: list[_Bar] = []
        self._next_prepare = 0
        self._next_observe = 0
        self._open_notes: dict[tuple[int, int], tuple[int, int]] = {}
        self._melody: list[Note] = []
        self._accomp: list[list[Note]] = []
        self._acc_channels: list[int] = []
        self._last_poll = 0.0
        self._last_status = 0.0
        self._message = ""
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
            self._close_devices()
            raise
        self._started = True
        freeze_heap()
        if cfg.switch_interval_s:
            import sys

            self._old_switch = sys.getswitchinterval()
            sys.setswitchinterval(cfg.switch_interval_s)
        self._publish()
        if threaded:
            self._thread = threading.Thread(target=self._run, name="LiveEngine", daemon=True)
            self._thread.start()

    def _start_inner(self) -> None:
        cfg = self.config
        synth = self.synth
        if self._clock is None:
            self._clock = synth.frames
        if synth.name == "jack":
            from engine.realtime.jackmon import JackMonitor

            try:
                self.monitor = JackMonitor(f"{cfg.client_name}-monitor")
            except DeviceError as exc:
                log.warning("no JACK monitor (xruns not counted): %s", exc)
        synth.set_program(MELODY_CHANNEL, cfg.melody_program, soundfont=cfg.melody_soundfont)
        self._set_accompanist(self._accompanist if self._accompanist is not None
                              else self._load_initial())
        if cfg.use_midi_in:
            self.midi_input = MidiInput(cfg.midi_in, self.feed, self._clock, api=cfg.midi_api,
                                        client_name=cfg.client_name, midi_in=self._fake_in,
                                        exclude=(f"{cfg.client_name}-out",),
                                        sample_rate=synth.sample_rate)
        self.thru = self._setup_thru()
        if cfg.midi_out:
            self.midi_output = MidiOutput(self._clock, synth.sample_rate, api=cfg.midi_api,
                                          client_name=f"{cfg.client_name}-out",
                                          midi_out=self._fake_out)
        sr = synth.sample_rate
        now = self._clock()
        beat = 60.0 * sr / cfg.bpm
        count_in = cfg.count_in_bars * bar_ticks(cfg.meter, cfg.ticks_per_beat) / cfg.ticks_per_beat
        # Time before the first bar: the count-in, and at least the lookahead plus a safety margin
        # so that bar 0 can be prepared like every other bar.
        lead = max(count_in * beat, (cfg.lookahead_beats + 0.25) * beat) + self.margin_frames
        origin = now + int(round(lead))
        self.tempo = TempoMap(sr, cfg.ticks_per_beat, cfg.bpm, cfg.meter, origin)
        self._schedule_count_in()
        if self.midi_output and cfg.clock_out:
            self.midi_output.send_at(origin, (START,))

    @property
    def margin_frames(self) -> int:
        """How far ahead of the clock an event must be stamped to be dispatched on time: the
        synth's render-ahead (two periods), the sequencer's block (see engine.synth.live) and a
        millisecond of clock granularity."""
        return 2 * self.synth.period + 2 * BLOCK + self.synth.sample_rate // 1000

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
        if self.midi_output is not None and self.config.midi_out_melody:
            status = {NOTE_ON: 0x90, NOTE_OFF: 0x80, CONTROL: 0xB0}[ev.kind] | ev.channel
            self.midi_output.send_now((status, ev.data1, ev.data2))
        try:
            self._events.put_nowait(ev)
        except queue.Full:
            self.stats.dropped += 1

    def send(self, command: str, value=None) -> bool:
        """Queue a command: tempo (BPM), meter ((n, d)), metronome (bool), model (name),
        accompany (bool), temperature (float). Takes effect at the next bar. False if full."""
        try:
            self.commands.put_nowait((command, value))
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
            if getattr(self, "_old_switch", None):
                import sys

                sys.setswitchinterval(self._old_switch)
            self._publish()  # the thread is gone: the last snapshot, while the clock still runs
            self._close_devices()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the engine stops by itself (e.g. JACK went away); True if it did."""
        return self._stop_flag.wait(timeout)

    # -- devices ------------------------------------------------------------------------------
    def _load_initial(self):
        if not self.config.accompany:
            return None
        try:
            return load_accompanist(self.config.model, self.config.providers)
        except UserInputError as exc:
            self._pause(f"model not loaded: {exc}")
            return None
        except Exception as exc:  # a broken model must not take the melody down
            log.exception("accompanist failed to load")
            self._pause(f"model not loaded: {type(exc).__name__}: {exc}")
            return None

    def _set_accompanist(self, acc) -> None:
        self._accompanist = acc
        self._session = None
        if acc is None:
            return
        try:
            kwargs = {"temperature": self.config.temperature, "seed": self.config.seed}
            if self.config.key:
                from engine.music import parse_key

                kwargs["key"] = parse_key(self.config.key)
            self._session = acc.session(**kwargs)
        except Exception as exc:
            log.exception("accompanist session failed")
            self._pause(f"model error: {type(exc).__name__}: {exc}")
            return
        self._paused_reason = ""
        programs = tuple(self.config.programs or getattr(acc, "programs", ()) or ())
        roles = tuple(getattr(acc, "roles", ()) or ())
        n = max(len(roles), len(programs))
        # Drum roles (the accompanist's role infos say is_drum) play on the GM drum channel.
        drums = [bool(getattr(r, "is_drum", False)) for r in getattr(acc, "_roles", ())]
        drums += [False] * (n - len(drums))
        free = iter(c for c in range(1, 16) if c not in (DRUM_CHANNEL, METRONOME_CHANNEL))
        chans = [DRUM_CHANNEL if drums[i] else next(free) for i in range(n)]
        self._acc_channels = chans
        while len(self._accomp) < n:
            self._accomp.append([])
        self._roles = list(roles) + [f"part {i + 1}" for i in range(len(roles), n)]
        self._programs = list(programs) + [0] * (n - len(programs))
        self._drums = drums
        for ch, prog, drum in zip(chans, self._programs, drums):
            self.synth.set_program(ch, prog, is_drum=drum,
                                   soundfont=self.config.accompaniment_soundfont)

    def _setup_thru(self) -> str:
        mode = self.config.thru
        if mode in ("off", "python"):
            return mode
        port = self.midi_input.port_name if self.midi_input else None
        dest = self.synth.midi_input_port
        if self.monitor is not None and port and dest and self.monitor.connect(port, dest):
            return "synth"
        if mode == "synth":
            raise DeviceError("melody thru to the synth's MIDI input needs JACK and a MIDI input "
                              "port (use --thru python otherwise)")
        return "python"

    def _close_devices(self) -> None:
        jack_dead = self.monitor is not None and self.monitor.shutdown.is_set()
        if self.midi_input is not None:
            try:
                self.midi_input.close()
            except Exception:
                log.debug("closing MIDI input", exc_info=True)
            self.midi_input = None
        if self.midi_output is not None:
            try:
                if self.config.clock_out and not jack_dead:
                    self.midi_output.send_now((STOP,))
                self.midi_output.close()
            except Exception:
                log.debug("closing MIDI output", exc_info=True)
            self.midi_output = None
        if self.synth is not None:
            try:
                self.synth.cancel_scheduled()
                self.synth.all_notes_off()
            except Exception:
                log.debug("silencing synth", exc_info=True)
            if self._owns_synth:
                self.synth.close()
        if self.monitor is not None:
            self.monitor.close()

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
        if self.monitor is not None and self.monitor.shutdown.is_set():
            self.stopped_reason = self.stopped_reason or "JACK server stopped"
            self._message = self.stopped_reason
            self._stop_flag.set()
            self._publish()
            return False
        now = self._clock()
        self._drain_commands()
        self._drain_input()
        self._poll_ports()
        self._adopt_loaded_model()
        tempo, look = self.tempo, self.config.lookahead_beats
        # Observe every bar whose end has passed (after its bar line).
        while (self._next_observe < len(self._bars)
               and now >= tempo.frame_at(self._bar_end(self._bars[self._next_observe]))):
            self._observe(self._bars[self._next_observe], now)
            self._next_observe += 1
            self._last_status = 0.0
        # Prepare the next bar once we are within the lookahead of its start.
        while True:
            start = self._next_bar_start()
            lead = int(round(look * tempo.beat_frames(start)))
            if now < tempo.frame_at(start) - lead:
                break
            self._prepare(start)
            now = self._clock()
            self._last_status = 0.0
        if time.monotonic() - self._last_status > 0.05:
            self._publish()
            self._last_status = time.monotonic()
        return True

    def _bar_end(self, bar: _Bar) -> int:
        return bar.start + bar.length

    def _next_bar_start(self) -> int:
        return self._bar_end(self._bars[-1]) if self._bars else 0

    def _drain_commands(self) -> None:
        while True:
            try:
                cmd, value = self.commands.get_nowait()
            except queue.Empty:
                return
            if cmd in ("tempo", "meter"):
                self._pending_changes[cmd] = value
            elif cmd == "metronome":
                self._metronome = bool(value)
            elif cmd == "accompany":
                # Off: the next bars get none; on again: a fresh session with the same model.
                if value and self._accompanist is not None and self._session is None:
                    self._set_accompanist(self._accompanist)
                    self._message = "accompaniment on"
                elif not value:
                    self._pause("off by request")
            elif cmd == "temperature":
                self.config.temperature = value
                self._pending_changes["reload_session"] = True
            elif cmd == "model":
                self._start_loader(value)
            else:
                self.stats.errors.append(f"unknown command {cmd!r}")

    def _start_loader(self, name) -> None:
        """Load a model on a worker thread; the engine adopts it at the next bar it prepares."""
        def work():
            try:
                loaded = (load_accompanist(name, self.config.providers), None)
            except Exception as exc:
                loaded = (None, f"model {name!r} not loaded: {exc}")
            try:
                self._loaded.put_nowait(loaded)
            except queue.Full:
                self.stats.errors.append(f"model {name!r} dropped: too many loads at once")
        threading.Thread(target=work, name="ModelLoader", daemon=True).start()

    def _adopt_loaded_model(self) -> None:
        try:
            acc, err = self._loaded.get_nowait()
        except queue.Empty:
            return
        if err:
            self.stats.errors.append(err)
            self._message = err
        else:
            self._pending_changes["model"] = acc

    def _pause(self, reason: str) -> None:
        self._session = None
        self._paused_reason = reason
        self.stats.errors.append(reason)
        self._message = reason
        log.warning("accompaniment paused: %s", reason)

    def _drain_input(self) -> None:
        tempo = self.tempo
        while True:
            try:
                ev = self._events.get_nowait()
            except queue.Empty:
                return
            if ev.kind == CONTROL:
                continue
            tick = int(round(tempo.tick_at(ev.frame)))
            key = (ev.channel, ev.data1)
            if ev.kind == NOTE_ON:
                self.stats.notes_in += 1
                if key in self._open_notes:  # re-struck without a note-off: close the old one
                    self._close_note(key, tick)
                self._open_notes[key] = (tick, ev.data2)
            else:
                self._close_note(key, tick)

    def _close_note(self, key, end_tick: int) -> None:
        opened = self._open_notes.pop(key, None)
        if opened is None:
            return
        start, vel = opened
        if end_tick <= 0:
            return  # played and released inside the count-in: not part of the song
        start = max(start, 0)
        self._melody.append(Note(start, max(end_tick, start + 1), key[1], max(vel, 1)))

    def _poll_ports(self) -> None:
        if self.midi_input is None:
            return
        t = time.monotonic()
        if t - self._last_poll < self.config.port_poll_s:
            return
        self._last_poll = t
        change = self.midi_input.poll()
        if change:
            self._last_status = 0.0
        if change == "vanished":
            self._message = (f"MIDI input {self.midi_input.port_name} vanished: playing what is "
                             "scheduled, waiting for it to return")
            self.stats.errors.append(self._message)
            # Notes held on the vanished keyboard would hang: release them.
            for (ch, pitch) in list(self._open_notes):
                if self.thru == "python":
                    self.synth.noteoff(ch, pitch)
                self._close_note((ch, pitch), int(self.tempo.tick_at(self._clock())))
        elif change == "returned":
            self._message = f"MIDI input {self.midi_input.port_name} is back"
            if self.thru == "synth":
                self.monitor.connect(self.midi_input.port_name, self.synth.midi_input_port)

    # -- bars ---------------------------------------------------------------------------------
    def _steps_per_beat(self) -> int:
        card = getattr(self._accompanist, "card", None)
        rep = getattr(card, "representation", None) or {}
        try:
            return int(rep.get("steps_per_beat", 4))
        except (TypeError, ValueError, AttributeError):
            return 4

    def _bar_notes(self, bar: _Bar, now_tick: int | None) -> list[Note]:
        """Melody notes that start in `bar`, relative to its start and quantised to the model's
        grid; notes still held end at `now_tick` (at least one step)."""
        spb, tpb = self._steps_per_beat(), self.config.ticks_per_beat
        step = tpb // spb
        lo, hi = bar.start, bar.start + bar.length
        held = []
        if now_tick is not None:
            held = [Note(max(s, 0), max(now_tick, max(s, 0) + 1), p, max(v, 1))
                    for (ch, p), (s, v) in self._open_notes.items()]
        out = []
        for n in list(self._melody) + held:
            if lo <= n.start < hi or (n.start < lo < n.end and n in held):
                s = quantise(n.start - lo, tpb, spb)
                e = max(quantise(n.end - lo, tpb, spb), s + step)
                if s >= bar.length:
                    continue
                out.append(Note(max(s, 0), e, n.pitch, n.velocity))
        out.sort()
        return out

    def _apply_changes(self, start: int) -> None:
        ch = self._pending_changes
        self._pending_changes = {}
        if "tempo" in ch or "meter" in ch:
            try:
                self.tempo.change(start, bpm=ch.get("tempo"), meter=ch.get("meter"))
            except ValueError as exc:
                self.stats.errors.append(str(exc))
        if "model" in ch:
            self._set_accompanist(ch["model"])
            self._message = f"model {getattr(ch['model'], 'name', '?')} from bar {len(self._bars)}"
        elif ch.get("reload_session") and self._accompanist is not None:
            self._set_accompanist(self._accompanist)

    def _prepare(self, start: int) -> None:
        """Plan the bar starting at tick `start`: metronome, then the accompaniment (or a skip)."""
        self._apply_changes(start)
        tempo, tpb = self.tempo, self.config.ticks_per_beat
        meter = tempo.meter_at(start)
        bar = _Bar(len(self._bars), start, bar_ticks(meter, tpb), meter)
        self._bars.append(bar)
        if self._metronome:
            for i, t in enumerate(click_ticks(meter, tpb)):
                self._click(tempo.frame_at(start + t), i == 0)
        if self.midi_output is not None and self.config.clock_out:
            for k in range(bar.length * 24 // tpb):
                self.midi_output.send_at(tempo.frame_at(start + k * tpb // 24), (CLOCK,))
        if self._session is None:
            bar.prepared = "paused" if self._paused_reason else "off"
            return
        bar_frame = tempo.frame_at(start)
        deadline = bar_frame - self.margin_frames
        if self._clock() > deadline:  # already too late to start: skip without running
            self._skip(bar)
            return
        prev = self._bars[-2] if len(self._bars) >= 2 else None
        now_tick = int(tempo.tick_at(self._clock()))
        pending = self._bar_notes(prev, now_tick) if prev is not None else []
        t0 = time.perf_counter()
        try:
            parts = self._session.accompany_next(bar.length, tpb, pending=pending)
        except Exception as exc:
            log.exception("accompaniment failed")
            bar.prepared = "error"
            self._pause(f"model error: {type(exc).__name__}: {exc}")
            return
        self.stats.inference_ms.append((time.perf_counter() - t0) * 1000.0)
        if self._clock() > deadline:
            self._skip(bar)
            return
        self._schedule_parts(bar, parts)

    def _skip(self, bar: _Bar) -> None:
        bar.prepared = "skipped"
        self.stats.skipped += 1
        log.info("bar %d skipped: inference missed its deadline", bar.index)

    def _schedule_parts(self, bar: _Bar, parts: Sequence[Sequence[Note]]) -> None:
        tempo = self.tempo
        events = []  # (frame, is_on, channel, pitch, velocity)
        for i, notes in enumerate(parts):
            if i >= len(self._acc_channels):
                break
            ch = self._acc_channels[i]
            for n in notes:
                s = max(int(n.start), 0)
                e = min(int(n.end), bar.length)
                if s >= bar.length or e <= s:
                    continue
                events.append((tempo.frame_at(bar.start + s), True, ch, n.pitch, n.velocity))
                events.append((tempo.frame_at(bar.start + e), False, ch, n.pitch, 0))
                self._accomp[i].append(Note(bar.start + s, bar.start + e, n.pitch, n.velocity))
        events.sort(key=lambda e: (e[0], e[1]))  # offs first at equal frames: re-strikes survive
        now = self._clock()
        limit = now + self.margin_frames
        if events:
            self.stats.lead_frames.append(events[0][0] - now)
        for frame, on, ch, pitch, vel in events:
            if on and frame < limit:
                self.stats.late += 1  # would sound late: dropped (never happens when on time)
                continue
            if on:
                self.synth.schedule_note_on(frame, ch, pitch, vel)
                self.stats.scheduled_frames.append(frame)
            else:
                self.synth.schedule_note_off(frame, ch, pitch)
            if self.midi_output is not None:
                self.midi_output.send_at(frame, ((0x90 if on else 0x80) | ch, pitch, vel))
        bar.prepared = "scheduled"
        self.stats.bars_accompanied += 1

    def _observe(self, bar: _Bar, now: int) -> None:
        if self._session is None:
            return
        notes = self._bar_notes(bar, int(self.tempo.tick_at(now)))
        try:
            self._session.observe(notes, bar.length, self.config.ticks_per_beat)
        except Exception as exc:
            log.exception("observe failed")
            self._pause(f"model error: {type(exc).__name__}: {exc}")

    def _click(self, frame: int, accent: bool) -> None:
        pitch = CLICK_HIGH if accent else CLICK_LOW
        vel = self.config.metronome_velocity
        self.synth.schedule_note_on(frame, METRONOME_CHANNEL, pitch, vel)
        self.synth.schedule_note_off(frame + self.synth.sample_rate // 20, METRONOME_CHANNEL, pitch)

    def _schedule_count_in(self) -> None:
        cfg, tempo, tpb = self.config, self.tempo, self.config.ticks_per_beat
        length = bar_ticks(cfg.meter, tpb)
        for b in range(cfg.count_in_bars, 0, -1):
            for i, t in enumerate(click_ticks(cfg.meter, tpb)):
                self._click(tempo.frame_at(-b * length + t), i == 0)

    # -- status and recording -----------------------------------------------------------------
    def _make_status(self) -> LiveStatus:
        tempo = self.tempo
        if tempo is None:
            return LiveStatus()
        now = self._clock()
        tick = tempo.tick_at(now)
        length = tempo.bar_ticks_at(tick)
        bar_idx, beat = -1, 0.0
        if tick < 0:
            bar_idx = -int(-tick // length) - 1
            beat = (tick - bar_idx * length) / self.config.ticks_per_beat
        else:
            for b in reversed(self._bars):
                if b.start <= tick:
                    bar_idx, beat = b.index, (tick - b.start) / self.config.ticks_per_beat
                    break
        meter = tempo.meter_at(max(tick, 0))
        acc = self._accompanist
        if self._session is not None:
            acc_state = "on"
        elif self._paused_reason:
            acc_state = f"paused: {self._paused_reason}"
        else:
            acc_state = "off"
        mi = self.midi_input
        midi = "" if mi is None else (f"{mi.state} {mi.port_name}" if mi.port_name else mi.state)
        inf = self.stats.inference_ms
        return LiveStatus(
            running=self.running, bar=bar_idx, beat=beat, bpm=tempo.bpm_at(max(tick, 0)),
            meter=f"{meter[0]}/{meter[1]}", late=self.stats.late, skipped=self.stats.skipped,
            bars_accompanied=self.stats.bars_accompanied,
            xruns=self.monitor.xruns if self.monitor else 0,
            provider=str(getattr(acc, "provider", "") or ""),
            model=str(getattr(acc, "name", "") or ""), accompaniment=acc_state, midi_in=midi,
            thru=self.thru, notes_in=self.stats.notes_in, dropped=self.stats.dropped,
            inference_ms=inf[-1] if inf else 0.0, errors=tuple(self.stats.errors),
            message=self._message)

    def _publish(self) -> None:
        """Build the status and the snapshot from the engine's own state and swap them in.
        Called by the engine thread (or by start/stop when that thread is not running)."""
        status = self._make_status()
        if not self.running:
            status = dataclasses.replace(status, running=False)
        tempo = self.tempo
        tick = tps = 0.0
        melody = list(self._melody)
        if tempo is not None:
            now = self._clock()
            tick = tempo.tick_at(now)
            tps = tempo.bpm_at(max(tick, 0)) * self.config.ticks_per_beat / 60.0
            for (ch, p), (s, v) in self._open_notes.items():
                if int(tick) > max(s, 0):
                    melody.append(Note(max(s, 0), int(tick), p, max(v, 1)))
        parts = tuple(tuple(notes) for notes in self._accomp)
        planned = tuple(sorted(n for notes in parts for n in notes if n.start >= tick))
        n = len(parts)
        roles = list(getattr(self, "_roles", []))
        names = tuple(str(roles[i]) if i < len(roles) else f"part {i + 1}" for i in range(n))
        programs = list(getattr(self, "_programs", []))
        drums = list(getattr(self, "_drums", []))
        self._status = status
        self._snapshot = LiveSnapshot(
            status=status, tick=tick, wall=time.monotonic(), ticks_per_second=tps,
            melody=tuple(sorted(melody)), parts=parts, planned=planned, names=names,
            programs=tuple(programs[i] if i < len(programs) else 0 for i in range(n)),
            drums=tuple(bool(drums[i]) if i < len(drums) else False for i in range(n)),
            segments=tuple(tempo.segments) if tempo is not None else ())

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
        song = Song(tracks=tracks, ticks_per_beat=self.config.ticks_per_beat,
                    tempos=[TempoChange(s.tick, s.bpm) for s in segs] or [TempoChange(0, 120.0)],
                    meters=[MeterChange(s.tick, *s.meter) for s in segs] or [MeterChange(0)],
                    title=title)
        return song
