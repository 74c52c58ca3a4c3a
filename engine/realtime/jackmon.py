"""A JACK client without audio: counts xruns, notices the server going away, connects ports.

It has no process callback, so it adds nothing to the audio graph's work; its callbacks run on
JACK's notification thread (not the realtime thread) and only bump counters / set flags. It talks
to libjack through ctypes (`engine.synth.jacklib`): the runtime needs no JACK Python module.
"""

from __future__ import annotations

import logging

from engine.synth import jacklib

log = logging.getLogger(__name__)


class JackMonitor:
    def __init__(self, name: str = "popmusicnet-monitor") -> None:
        self.client = jacklib.Client(name)  # DeviceError when there is no server
        self.shutdown = self.client.shutdown
        self.sample_rate = self.client.sample_rate
        self.blocksize = self.client.blocksize

    @property
    def xruns(self) -> int:
        return self.client.xruns

    @property
    def shutdown_reason(self) -> str:
        return self.client.shutdown_reason

    def frame_time(self) -> int:
        return self.client.frame_time()

    def connect(self, source: str, destination: str) -> bool:
        """Connect two ports by full name; True if connected (already connected counts)."""
        if self.shutdown.is_set():
            return False
        ok, why = self.client.connect(source, destination)
        if not ok:
            log.warning("could not connect %s -> %s: %s", source, destination, why)
        return ok

    def is_connected(self, source: str, destination: str) -> bool:
        return destination in self.client.connections(source)

    def close(self) -> None:
        if self.shutdown.is_set():
            return  # the server is gone: closing would talk to a dead socket
        self.client.close()
