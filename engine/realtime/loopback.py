"""A JACK measuring rig: one client plays MIDI at exact frames, another records audio.

Used by `popmusicnet bench live` and tests/test_jack_live.py. Run it as its own process
(`python -m engine.realtime.loopback PLAN.json OUT.npz`) so that its Python process callbacks
are not disturbed by the engine's threads, nor disturb them.

Two clients, not one: "probe-midi" -> (the app) -> "probe-rec" has no cycle in the JACK graph, so
JACK orders them player, app, recorder within each period and everything happens in one cycle.

Frames are JACK frame times: an event written at offset o of the period starting at frame L is at
L + o; a recorded sample i of the period starting at L is at L + i. The recording is saved
relative to the first event frame minus `pre_s`.

Inside the process callbacks: no allocation beyond jack-client's buffers, no locks, no logging;
the plan and the recording array are prepared before activation.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def plan_notes(n: int, spacing_s: float, pitch_cycle=(72, 74, 76, 77, 79), velocity: int = 110,
               hold_s: float = 0.05, jitter_frames: int = 0, seed: int = 0,
               sample_rate: int = 48000) -> list[tuple[int, list[int]]]:
    """(frame offset, message) pairs: n notes `spacing_s` apart (plus a deterministic jitter so
    events fall at every offset within a period)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        f = int(round(k * spacing_s * sample_rate))
        if jitter_frames:
            f += int(rng.integers(0, jitter_frames))
        p = pitch_cycle[k % len(pitch_cycle)]
        out.append((f, [0x90, p, velocity]))
        out.append((f + int(hold_s * sample_rate), [0x80, p, 0]))
    return out


def run(plan: dict, out_path: str | Path) -> dict:
    """Play `plan["events"]` into `plan["midi_to"]` ports and record `plan["record_from"]`.

    Returns and saves (npz): audio (frames, channels) float32, event_frames (note-on frames,
    relative to the recording start), xruns, and the absolute start frame.
    """
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    import jack

    sr_events = sorted((int(f), list(m)) for f, m in plan["events"])
    pre_s, post_s = float(plan.get("pre_s", 0.5)), float(plan.get("post_s", 0.5))
    player = jack.Client(plan.get("name", "probe") + "-midi", no_start_server=True)
    recorder = jack.Client(plan.get("name", "probe") + "-rec", no_start_server=True)
    sr, bs = player.samplerate, player.blocksize
    outport = player.midi_outports.register("out")
    n_in = len(plan["record_from"])
    inports = [recorder.inports.register(f"in_{i + 1}") for i in range(n_in)]
    last_event = sr_events[-1][0] if sr_events else 0
    total = int((pre_s + post_s) * sr) + last_event + bs
    audio = np.zeros((total, max(n_in, 1)), np.float32)
    frames = np.array([f for f, _ in sr_events], np.int64)
    msgs = [bytes(m) for _, m in sr_events]
    state = {"start": None, "i": 0, "done": False, "xruns": 0, "go": False}
    pre = int(pre_s * sr)

    @player.set_process_callback
    def play(n_frames):
        outport.clear_buffer()
        start = state["start"]
        if start is None:
            return
        last = player.last_frame_time
        i = state["i"]
        while i < len(frames):
            f = start + pre + frames[i]
            if f >= last + n_frames:
                break
            outport.write_midi_event(max(int(f - last), 0), msgs[i])
            i += 1
        state["i"] = i

    @recorder.set_process_callback
    def record(n_frames):
        start = state["start"]
        if start is None:
            if state["go"]:
                state["start"] = recorder.last_frame_time + 4 * n_frames  # both clients see it
            return
        pos = recorder.last_frame_time - start
        if pos < 0:
            return
        if pos + n_frames > total:
            state["done"] = True
            return
        for c, port in enumerate(inports):
            audio[pos:pos + n_frames, c] = port.get_array()

    @player.set_xrun_callback
    def xrun(delay):
        state["xruns"] += 1

    player.activate()
    recorder.activate()
    try:
        for dst in plan.get("midi_to", []):
            player.connect(outport, dst)
        # Wait (bounded) for the app: its audio ports to record, and the connections it makes to
        # our MIDI port (its MIDI input and its synth's thru input).
        wait_until = time.monotonic() + float(plan.get("wait_s", 30.0))
        want = int(plan.get("wait_connections", 0))
        connected = [False] * n_in
        while time.monotonic() < wait_until:
            for c, src in enumerate(plan["record_from"]):
                if not connected[c] and recorder.get_ports(src):
                    try:  # the port can exist before its client is active: retry
                        recorder.connect(src, inports[c])
                        connected[c] = True
                    except jack.JackError:
                        pass
            if all(connected) and len(player.get_all_connections(outport)) >= want:
                break
            time.sleep(0.05)
        else:
            raise TimeoutError("the app did not connect in time: recording "
                               f"{connected}, MIDI connections "
                               f"{[p.name for p in player.get_all_connections(outport)]}")
        time.sleep(float(plan.get("settle_s", 0.3)))  # measured: ports carry data ~100 ms after connecting
        state["go"] = True
        deadline = time.monotonic() + total / sr + 10.0
        while not state["done"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        recorder.deactivate()
        player.deactivate()
        recorder.close()
        player.close()
    on_frames = np.array([pre + f for f, m in sr_events if (m[0] & 0xF0) == 0x90 and m[2] > 0],
                         np.int64)
    result = {"audio": audio, "event_frames": on_frames, "xruns": state["xruns"],
              "sample_rate": sr, "blocksize": bs, "complete": state["done"]}
    np.savez(out_path, **result)
    return result


def onset_latencies(audio: np.ndarray, event_frames: np.ndarray, *, period: int = 128,
                    threshold: float = 1e-2, quiet: float = 5e-3,
                    window: int = 9600) -> tuple[np.ndarray, int]:
    """Frames from each MIDI event to the first rise of the recording above `threshold` (-40 dBFS).

    The search starts two periods (+ one block) *before* the event: FluidSynth takes the MIDI of
    a period at the period's start, so its sound can begin before the event's frame within that
    period (a real keyboard's events reach JACK one period after they happen; the bench adds that
    back). Events whose recording is not quiet (< `quiet`) just before the search window (a
    previous tail) are ambiguous and counted as missing, as are events with no rise.
    Returns (latencies in frames, n_missing).
    """
    mono = np.abs(audio).max(axis=1)
    lats, missing = [], 0
    back = 2 * period + 64
    for f in event_frames:
        lo = int(f) - back
        if lo - 256 < 0 or f + window > len(mono):
            missing += 1
            continue
        if mono[lo - 256:lo].max() >= quiet:
            missing += 1
            continue
        loud = np.flatnonzero(mono[lo:f + window] > threshold)
        if loud.size == 0:
            missing += 1
            continue
        lats.append(int(loud[0]) - back)
    return np.asarray(lats, np.int64), missing


def main(argv: list[str]) -> int:
    plan = json.loads(Path(argv[0]).read_text())
    res = run(plan, argv[1])
    print(json.dumps({"xruns": res["xruns"], "complete": res["complete"],
                      "frames": int(len(res["audio"]))}))
    return 0


if __name__ == "__main__":  # pragma: no cover - a helper process
    sys.exit(main(sys.argv[1:]))


__all__ = ["plan_notes", "run", "onset_latencies"]
