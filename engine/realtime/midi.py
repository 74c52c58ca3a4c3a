"""MIDI ports through python-rtmidi, with an explicit API, typed events and port following.

One facade for MIDI. Raw bytes become typed `MidiEvent`s on rtmidi's own thread
(note-on with velocity 0 is a note-off), stamped with the engine's sample clock, and go to
a callback that must not block (the engine's puts them on a bounded queue).

APIs: "jack" (Linux without an ALSA sequencer, or with JACK running), "alsa", "coremidi", "winmm",
or "auto" (JACK when a server runs, else the platform's native API). Ports are opened by index or by
a case-insensitive substring of their name; without a port a *virtual* input is opened (not on
Windows) for other programs to connect to.

Port following: `MidiInput.poll()` (the engine calls it on a timer, every `poll_s`) compares the
port list with the open port; when the port disappears the input closes and the state says so;
when a port of that name reappears it is opened again. No restart.

Reading: a small thread of our own drains rtmidi's queue (`get_message`) every millisecond rather
than registering an rtmidi callback. With the JACK API, RtMidi calls a user callback inside JACK's
realtime process thread, and python-rtmidi's callback must first take the GIL, which any busy
Python thread holds for up to its 5 ms switch interval: the whole JACK graph then misses its
period (an xrun) whenever a note arrives. Queued, the realtime thread only copies bytes. Messages
that waited in the queue together are stamped backwards from now by RtMidi's delta times, so they
keep their spacing.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import DeviceError

log = logging.getLogger(__name__)

NOTE_ON, NOTE_OFF, CONTROL = "note_on", "note_off", "control"
CLOCK, START, STOP = 0xF8, 0xFA, 0xFC


@dataclass(frozen=True, slots=True)
class MidiEvent:
    """A typed MIDI event with the sample frame it arrived at (the engine's clock)."""

    frame: int
    kind: str  # NOTE_ON | NOTE_OFF | CONTROL
    channel: int
    data1: int  # pitch or controller
    data2: int = 0  # velocity or value


def parse(message, frame: int) -> MidiEvent | None:
    """Raw bytes -> MidiEvent (None for messages the engine does not use or malformed ones)."""
    if not message or len(message) < 3:
        return None
    status, d1, d2 = int(message[0]), int(message[1]) & 0x7F, int(message[2]) & 0x7F
    kind, ch = status & 0xF0, status & 0x0F
    if kind == 0x90:
        return MidiEvent(frame, NOTE_ON if d2 > 0 else NOTE_OFF, ch, d1, d2)
    if kind == 0x80:
        return MidiEvent(frame, NOTE_OFF, ch, d1, 0)
    if kind == 0xB0:
        return MidiEvent(frame, CONTROL, ch, d1, d2)
    return None


def _rtmidi():
    try:
        import rtmidi
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise DeviceError(f"python-rtmidi is not usable: {exc}") from exc
    return rtmidi


def api_id(name: str) -> int:
    """rtmidi API constant for a name; "auto" picks JACK when a server runs, else native."""
    rtmidi = _rtmidi()
    names = {"jack": rtmidi.API_UNIX_JACK, "alsa": rtmidi.API_LINUX_ALSA,
             "coremidi": rtmidi.API_MACOSX_CORE, "winmm": rtmidi.API_WINDOWS_MM}
    if name != "auto":
        if name not in names:
            raise DeviceError(f"MIDI API must be one of auto, {', '.join(names)}, got {name!r}")
        if names[name] not in rtmidi.get_compiled_api():
            raise DeviceError(f"MIDI API {name!r} is not compiled into python-rtmidi here")
        return names[name]
    if sys.platform == "darwin":
        return rtmidi.API_MACOSX_CORE
    if sys.platform == "win32":
        return rtmidi.API_WINDOWS_MM
    from engine.synth.live import jack_server_running

    if jack_server_running():
        return rtmidi.API_UNIX_JACK
    return rtmidi.API_LINUX_ALSA


def open_rtmidi(kind: str, api: str, client_name: str):
    """An rtmidi MidiIn/MidiOut on `api`, or DeviceError saying why not (e.g. no ALSA sequencer)."""
    rtmidi = _rtmidi()
    cls = rtmidi.MidiIn if kind == "in" else rtmidi.MidiOut
    try:
        return cls(rtapi=api_id(api), name=client_name)
    except (rtmidi.SystemError, RuntimeError) as exc:
        raise DeviceError(f"MIDI ({api}) is not available: {exc}; with no ALSA sequencer, start "
                          "a JACK server (`jackd -d dummy -r 48000 -p 128`)") from exc


def list_input_ports(api: str = "auto") -> list[str]:
    m = open_rtmidi("in", api, "popmusicnet-list")
    try:
        return list(m.get_ports())
    finally:
        m.delete()


def match_port(ports: list[str], want: str | int) -> int | None:
    """Index of the port named by `want`: an index (int or digits) or a name substring."""
    if isinstance(want, int) or (isinstance(want, str) and want.isdigit()):
        i = int(want)
        return i if 0 <= i < len(ports) else None
    low = want.lower()
    for i, p in enumerate(ports):
        if p.lower() == low:
            return i
    for i, p in enumerate(ports):
        if low in p.lower():
            return i
    return None


class MidiInput:
    """A MIDI input that follows its port. `handler(MidiEvent)` runs on rtmidi's thread.

    `port`: index, name substring, or None for a virtual input port. `midi_in`: an rtmidi.MidiIn
    (or a test's fake with the same methods); made from `api` when None.
    """

    def __init__(self, port: str | int | None, handler: Callable[[MidiEvent], None],
                 clock: Callable[[], int], *, api: str = "auto", client_name: str = "popmusicnet",
                 midi_in=None, exclude: tuple[str, ...] = (), sample_rate: int | None = None,
                 poll_interval: float = 0.001) -> None:
        self.want = port
        self.handler = handler
        self.clock = clock
        self.sample_rate = sample_rate  # frames per second of `clock`, for RtMidi's delta times
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.exclude = tuple(exclude) + (client_name,)
        self.midi_in = midi_in if midi_in is not None else open_rtmidi("in", api, client_name)
        self.port_name: str | None = None  # the source port we are connected to
        self.state = "closed"  # "open" | "virtual" | "vanished" | "closed"
        self.changes = 0
        if hasattr(self.midi_in, "ignore_types"):
            self.midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
        #: What other programs connect to when the input is a virtual port ("client:port").
        self.virtual_port: str | None = None
        if port is None:
            self.midi_in.open_virtual_port("in")
            self.state = "virtual"
            self.virtual_port = f"{client_name}:in"
        else:
            ports = self._ports()
            i = match_port(ports, port)
            if i is None:
                raise DeviceError(f"no MIDI input port matches {port!r}; ports: "
                                  + (", ".join(ports) or "none"))
            self._open(i, ports[i])
        self._thread = threading.Thread(target=self._pump, name="MidiInput", daemon=True)
        self._thread.start()

    def _ports(self) -> list[str]:
        return [p for p in self.midi_in.get_ports()
                if not any(p.startswith(f"{x}:") or p.startswith(f"{x} ") for x in self.exclude)]

    def _open(self, index_in_filtered: int, name: str) -> None:
        all_ports = list(self.midi_in.get_ports())
        self.midi_in.open_port(all_ports.index(name))
        self.port_name = name
        self.state = "open"
        log.info("MIDI input: %s", name)

    def _pump(self) -> None:
        """Drain rtmidi's queue until close() (see the module docstring for why not a callback).

        What one wake-up finds is stamped backwards from now: the newest message arrived within
        the last poll interval, each earlier one its RtMidi delta before the next. (Stamping
        forwards from the previous message lets the engine's clock, the synth's sample clock,
        fall behind the wall-clock deltas after an xrun: a short note's on and off then both
        landed on `now`, a zero-length note the recorder dropped.)"""
        last = self.clock()  # no message is stamped before one already delivered
        while not self._stop.is_set():
            batch = []
            while True:
                try:
                    item = self.midi_in.get_message()
                except Exception:  # the port is being closed or reopened under us
                    log.debug("get_message", exc_info=True)
                    item = None
                if item is None:
                    break
                batch.append(item)
            if not batch:
                self._stop.wait(self.poll_interval)
                continue
            frames = [self.clock()] * len(batch)
            if self.sample_rate:
                for i in range(len(batch) - 2, -1, -1):
                    frames[i] = frames[i + 1] - round(float(batch[i + 1][1]) * self.sample_rate)
            for (message, _), frame in zip(batch, frames):
                last = max(frame, last)
                ev = parse(message, last)
                if ev is None:
                    continue
                try:
                    self.handler(ev)
                except Exception:  # a handler bug must not end the input
                    log.exception("MIDI input handler failed on %s", ev)

    def poll(self) -> str | None:
        """Follow the port: returns "vanished" or "returned" when that happened, else None."""
        if self.state in ("virtual", "closed"):
            return None
        ports = self._ports()
        if self.state == "open" and self.port_name not in ports:
            try:
                self.midi_in.close_port()
            except Exception:  # the port is gone; closing may complain
                log.debug("close_port after vanish", exc_info=True)
            self.state = "vanished"
            self.changes += 1
            log.warning("MIDI input %s vanished; waiting for it to return", self.port_name)
            return "vanished"
        if self.state == "vanished":
            i = match_port(ports, self.port_name) if self.port_name else None
            if i is None and isinstance(self.want, str) and not self.want.isdigit():
                i = match_port(ports, self.want)
            if i is not None:
                self._open(i, ports[i])
                self.changes += 1
                return "returned"
        return None

    def close(self) -> None:
        # Stop reading first: no event after close.
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        try:
            self.midi_in.close_port()
        finally:
            if hasattr(self.midi_in, "delete"):
                self.midi_in.delete()
        self.state = "closed"


class MidiOutput:
    """A virtual MIDI output (accompaniment, optional melody, MIDI clock) sent at sample frames.

    Events are queued with their due frame; a small thread sends each when the clock reaches it.
    MIDI out goes to other programs, which have their own latency; the jitter here is the thread's
    wake-up (about a millisecond), measured in the bench. The synth does not depend on this path.
    """

    def __init__(self, clock: Callable[[], int], sample_rate: int, *, api: str = "auto",
                 client_name: str = "popmusicnet-out", midi_out=None) -> None:
        self.clock = clock
        self.sample_rate = sample_rate
        self.midi_out = midi_out if midi_out is not None else open_rtmidi("out", api, client_name)
        if midi_out is None:
            self.midi_out.open_virtual_port("out")
        self._heap: list[tuple[int, int, tuple[int, ...]]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._stop = False
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="MidiOutput", daemon=True)
        self._thread.start()

    def send_at(self, frame: int, message: tuple[int, ...]) -> None:
        with self._cv:
            heapq.heappush(self._heap, (int(frame), next(self._seq), tuple(message)))
            self._cv.notify()

    def send_now(self, message: tuple[int, ...]) -> None:
        self.midi_out.send_message(list(message))

    def cancel(self) -> None:
        with self._cv:
            self._heap.clear()

    def _run(self) -> None:
        while True:
            with self._cv:
                if self._stop:
                    return
                if not self._heap:
                    self._cv.wait(0.05)
                    continue
                due = self._heap[0][0]
                now = self.clock()
                if due > now:
                    self._cv.wait(min((due - now) / self.sample_rate, 0.002))
                    continue
                _, _, msg = heapq.heappop(self._heap)
            try:
                self.midi_out.send_message(list(msg))
                self.sent += 1
            except Exception:
                log.debug("MIDI out send failed", exc_info=True)

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout=1.0)
        try:
            self.midi_out.close_port()
        finally:
            if hasattr(self.midi_out, "delete"):
                self.midi_out.delete()

