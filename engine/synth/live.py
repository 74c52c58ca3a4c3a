"""The realtime synth: FluidSynth rendering in C through its own audio driver, behind one facade.

Why FluidSynth's own driver and not a Python audio callback: a Python callback next to a busy
Python thread was measured dropping ~900 periods in 6 s (the GIL switch interval,
5 ms, is longer than a 128-frame period, 2.67 ms), while FluidSynth's C JACK driver with the same
load had 2 xruns, both at start-up. So no Python code ever runs in the audio path here: Python only
calls into the synth (note on/off, program changes) and hands timed events to FluidSynth's own
sequencer, which FluidSynth dispatches inside its render loop, at sample times.

Backends (one facade, chosen by name, Carla/mido style):
- ``FluidSynthBackend(driver="jack")`` (or "pulseaudio", "alsa", "coreaudio", "wasapi", ...):
  realtime audio out; with ``midi_driver="jack"`` FluidSynth also opens its own JACK MIDI input
  port so a keyboard can be connected straight to it (melody thru without Python).
- ``FluidSynthBackend(driver=None)``: offline, no device; ``render(n)`` pulls audio (tests, the
  deterministic engine, benchmarks).
- ``NullBackend``: no sound at all, a wall-clock sample clock, and a log of what it was asked to
  play (tests, machines without audio).

Timing facts (measured, pinned by tests/test_realtime_engine.py): FluidSynth renders in blocks of
64 frames (FLUID_BUFSIZE). A direct ``noteon`` takes effect at the next block boundary. The
sequencer, on the synth's sample timer, keeps time in whole milliseconds and starts a dispatched
event one block after the block in which its stamp falls due (see `sequencer_stamp`).
``schedule_*`` stamps events so that an event due at frame t sounds from ``sound_frame(t)``, the
first block boundary at or after t: exactly at t whenever t is a multiple of 64, never early, and
at most 63 frames (1.3 ms) late otherwise. The clock (`frames()`) is the sequencer's: the synth's
rendered frames in millisecond steps.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DeviceError, SoundfontError
from engine.synth.fluid import fluid_lib, import_fluidsynth
from engine.synth.soundfont import find_soundfont

log = logging.getLogger(__name__)

BLOCK = 64  # FluidSynth's internal render block (FLUID_BUFSIZE)
SEQ_LATENCY = BLOCK  # the sequencer dispatches one block after an event's stamp (measured)
N_CHANNELS = 16
DRUM_BANK = 128

# Channels the engine uses by convention (a keyboard usually sends on channel 0 = MIDI channel 1).
MELODY_CHANNEL = 0
DRUM_CHANNEL = 9
METRONOME_CHANNEL = 15

PLATFORM_DRIVERS = {"linux": ("jack", "pulseaudio", "pipewire", "alsa"),
                    "darwin": ("coreaudio",), "win32": ("wasapi", "dsound")}


def backend_names(platform: str = sys.platform) -> tuple[str, ...]:
    """The backends a person may choose on `platform` (`open_backend` takes each): "auto", the
    platform's audio drivers in the order "auto" tries them, and "null" (silent)."""
    return ("auto", *PLATFORM_DRIVERS.get(platform, ()), "null")


@dataclass(frozen=True, slots=True)
class SynthEvent:
    """What a backend was asked to do; the NullBackend keeps a log of these (tests, diagnostics)."""

    frame: int  # sample frame it was due (for direct calls: the clock when called)
    kind: str  # "on" | "off" | "cc" | "program"
    channel: int
    data1: int
    data2: int = 0
    scheduled: bool = False


