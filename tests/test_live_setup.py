"""Audio set-up as the runtime install has it: probing drivers quietly, and finding a JACK
server through libjack alone (the JACK-Client module comes only with the test extra)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.synth.jackd import PrivateJackd

ROOT = Path(__file__).resolve().parents[1]

# Python as `make run` installs it: the JACK-Client module is not there.
NO_JACK_MODULE = "import sys; sys.modules['jack'] = None\n"


def test_probing_audio_drivers_prints_nothing(capfd):
    from engine.synth.live import NullBackend, open_backend

    synth = open_backend("auto", fallback_null=True)
    try:
        err = capfd.readouterr().err
        noise = [ln for ln in err.splitlines()
                 if ln.startswith(("fluidsynth:", "ALSA lib", "jack", "Cannot"))]
        assert not noise, err
        if isinstance(synth, NullBackend):  # nothing opened: no driver was silently skipped
            assert err.count("\n") <= 1
    finally:
        synth.close()


def test_without_the_jack_module_no_server_is_no_server():
    code = NO_JACK_MODULE + ("import os; os.environ['JACK_DEFAULT_SERVER'] = 'pmn-none-%d'\n"
                             "from engine.synth.live import jack_server_running\n"
                             "print(jack_server_running())" % os.getpid())
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False" and out.stderr == ""


@pytest.fixture
def private_jackd():
    with PrivateJackd(f"pmn-setup-{os.getpid()}", 256) as server:
        if not server.start():
            pytest.skip(server.error)
        yield server.env


@pytest.mark.jack
def test_the_runtime_finds_jack_without_the_jack_module(private_jackd):
    code = NO_JACK_MODULE + """
from engine.synth.live import jack_server_running, open_backend
from engine.realtime.jackmon import JackMonitor
from engine.realtime.midi import api_id
import rtmidi
assert jack_server_running()
assert api_id("auto") == rtmidi.API_UNIX_JACK
synth = open_backend("auto", client_name="pmn-setup-synth")
mon = JackMonitor("pmn-setup-mon")
ok = mon.connect("system:capture_1", "system:playback_1")
print(synth.name, mon.sample_rate, ok, mon.is_connected("system:capture_1", "system:playback_1"))
mon.close()
synth.close()
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env=private_jackd, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["jack", "48000", "True", "True"]


def test_the_studio_reports_the_probe_in_one_status_line(qtbot, tmp_path, capfd):
    pytest.importorskip("pytestqt")
    sys.path.insert(0, str(Path(__file__).parent))
    from studio_fixtures import make_window

    from engine.synth.live import PLATFORM_DRIVERS

    window = make_window(qtbot, tmp_path)
    window.transport.open_player("auto")
    qtbot.waitUntil(lambda: window.transport.can_play or window.transport.player_error
                    not in ("", "opening audio..."), timeout=20_000)
    text = window.audio_label.text()
    assert "\n" not in text
    if window.transport.player is not None and window.transport.player.backend_name == "null":
        tried = [d for d in PLATFORM_DRIVERS.get(sys.platform, ()) if d != "jack"]
        assert text.startswith("No audio device (tried ") and all(d in text for d in tried)
    err = capfd.readouterr().err
    assert not [ln for ln in err.splitlines() if ln.startswith(("fluidsynth:", "ALSA lib"))]


def test_the_backend_names_offered_are_the_ones_open_backend_tries():
    from engine.synth.live import PLATFORM_DRIVERS, backend_names

    assert backend_names("linux") == ("auto", "jack", "pulseaudio", "pipewire", "alsa", "null")
    assert backend_names("darwin") == ("auto", *PLATFORM_DRIVERS["darwin"], "null")
    assert backend_names("plan9") == ("auto", "null")
