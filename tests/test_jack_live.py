"""End to end on a JACK dummy server started here: a separate JACK MIDI client plays a melody into
`popmusicnet live` (a subprocess), a JACK recorder records its audio, and we find the onsets.

The server gets its own name (JACK_DEFAULT_SERVER) so it never meets another jackd on the machine;
jackd and every child are killed in `finally`, whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.synth.jackd import PrivateJackd, terminate

pytestmark = [pytest.mark.jack, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
PERIOD = 256  # roomier than the bench's 128: CI machines are shared and loaded


@pytest.fixture
def jack_server(tmp_path):
    pytest.importorskip("jack", reason="JACK-Client is not installed")
    with PrivateJackd(f"pmn-test-{os.getpid()}", PERIOD) as server:
        if not server.start():
            pytest.skip(server.error)
        yield server.proc, dict(server.env, PYTHONUNBUFFERED="1")


def _live(env, *extra, duration=12.0):
    from engine.synth.soundfont import bundled_soundfont

    cmd = [sys.executable, "-m", "studio", "live", "--backend", "jack", "--no-metronome",
           "--soundfont", str(bundled_soundfont()), "--buffer", str(PERIOD),
           "--count-in", "0", "--program", "80", "--no-reverb", "--quiet",
           "--duration", str(duration), *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _play_into_live(env, plan_path, rec, out):
    probe = live = None
    try:
        probe = subprocess.Popen([sys.executable, "-m", "engine.realtime.loopback",
                                  str(plan_path), str(rec)], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 10
        while "probe-midi:out" not in subprocess.run(["jack_lsp"], env=env, capture_output=True,
                                                      text=True).stdout:
            assert time.monotonic() < deadline, "the probe client did not appear"
            time.sleep(0.1)
        live = _live(env, "--midi-in", "probe-midi", "--no-accompaniment", "--record", str(out),
                     duration=8.0)
        probe_out, _ = probe.communicate(timeout=40)
        live_out, _ = live.communicate(timeout=30)
    finally:
        terminate(probe)
        terminate(live)
    return probe, probe_out, live, live_out


def test_melody_into_live_engine_is_heard_in_time(jack_server, tmp_path):
    from engine.midi_io import read_midi
    from engine.realtime.loopback import onset_latencies, plan_notes

    _, env = jack_server
    n = 12
    plan = {"events": plan_notes(n, 0.2, hold_s=0.02, jitter_frames=PERIOD, seed=3),
            "record_from": ["popmusicnet:left", "popmusicnet:right"], "wait_connections": 2,
            "name": "probe", "wait_s": 20}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    for attempt in (1, 2, 3):
        rec, out = tmp_path / f"rec{attempt}.npz", tmp_path / f"live{attempt}.mid"
        probe, probe_out, live, live_out = _play_into_live(env, tmp_path / "plan.json", rec, out)
        # The measuring rig's Python callbacks can be thrown out by jackd on a loaded machine
        # (seen ~1 run in 7 here: an xrun every cycle, nothing delivered, "complete": false).
        # That is the rig failing, not the engine: run it again, then judge the engine.
        if probe.returncode == 0 and '"complete": true' in probe_out:
            break
    assert probe.returncode == 0, probe_out[-500:] + "\n--- live:\n" + live_out[-1500:]
    assert live.returncode == 0, live_out
    if '"complete": false' in probe_out:
        # Three xrun storms in a row (seen on this VM with nothing else running: ~1,600 xruns
        # in the 3 s of a run): the machine cannot carry a realtime JACK loop just now, so
        # nothing about the engine can be measured. `bench live` records such storms.
        pytest.skip(f"the JACK measuring rig failed 3 times in xrun storms: {probe_out[-120:]}")
    assert '"complete": true' in probe_out, f"the measuring rig failed: {probe_out[-300:]}"
    assert "thru synth" in live_out  # the keyboard port was fanned out to FluidSynth's input
    data = np.load(rec)
    lats, missing = onset_latencies(data["audio"], data["event_frames"], period=PERIOD)
    # The recording is real time on a shared 2-core machine: a note that falls into an xrun can
    # be lost or land late. Timing targets live in `popmusicnet bench live`; here the onsets must
    # be found and sit, as a rule, within the period of their event.
    assert missing <= 3 and len(lats) >= n - 3, (lats, missing, float(np.abs(data["audio"]).max()),
                                                 probe_out[-300:], live_out[-600:])
    # FluidSynth takes a period's MIDI at the period's start: the sound starts within the
    # period of the event (plus the square wave's ~28-frame attack and one 64-frame block).
    assert -PERIOD <= np.median(lats) <= 64 + 64, lats
    song = read_midi(out)
    assert len(song.tracks[0].notes) >= n - 1


def test_jackd_stopping_ends_live_cleanly(jack_server):
    proc, env = jack_server
    live = None
    try:
        live = _live(env, "--midi-in", "none", "--no-accompaniment", duration=30.0)
        deadline = time.monotonic() + 15
        while "popmusicnet:left" not in subprocess.run(["jack_lsp"], env=env, capture_output=True,
                                                        text=True).stdout:
            assert time.monotonic() < deadline and live.poll() is None, "live did not start"
            time.sleep(0.1)
        time.sleep(0.5)
        terminate(proc)  # the server goes away mid-performance
        t0 = time.monotonic()
        out, _ = live.communicate(timeout=20)
        assert time.monotonic() - t0 < 15
    finally:
        terminate(live)
    assert live.returncode == 1, out
    assert "JACK server stopped" in out


def test_keyboard_unplugged_and_plugged_back(jack_server, monkeypatch):
    """The keyboard's JACK port goes away mid-performance and comes back: the engine says so,
    keeps running, and reconnects both its own input and FluidSynth's thru input."""
    import jack

    _, env = jack_server
    monkeypatch.setenv("JACK_DEFAULT_SERVER", env["JACK_DEFAULT_SERVER"])  # this process's client

    def keyboard():
        c = jack.Client("kbd", no_start_server=True)
        c.midi_outports.register("out")
        c.activate()
        return c

    def connections():
        out = subprocess.run(["jack_lsp", "-c", "kbd:out"], env=env, capture_output=True,
                             text=True).stdout
        return [line.strip() for line in out.splitlines()[1:]]

    kbd = keyboard()
    live = None
    try:
        live = _live(env, "--midi-in", "kbd", "--no-accompaniment", duration=25.0)
        deadline = time.monotonic() + 15
        while len(connections()) < 2:
            assert time.monotonic() < deadline and live.poll() is None, "live did not connect"
            time.sleep(0.1)
        assert any(c.startswith("popmusicnet:midi") for c in connections())  # thru in C
        kbd.deactivate()
        kbd.close()
        time.sleep(1.5)  # > the 0.5 s port poll
        kbd = keyboard()
        deadline = time.monotonic() + 10
        while len(connections()) < 2:
            assert time.monotonic() < deadline, f"not reconnected: {connections()}"
            time.sleep(0.1)
        live.send_signal(signal.SIGTERM)
        out, _ = live.communicate(timeout=15)
    finally:
        terminate(live)
        kbd.close()
    assert live.returncode == 0, out
    assert "vanished" in out and "is back" in out


