"""The live session's devices besides the synth: the JACK monitor (xruns, server shutdown, port
connections), the MIDI input and output ports, and how the played melody reaches the synth
(`thru`: "synth" when JACK fans the keyboard's port out to FluidSynth's own MIDI input, "python"
when the engine sounds each note itself, or "off")."""

from __future__ import annotations

import logging
import time

from engine.errors import DeviceError
from engine.realtime.midi import STOP, MidiInput, MidiOutput

log = logging.getLogger(__name__)


class Devices:
    """Opened by the engine's start (monitor first, then the MIDI ports), polled by the engine
    thread, closed by its stop. `fake_in`/`fake_out`: rtmidi-like objects for tests."""

    def __init__(self, config, stats, fake_in=None, fake_out=None) -> None:
        self.config, self.stats = config, stats
        self._fake_in, self._fake_out = fake_in, fake_out
        self.monitor = None
        self.midi_input: MidiInput | None = None
        self.midi_output: MidiOutput | None = None
        self.thru = "off"
        self._last_poll = 0.0

    def open_monitor(self, synth) -> None:
        if synth.name != "jack":
            return
        from engine.realtime.jackmon import JackMonitor

        try:
            self.monitor = JackMonitor(f"{self.config.client_name}-monitor")
        except DeviceError as exc:
            log.warning("no JACK monitor (xruns not counted): %s", exc)

    def open_midi(self, synth, clock, feed) -> None:
        """The MIDI input (its events go to `feed` on rtmidi's thread), the melody thru, and the
        MIDI output."""
        cfg = self.config
        if cfg.use_midi_in:
            # The input is a client of its own: under the synth's name, JACK would call it
            # "popmusicnet-01" beside the synth's own MIDI input "popmusicnet:midi_00", and a
            # keyboard connected to the wrong one plays without being accompanied.
            self.midi_input = MidiInput(cfg.midi_in, feed, clock, api=cfg.midi_api,
                                        client_name=f"{cfg.client_name}-in", midi_in=self._fake_in,
                                        exclude=(cfg.client_name, f"{cfg.client_name}-out"),
                                        sample_rate=synth.sample_rate)
        self.thru = self._setup_thru(synth)
        if cfg.midi_out:
            self.midi_output = MidiOutput(clock, synth.sample_rate, api=cfg.midi_api,
                                          client_name=f"{cfg.client_name}-out",
                                          midi_out=self._fake_out)

    def _setup_thru(self, synth) -> str:
        mode = self.config.thru
        if mode in ("off", "python"):
            return mode
        port = self.midi_input.port_name if self.midi_input else None
        dest = synth.midi_input_port
        if self.monitor is not None and port and dest and self.monitor.connect(port, dest):
            return "synth"
        if mode == "synth":
            raise DeviceError("melody thru to the synth's MIDI input needs JACK and a MIDI input "
                              "port (use --thru python otherwise)")
        return "python"

    @property
    def jack_stopped(self) -> bool:
        return self.monitor is not None and self.monitor.shutdown.is_set()

    @property
    def xruns(self) -> int:
        return self.monitor.xruns if self.monitor else 0

    def input_state(self) -> str:
        mi = self.midi_input
        return "" if mi is None else (f"{mi.state} {mi.port_name}" if mi.port_name else mi.state)

    def poll(self, synth) -> str | None:
        """Every `port_poll_s`: has the MIDI input port "vanished" or "returned" (None: no
        change)? A returned port is connected to the synth again when the thru is JACK's."""
        if self.midi_input is None:
            return None
        t = time.monotonic()
        if t - self._last_poll < self.config.port_poll_s:
            return None
        self._last_poll = t
        change = self.midi_input.poll()
        if change == "vanished":
            self.stats.notice(f"MIDI input {self.midi_input.port_name} vanished: playing what "
                              "is scheduled, waiting for it to return")
        elif change == "returned":
            self.stats.notice(f"MIDI input {self.midi_input.port_name} is back", error=False)
            if self.thru == "synth":
                self.monitor.connect(self.midi_input.port_name, synth.midi_input_port)
        return change

    def close(self, synth, owns_synth: bool) -> None:
        """Close the ports (a MIDI stop first, unless JACK is gone), silence the synth (closing
        it when the engine opened it), then the monitor."""
        jack_dead = self.jack_stopped
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
        if synth is not None:
            try:
                synth.cancel_scheduled()
                synth.all_notes_off()
            except Exception:
                log.debug("silencing synth", exc_info=True)
            if owns_synth:
                synth.close()
        if self.monitor is not None:
            self.monitor.close()