class SynthBackend:
    """The interface every backend implements. Methods are thread-safe and never block long."""

    name = "base"
    sample_rate: int = 48000
    period: int = 128

    def frames(self) -> int:
        """The synth's sample clock: frames rendered since the backend started."""
        raise NotImplementedError

    def noteon(self, channel: int, pitch: int, velocity: int) -> None:
        raise NotImplementedError

    def noteoff(self, channel: int, pitch: int) -> None:
        raise NotImplementedError

    def cc(self, channel: int, control: int, value: int) -> None:
        raise NotImplementedError

    def set_program(self, channel: int, program: int, *, is_drum: bool = False,
                    soundfont: str | Path | None = None) -> None:
        raise NotImplementedError

    def schedule_note_on(self, frame: int, channel: int, pitch: int, velocity: int) -> None:
        raise NotImplementedError

    def schedule_note_off(self, frame: int, channel: int, pitch: int) -> None:
        raise NotImplementedError

    def cancel_scheduled(self) -> None:
        """Drop every event not yet dispatched."""
        raise NotImplementedError

    def all_notes_off(self) -> None:
        for ch in range(N_CHANNELS):
            self.cc(ch, 123, 0)

    @property
    def midi_input_port(self) -> str | None:
        """Full JACK name of the synth's own MIDI input (for thru), or None."""
        return None

    @property
    def audio_ports(self) -> list[str]:
        """Full JACK names of the synth's audio outputs (for recorders), or []."""
        return []

    def close(self) -> None:
        pass

    def __enter__(self) -> SynthBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NullBackend(SynthBackend):
    """No audio. The clock runs on wall time at `sample_rate`; requests are logged (bounded)."""

    name = "null"
    reason = ""  # why a real device was not opened, when this stands in for one

    def __init__(self, sample_rate: int = 48000, period: int = 128, log_size: int = 100_000,
                 clock=None) -> None:
        self.sample_rate = int(sample_rate)
        self.period = int(period)
        self._t0 = time.monotonic()
        self._clock = clock
        self.events: deque[SynthEvent] = deque(maxlen=log_size)
        self._lock = threading.Lock()

    def frames(self) -> int:
        if self._clock is not None:
            return int(self._clock())
        return int((time.monotonic() - self._t0) * self.sample_rate)

    def _log(self, ev: SynthEvent) -> None:
        with self._lock:
            self.events.append(ev)

    def noteon(self, channel, pitch, velocity):
        self._log(SynthEvent(self.frames(), "on", channel, pitch, velocity))

    def noteoff(self, channel, pitch):
        self._log(SynthEvent(self.frames(), "off", channel, pitch))

    def cc(self, channel, control, value):
        self._log(SynthEvent(self.frames(), "cc", channel, control, value))

    def set_program(self, channel, program, *, is_drum=False, soundfont=None):
        self._log(SynthEvent(self.frames(), "program", channel, program, int(is_drum)))

    def schedule_note_on(self, frame, channel, pitch, velocity):
        self._log(SynthEvent(int(frame), "on", channel, pitch, velocity, True))

    def schedule_note_off(self, frame, channel, pitch):
        self._log(SynthEvent(int(frame), "off", channel, pitch, 0, True))

    def cancel_scheduled(self):
        now = self.frames()
        with self._lock:
            kept = [e for e in self.events if not (e.scheduled and e.frame > now)]
            self.events.clear()
            self.events.extend(kept)