def test_bench_reference_server_counts_xruns_of_its_own_and_goes_away():
    """`bench live`'s idle reference server: a second private jackd with an xrun counter."""
    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed (apt-get install jackd2)")
    pytest.importorskip("jack", reason="JACK-Client is not installed")
    from studio.cli.benchmarks.live import _ReferenceServer

    ref = _ReferenceServer(256)
    try:
        if not ref.ok:
            pytest.skip("the reference jackd did not start")
        assert ref.client.samplerate == 48000 and ref.client.blocksize == 256
        ref._on_xrun(0.0)  # the callback JACK calls
        assert ref.xruns >= 1
    finally:
        ref.close()
    assert not ref.server.running  # the server is stopped


def test_the_virtual_input_is_a_client_of_its_own_and_named(jack_server):
    """Without --midi-in the engine opens a virtual input: under a client name of its own (not
    the synth's, whose own MIDI input a keyboard would play without being accompanied), and
    the start-up lines say where to connect a keyboard."""
    _, env = jack_server
    live = None
    try:
        live = _live(env, "--no-accompaniment", duration=3.0)
        deadline = time.monotonic() + 15
        while "popmusicnet-in:in" not in subprocess.run(["jack_lsp"], env=env,
                                                        capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline and live.poll() is None, "no virtual input"
            time.sleep(0.1)
        out, _ = live.communicate(timeout=20)
    finally:
        terminate(live)
    assert live.returncode == 0, out
    assert "connect your keyboard to the MIDI input popmusicnet-in:in" in out
