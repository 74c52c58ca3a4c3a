"""A JACK client without audio: counts xruns, notices the server going away, connects ports.

It has no process callback, so it adds nothing to the audio graph's work; its callbacks run on
JACK's notification thread (not the realtime thread) and only bump counters / set flags.
"""

from __future__ import annotations

import logging
import os
import threading

from engine.errors import DeviceError

log = logging.getLogger(__name__)


class JackMonitor:
    def __init__(self, name: str = "popmusicnet-monitor") -> None:
        os.environ.setdefault("JACK_NO_START_SERVER", "1")
        try:
            import jack
        except (ImportError, OSError) as exc:
            raise DeviceError(f"JACK-Client is not usable: {exc}") from exc
        self._jack = jack
        try:
            self.client = jack.Client(name, no_start_server=True)
        except jack.JackError as exc:
            raise DeviceError(f"no JACK server: {exc}") from exc
        self.xruns = 0
        self.shutdown = threading.Event()
        self.shutdown_reason = ""
        self.client.set_xrun_callback(self._on_xrun)
        self.client.set_shutdown_callback(self._on_shutdown)
        self.client.activate()
        self.sample_rate = self.client.samplerate
        self.blocksize = self.client.blocksize

    def _on_xrun(self, delay_usecs: float) -> None:
        self.xruns += 1

    def _on_shutdown(self, status, reason: str) -> None:
        self.shutdown_reason = str(reason)
        self.shutdown.set()

    def frame_time(self) -> int:
        return int(self.client.frame_time)

    def connect(self, source: str, destination: str) -> bool:
        """Connect two ports by full name; True if connected (already connected counts)."""
        if self.shutdown.is_set():
            return False
        try:
            self.client.connect(source, destination)
            return True
        except self._jack.JackErrorCode as exc:
            if "already" in str(exc).lower():
                return True
            log.warning("could not connect %s -> %s: %s", source, destination, exc)
            return False
        except self._jack.JackError as exc:
            log.warning("could not connect %s -> %s: %s", source, destination, exc)
            return False

    def is_connected(self, source: str, destination: str) -> bool:
        try:
            return any(p.name == destination
                       for p in self.client.get_all_connections(source))
        except self._jack.JackError:
            return False

    def close(self) -> None:
        if self.shutdown.is_set():
            return  # the server is gone: closing would talk to a dead socket
        try:
            self.client.deactivate()
            self.client.close()
        except self._jack.JackError:
            pass