class FluidSynthBackend(SynthBackend):
    """FluidSynth with its own audio driver (or none: offline rendering with `render`).

    `driver`: a FluidSynth audio driver name ("jack", "pulseaudio", "alsa", "coreaudio", ...) or
    None for offline. `midi_driver="jack"` opens FluidSynth's own JACK MIDI input (thru port).
    Raises DeviceError when the audio driver cannot start (pyfluidsynth's start() returns 0 even
    then, so we check the driver handle ourselves).
    """

    def __init__(self, driver: str | Sequence[str] | None = "jack", *, sample_rate: int = 48000,
                 period: int = 128, periods: int = 2, soundfont: str | Path | None = None,
                 gain: float = 0.4, midi_driver: str | None = None, client_name: str = "popmusicnet",
                 reverb: bool = True, autoconnect: bool = True) -> None:
        fluidsynth = self._fs = import_fluidsynth()  # lazy: libfluidsynth is a system library
        self.sample_rate = int(sample_rate)
        self.period = int(period)
        self.driver = driver
        self.client_name = client_name
        self.name = driver or "offline"
        self._sf_path = find_soundfont(soundfont)
        self._sfids: dict[Path, int] = {}
        self._lock = threading.Lock()
        uses_jack = driver == "jack" or (not isinstance(driver, str) and driver is not None
                                         and "jack" in driver)
        if uses_jack:
            # Never let libjack spawn a server of its own (it would pick a sound card we lack).
            os.environ.setdefault("JACK_NO_START_SERVER", "1")
        settings = {"synth.reverb.active": int(reverb), "synth.chorus.active": 0,
                    "audio.period-size": self.period, "audio.periods": int(periods),
                    "synth.cpu-cores": 1}
        if uses_jack:
            settings.update({"audio.jack.id": client_name, "midi.jack.id": client_name,
                             "audio.jack.autoconnect": int(autoconnect), "audio.jack.multi": 0})
        self.synth = fluidsynth.Synth(gain=gain, samplerate=float(self.sample_rate), channels=16,
                                      **settings)
        self._main_sfid = self._load(self._sf_path)
        for ch in range(N_CHANNELS):
            self.synth.program_select(ch, self._main_sfid, DRUM_BANK if ch == DRUM_CHANNEL else 0, 0)
        self.synth.program_select(METRONOME_CHANNEL, self._main_sfid, DRUM_BANK, 0)
        # The sequencer runs on the synth's sample clock (use_system_timer=False): its tick is the
        # number of frames rendered, and its events are dispatched inside the render loop, in C.
        self.seq = fluidsynth.Sequencer(time_scale=self.sample_rate, use_system_timer=False)
        self._dest = self.seq.register_fluidsynth(self.synth)
        lib = fluid_lib()
        self._remove = lib.fluid_sequencer_remove_events
        self._write_float = lib.fluid_synth_write_float
        self._midi_port: str | None = None
        if driver is not None:
            # Several candidates share one synth (the soundfont is loaded once).
            candidates = [driver] if isinstance(driver, str) else list(driver)
            self.driver = None
            self.probe_errors: dict[str, str] = {}
            for drv in candidates:
                # FluidSynth and ALSA write a dozen lines to fd 2 for every driver that fails:
                # kept (debug log, the error below), not printed.
                with _captured_stderr() as said:
                    started = self._start_driver(drv, midi_driver if drv == "jack" else None)
                if said.text:
                    log.debug("FluidSynth %s driver said:\n%s", drv, said.text.rstrip())
                if started:
                    break
                self.probe_errors[drv] = _last_error(said.text)
            else:
                self.seq.delete()
                self.synth.delete()
                self.synth = None
                one = candidates[0] if len(candidates) == 1 else None
                raise DeviceError(
                    (f"audio driver {one!r} could not start" if one else
                     "no audio driver could start (tried " + ", ".join(candidates) + ")")
                    + (" (is a JACK server running? start one with "
                       "`jackd -d dummy -r 48000 -p 128`, or use --backend null)"
                       if "jack" in candidates else " (use --backend null to play silently)"))

    def _start_driver(self, driver: str, midi_driver: str | None) -> bool:
        s = self.synth
        s.setting("audio.driver", driver)
        s.audio_driver = self._fs.new_fluid_audio_driver(s.settings, s.synth)
        if not s.audio_driver:
            return False
        self.driver = self.name = driver
        if midi_driver:
            # Only FluidSynth's MIDI driver (not pyfluidsynth's start(), which always opens ALSA's
            # sequencer and fails here): events go straight from the port to the synth, in C.
            s.setting("midi.driver", midi_driver)
            s.router = self._fs.new_fluid_midi_router(
                s.settings, self._fs.fluid_synth_handle_midi_event, s.synth)
            s.midi_driver = self._fs.new_fluid_midi_driver(
                s.settings, self._fs.fluid_midi_router_handle_midi_event, s.router)
            if not s.midi_driver:
                log.warning("FluidSynth MIDI driver %r did not start: no thru port", midi_driver)
            elif midi_driver == "jack":
                self._midi_port = f"{self.client_name}:midi_00"
        log.info("FluidSynth %s driver running at %d Hz, period %d", driver, self.sample_rate,
                 self.period)
        return True

    def _load(self, path: Path) -> int:
        path = Path(path)
        if path not in self._sfids:
            sfid = self.synth.sfload(str(path))
            if sfid < 0:
                raise SoundfontError(f"{path}: FluidSynth could not load this soundfont")
            self._sfids[path] = sfid
        return self._sfids[path]

    # -- clock and direct control -------------------------------------------------------------
    def frames(self) -> int:
        return int(self.seq.get_tick())

    def noteon(self, channel, pitch, velocity):
        self.synth.noteon(channel, pitch, velocity)

    def noteoff(self, channel, pitch):
        self.synth.noteoff(channel, pitch)

    def cc(self, channel, control, value):
        self.synth.cc(channel, control, value)

    def set_program(self, channel, program, *, is_drum=False, soundfont=None):
        sfid = self._load(find_soundfont(soundfont)) if soundfont else self._main_sfid
        self.synth.program_select(channel, sfid, DRUM_BANK if is_drum else 0, program)

    def all_notes_off(self) -> None:
        for ch in range(N_CHANNELS):
            self.synth.all_notes_off(ch)

    # -- scheduled events ---------------------------------------------------------------------
    def stamp(self, frame: int) -> int:
        """The sequencer time to give an event that must sound from `frame` (see sequencer_stamp)."""
        return sequencer_stamp(int(frame), self.sample_rate)

    def schedule_note_on(self, frame, channel, pitch, velocity):
        self.seq.note_on(self.stamp(frame), channel, pitch, velocity, dest=self._dest)

    def schedule_note_off(self, frame, channel, pitch):
        self.seq.note_off(self.stamp(frame), channel, pitch, dest=self._dest)

    def cancel_scheduled(self):
        self._remove(self.seq.sequencer, -1, -1, -1)

    # -- offline ------------------------------------------------------------------------------
    def render(self, n: int) -> np.ndarray:
        """Render `n` frames (offline backends only): float32 array (n, 2). Advances the clock."""
        if self.driver is not None:
            raise RuntimeError("render() is for the offline backend; this one has a driver")
        buf = np.zeros((int(n), 2), dtype=np.float32)
        ptr = buf.ctypes.data
        self._write_float(self.synth.synth, int(n), ptr, 0, 2, ptr, 1, 2)
        return buf

    @property
    def midi_input_port(self) -> str | None:
        return self._midi_port

    @property
    def audio_ports(self) -> list[str]:
        return [f"{self.client_name}:left", f"{self.client_name}:right"] if self.driver == "jack" else []

    def close(self) -> None:
        if getattr(self, "synth", None) is None:
            return
        with self._lock:
            s, self.synth = self.synth, None
            try:
                self.seq.delete()
            finally:
                s.delete()


