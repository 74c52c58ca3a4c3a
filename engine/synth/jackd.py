"""A private JACK server for measurements and tests: jackd on the dummy driver (no sound card,
a period's worth of frames every period on a timer), under a name of its own so it never meets
another server on the machine, stopped (SIGTERM, then SIGKILL) when done."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time



def terminate(proc: subprocess.Popen | None, timeout_s: float = 5.0) -> None:
    """Stop a child process politely: SIGTERM, then SIGKILL if it has not exited within
    `timeout_s`. Nothing to do for None or a process that has already exited."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)

class PrivateJackd:
    """`with PrivateJackd("pmn-test-1", period=256) as server:` runs clients with `server.env`
    (JACK_DEFAULT_SERVER set to the server's name, JACK_NO_START_SERVER=1). `start()` returns
    False with `error` set when jackd is missing or does not come up within `timeout_s`."""

    def __init__(self, name: str, period: int = 128, sample_rate: int = 48000,
                 timeout_s: float = 10.0) -> None:
        self.name, self.period, self.sample_rate = name, int(period), int(sample_rate)
        self.timeout_s = timeout_s
        self.env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        self.proc: subprocess.Popen | None = None
        self.error = ""

    def start(self) -> bool:
        jackd, lsp = shutil.which("jackd"), shutil.which("jack_lsp")
        if jackd is None or lsp is None:
            self.error = "jackd is not installed (apt-get install jackd2)"
            return False
        log = tempfile.TemporaryFile()  # what jackd says, for the error if it fails
        self.proc = subprocess.Popen([jackd, "-n", self.name, "-d", "dummy", "-r",
                                      str(self.sample_rate), "-p", str(self.period)],
                                     stdout=subprocess.DEVNULL, stderr=log, env=self.env)
        deadline = time.monotonic() + self.timeout_s
        with log:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    log.seek(0)
                    said = log.read().decode("utf-8", "replace").strip()
                    self.error = "jackd did not start: " + (said[-300:] or "no message")
                    return False
                r = subprocess.run([lsp], env=self.env, capture_output=True, text=True)
                if r.returncode == 0 and "system:playback_1" in r.stdout:
                    return True
                time.sleep(0.1)
        self.stop()
        self.error = f"jackd did not come up in {self.timeout_s:g} s"
        return False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        terminate(self.proc)

    def __enter__(self) -> PrivateJackd:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