def sound_frame(frame: int) -> int:
    """The first frame at which an event due at `frame` can sound: the next 64-frame block."""
    return -(-int(frame) // BLOCK) * BLOCK


def sequencer_stamp(frame: int, sample_rate: int) -> int:
    """Sequencer time (time scale = sample rate) that makes an event sound from sound_frame(frame).

    Measured on FluidSynth 2.3 (tests/test_realtime_engine.py pins it): with the synth's sample
    timer, the sequencer's clock while block B (frames B..B+63) renders is B rounded down to whole
    milliseconds; events whose stamp is <= that clock are dispatched then and sound from the next
    block, B + 64. So the stamp for a sound at block S is the clock of block S - 64.
    """
    b = sound_frame(frame) - SEQ_LATENCY
    if b <= 0:
        return 0
    ms = b * 1000 // sample_rate
    return int(ms * sample_rate // 1000)


def jack_server_running() -> bool:
    """True when a JACK server answers (never starts one). Asks libjack itself (ctypes), so the
    runtime needs no JACK Python module."""
    from engine.synth.jacklib import server_running

    return server_running()


class _Said:
    text = ""


@contextlib.contextmanager
def _captured_stderr():
    """What C libraries write to file descriptor 2 meanwhile, kept instead of printed."""
    said = _Said()
    try:
        saved = os.dup(2)
    except OSError:
        yield said
        return
    import tempfile

    with tempfile.TemporaryFile() as tmp:
        try:
            sys.stderr.flush()
            os.dup2(tmp.fileno(), 2)
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            said.text = tmp.read().decode("utf-8", "replace")


def _last_error(text: str) -> str:
    """The last line a failed driver wrote, for the one-line error (or "")."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1].removeprefix("fluidsynth: ").removeprefix("error: ") if lines else ""


def open_backend(backend: str = "auto", *, sample_rate: int = 48000, period: int = 128,
                 soundfont: str | Path | None = None, midi_thru: bool = False,
                 client_name: str = "popmusicnet", fallback_null: bool = False,
                 autoconnect: bool = True, reverb: bool = True) -> SynthBackend:
    """Open a synth by backend name: "auto", "jack", "null", "offline" or a FluidSynth driver name.

    "auto": JACK when a server runs, else the platform's usual drivers in turn. When none starts,
    raise DeviceError naming what was tried, or return a NullBackend if `fallback_null`.
    """
    if backend == "null":
        return NullBackend(sample_rate, period)
    if backend == "offline":
        return FluidSynthBackend(None, sample_rate=sample_rate, period=period, soundfont=soundfont,
                                 reverb=reverb)
    if backend == "auto":
        drivers = [d for d in PLATFORM_DRIVERS.get(sys.platform, ())
                   if d != "jack" or jack_server_running()]
    else:
        drivers = [backend]
    try:
        if not drivers:
            raise DeviceError("no audio driver to try on this platform")
        return FluidSynthBackend(drivers, sample_rate=sample_rate, period=period,
                                 soundfont=soundfont, client_name=client_name,
                                 midi_driver="jack" if midi_thru else None,
                                 autoconnect=autoconnect, reverb=reverb)
    except DeviceError as exc:
        if fallback_null:
            log.warning("%s: playing silently", exc)
            silent = NullBackend(sample_rate, period)
            silent.reason = str(exc)  # what was tried, for the one line a front-end shows
            return silent
        if backend != "auto":
            raise
        raise DeviceError("no audio device: tried " + (", ".join(drivers) or "nothing")
                          + "; start JACK (`jackd -d dummy -r 48000 -p 128`) or use "
                          "--backend null") from None
