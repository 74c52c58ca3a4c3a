"""`popmusicnet bench live`: the live engine measured in a real JACK loop.

1. Note-on -> sound latency. A separate process (engine.realtime.loopback) holds two JACK clients:
   one writes note-ons at exact frames into `popmusicnet live` (a subprocess, its keyboard port
   fanned out to FluidSynth's own MIDI input), the other records its audio. Latency = first rise of
   the recording above -40 dBFS minus the event's frame ("raw"; FluidSynth takes a period's MIDI
   at the period's start, so raw can be negative within a period). The end-to-end estimate adds
   what a real setup adds around the graph: one period of MIDI capture (a keyboard's event reaches
   JACK one period after it happens) and the server's playback latency. Three runs: the design
   (thru in C) idle, the design with a busy Python thread in the engine process (the studio's GUI
   load), and, for comparison, thru from the Python MIDI callback with that busy thread.
2. Accompaniment timing at several tempos (default 60/120/240 BPM, `--seconds` each): the engine
   in this process with a busy Python thread beside it and a simulated player feeding a melody;
   late events, skipped bars, the smallest margin left before a bar's first note, xruns, CPU.
3. Inference time per bar (accompany_next + observe) on the chosen ONNX Runtime provider.

Needs jackd (a private dummy server is started and stopped when none runs) and an accompanist
model for parts 2 and 3 (skipped with the reason otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from engine.synth.jackd import PrivateJackd, terminate

NAME = "live"
HELP = ("live engine: note-on to sound latency in a JACK loop, accompaniment timing, xruns, CPU, "
        "inference time per bar")
ROOT = Path(__file__).resolve().parents[3]


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--notes", type=int, default=500, help="notes for the latency run (default 500)")
    p.add_argument("--compare-notes", type=int, default=100,
                   help="notes for the two runs with a busy thread (default 100)")
    p.add_argument("--spacing", type=float, default=0.15, help="seconds between notes (0.15)")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="length of each accompaniment-timing run (default 60 s; --seconds 600 "
                        "for ten-minute runs)")
    p.add_argument("--tempos", default="60,120,240", help="BPMs for the timing runs")
    p.add_argument("--model", help="accompanist model (default: the bundled one)")
    p.add_argument("--providers", default="cpu", choices=["cpu", "cuda", "auto"],
                   help="ONNX Runtime provider for the model (default cpu)")
    p.add_argument("--buffer", type=int, default=128, help="JACK period of a private server")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--skip-timing", action="store_true")
    p.add_argument("--no-results", action="store_true", help="do not write docs/RESULTS.md")


# -- JACK server -------------------------------------------------------------------------------
class _Server:
    """Use the running JACK server, or start a private dummy one (and stop it at the end)."""

    def __init__(self, period: int) -> None:
        from engine.synth.live import jack_server_running

        self.private = None
        self.env = dict(os.environ, JACK_NO_START_SERVER="1", PYTHONUNBUFFERED="1")
        self.reason = ""
        if jack_server_running():
            self.how = "running server"
            return
        self.private = PrivateJackd(f"pmn-bench-{os.getpid()}", period)
        self.how = f"private dummy server ({period} frames)"
        if not self.private.start():
            self.reason = self.private.error
            return
        self.env.update(self.private.env, PYTHONUNBUFFERED="1")
        os.environ["JACK_DEFAULT_SERVER"] = self.private.name  # this process's engine runs

    @property
    def ok(self) -> bool:
        return not self.reason

    def info(self) -> dict:
        import re

        import jack

        c = jack.Client("pmn-bench-info", no_start_server=True)
        try:
            sr, period = c.samplerate, c.blocksize
        finally:
            c.close()
        # JACK-Client 0.5 has no latency query for other clients' ports: ask jack_lsp.
        playback = 0
        try:
            out = subprocess.run(["jack_lsp", "-l", "system:playback_1"], env=self.env,
                                 capture_output=True, text=True, timeout=5).stdout
            m = re.search(r"playback latency = \[ *(\d+) +(\d+) *\]", out)
            playback = int(m.group(2)) if m else 0
        except (OSError, subprocess.SubprocessError):
            pass
        return {"sample_rate": sr, "period": period, "playback_latency": playback}

    def close(self) -> None:
        if self.private is not None:
            self.private.stop()


class _ReferenceServer:
    """A second private dummy JACK server with nothing on it but an xrun counter, run during a
    timing run: its xruns are what this machine's scheduling costs a JACK server by itself, the
    floor the engine's own server cannot go below. None when it cannot start."""

    def __init__(self, period: int) -> None:
        import jack

        self.name = f"pmn-ref-{os.getpid()}"
        self.xruns = 0
        self.client = None
        self.server = PrivateJackd(self.name, period)
        if not self.server.start():
            return
        try:
            self.client = jack.Client("pmn-ref-monitor", servername=self.name,
                                      no_start_server=True)
        except jack.JackError:
            self.close()
            return
        self.client.set_xrun_callback(self._on_xrun)
        self.client.activate()

    def _on_xrun(self, delay_usecs: float) -> None:
        self.xruns += 1

    @property
    def ok(self) -> bool:
        return self.client is not None

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.deactivate()
                self.client.close()
            except Exception:  # the server may be gone already: nothing left to release
                pass
        self.server.stop()


def _bench_soundfont():
    """TimGM6mb from pretty_midi: a fixed, small soundfont, so runs compare (its square lead,
    program 80, reaches -40 dBFS 28 frames after a voice starts: measured offline)."""
    from engine.synth.soundfont import bundled_soundfont, find_soundfont

    return bundled_soundfont() or find_soundfont()


# -- 1. latency --------------------------------------------------------------------------------
def latency_run(server: _Server, n: int, spacing: float, thru: str, load: bool,
                workdir: Path) -> dict:
    import numpy as np

    from engine.realtime.loopback import onset_latencies, plan_notes

    info = server.info()
    period = info["period"]
    plan = {"events": plan_notes(n, spacing, hold_s=0.02, jitter_frames=period, seed=7),
            "record_from": ["pmn-live:left", "pmn-live:right"],
            "wait_connections": 2 if thru == "synth" else 1, "name": "pmn-probe", "wait_s": 30}
    plan_path, rec = workdir / f"plan-{thru}-{load}.json", workdir / f"rec-{thru}-{load}.npz"
    plan_path.write_text(json.dumps(plan))
    probe = live = None
    try:
        probe = subprocess.Popen([sys.executable, "-m", "engine.realtime.loopback",
                                  str(plan_path), str(rec)], cwd=ROOT, env=server.env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1.0)
        cmd = [sys.executable, "-m", "studio", "live", "--backend", "jack", "--midi-in",
               "pmn-probe-midi", "--no-accompaniment", "--no-metronome", "--count-in", "0",
               "--program", "80", "--no-reverb", "--quiet", "--thru", thru,
               "--soundfont", str(_bench_soundfont()),
               "--client-name", "pmn-live", "--duration", f"{n * spacing + 6:.1f}"]
        if load:
            cmd.append("--load-thread")
        live = subprocess.Popen(cmd, cwd=ROOT, env=server.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        probe_out, _ = probe.communicate(timeout=n * spacing + 60)
        live_out, _ = live.communicate(timeout=30)
    finally:
        terminate(probe)
        terminate(live)
    if probe.returncode != 0:
        raise RuntimeError(f"measuring client failed: {probe_out[-400:]}")
    data = np.load(rec)
    lats, missing = onset_latencies(data["audio"], data["event_frames"], period=period)
    sr = info["sample_rate"]
    add = period + info["playback_latency"]
    live_xruns = next((int(w.split("=")[1]) for line in live_out.splitlines()
                       if line.startswith("summary") for w in line.replace(",", " ").split()
                       if w.startswith("xruns=")), -1)

    def pct(a, q):
        return float(np.percentile(a, q)) * 1000.0 / sr if len(a) else float("nan")

    return {"thru": thru, "load": load, "notes": n, "heard": int(len(lats)),
            "missing": int(missing), "raw_p50": pct(lats, 50), "raw_p99": pct(lats, 99),
            "raw_max": pct(lats, 100), "e2e_p50": pct(lats + add, 50),
            "e2e_p99": pct(lats + add, 99), "e2e_max": pct(lats + add, 100),
            "jitter_ms": float(np.std(lats)) * 1000.0 / sr if len(lats) else float("nan"),
            "probe_xruns": int(data["xruns"]), "live_xruns": live_xruns,
            "added_ms": add * 1000.0 / sr}


# -- 2. accompaniment timing -------------------------------------------------------------------
def timing_run(bpm: float, seconds: float, model: str | None, providers: str,
               reference_period: int | None = 128) -> dict:
    """reference_period: also run an idle reference server with this period (None: no)."""
    from engine.realtime.engine import LiveConfig, LiveEngine
    from engine.realtime.midi import NOTE_OFF, NOTE_ON, MidiEvent
    from studio.cli.commands.live import busy_python

    cfg = LiveConfig(bpm=bpm, model=model, providers=providers, backend="jack",
                     use_midi_in=False, thru="python", metronome=True, count_in_bars=1,
                     client_name="pmn-timing")
    eng = LiveEngine(cfg)
    eng.start()
    st = eng.status()
    if not st.accompaniment == "on":
        eng.stop()
        return {"bpm": bpm, "error": st.accompaniment}
    ref = _ReferenceServer(reference_period) if reference_period else None
    stop = threading.Event()
    load = threading.Thread(target=busy_python, args=(stop,), daemon=True)
    load.start()
    # A player: eighth notes of a C major scale, fed as the MIDI thread would.
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    eighth = 30.0 / bpm
    t0, cpu0, k = time.monotonic(), time.process_time(), 0
    try:
        while time.monotonic() - t0 < seconds and not eng.wait(0):
            p = scale[k % len(scale)]
            eng.feed(MidiEvent(eng.synth.frames(), NOTE_ON, 0, p, 90))
            time.sleep(eighth * 0.8)
            eng.feed(MidiEvent(eng.synth.frames(), NOTE_OFF, 0, p, 0))
            time.sleep(eighth * 0.2)
            k += 1
        wall = time.monotonic() - t0
        proc_cpu = time.process_time() - cpu0
    finally:
        stop.set()
        st = eng.status()
        eng.stop()
        ref_xruns = ref.xruns if ref is not None and ref.ok else -1
        if ref is not None:
            ref.close()
    s = eng.stats
    sr = eng.synth.sample_rate
    leads = sorted(s.lead_frames)
    return {"bpm": bpm, "seconds": wall, "bars": st.bars_accompanied + st.skipped,
            "accompanied": st.bars_accompanied, "late": s.late, "skipped": s.skipped,
            "xruns": st.xruns, "reference_xruns": ref_xruns, "min_lead_ms": leads[0] * 1000.0 / sr if leads else float("nan"),
            "engine_cpu_pct": 100.0 * s.engine_cpu_s / wall,
            "process_cpu_pct": 100.0 * proc_cpu / wall, "provider": st.provider,
            "model": st.model, "inference_ms": list(s.inference_ms)}


# -- 3. inference per bar ----------------------------------------------------------------------
def inference_run(model: str | None, providers: str, bars: int = 300) -> dict:
    import numpy as np

    from engine.music import Note
    from engine.realtime.accompaniment import load_accompanist

    acc = load_accompanist(model, providers)
    sess = acc.session(seed=0)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(bars):
        notes = [Note(i * 240, i * 240 + 200, int(rng.integers(60, 76))) for i in range(8)]
        t = time.perf_counter()
        sess.accompany_next(1920, 480, pending=notes[:6])
        sess.observe(notes, 1920, 480)
        times.append((time.perf_counter() - t) * 1000.0)
    a = np.asarray(times[10:])
    return {"model": acc.name, "provider": acc.provider, "bars": len(a),
            "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99))}


def _gpu_note(providers: str) -> str:
    """This machine's GPU state as ONNX Runtime sees it, and what the run measured on it."""
    try:
        import onnxruntime as ort

        avail = ort.get_available_providers()
    except ImportError:
        return "onnxruntime is not importable"
    from engine.models.runtime import cuda_usable

    listed = (f"ONNX Runtime lists {', '.join(avail)}; only a session's get_providers() is "
              "trusted (the provider named on each row).")
    if not cuda_usable():
        gpu = f"No usable GPU here ({cuda_usable.reason}): CUDA per-bar inference not measured"
    elif providers == "cpu":
        gpu = "A GPU is usable here: `--providers cuda` measures per-bar inference on it"
    else:
        gpu = f"A GPU is usable here and the rows above asked for --providers {providers}"
    return f"{listed} {gpu}; the live engine runs the model on CPU by default (--providers)."


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from engine.errors import UserInputError

    try:
        tempos = [float(t) for t in args.tempos.split(",") if t.strip()]
    except ValueError:
        raise UserInputError(f"--tempos must be comma-separated numbers, got {args.tempos!r}")
    if args.notes < 10 or args.compare_notes < 0 or args.seconds <= 0:
        raise UserInputError("--notes must be >= 10, --compare-notes >= 0, --seconds > 0")
    lines = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    server = _Server(args.buffer)
    lat_rows, timing_rows, inf = [], [], None
    try:
        if not server.ok:
            say(f"JACK: {server.reason}: latency and timing not measured")
        else:
            info = server.info()
            say(f"JACK: {server.how}, {info['sample_rate']} Hz, period {info['period']} frames "
                f"({info['period'] * 1000 / info['sample_rate']:.2f} ms), playback latency "
                f"{info['playback_latency']} frames")
        if server.ok and not args.skip_latency:
            with tempfile.TemporaryDirectory() as tmp:
                runs = [("synth", False, args.notes)]
                if args.compare_notes:
                    runs += [("synth", True, args.compare_notes),
                             ("python", True, args.compare_notes)]
                for thru, load, n in runs:
                    r = latency_run(server, n, args.spacing, thru, load, Path(tmp))
                    lat_rows.append(r)
                    say(f"latency thru={thru:<6} load={'busy' if load else 'idle'} "
                        f"n={r['heard']}/{n}: raw p50 {r['raw_p50']:.2f} p99 {r['raw_p99']:.2f} "
                        f"max {r['raw_max']:.2f} ms; end-to-end p50 {r['e2e_p50']:.2f} "
                        f"p99 {r['e2e_p99']:.2f} max {r['e2e_max']:.2f} ms; jitter "
                        f"{r['jitter_ms']:.2f} ms; xruns live {r['live_xruns']} probe "
                        f"{r['probe_xruns']}")
        if server.ok and not args.skip_timing:
            for bpm in tempos:
                r = timing_run(bpm, args.seconds, args.model, args.providers, args.buffer)
                timing_rows.append(r)
                if "error" in r:
                    say(f"timing {bpm:g} BPM: not measured ({r['error']})")
                    break
                inf_ms = np.asarray(r["inference_ms"]) if r["inference_ms"] else np.zeros(1)
                say(f"timing {bpm:g} BPM {r['seconds']:.0f} s: bars {r['bars']} late={r['late']} "
                    f"skipped={r['skipped']} xruns={r['xruns']} (idle reference server "
                    f"{r['reference_xruns']}) min margin "
                    f"{r['min_lead_ms']:.1f} ms; engine thread CPU {r['engine_cpu_pct']:.1f}%, "
                    f"process {r['process_cpu_pct']:.0f}% (with the busy thread); inference "
                    f"p50 {np.percentile(inf_ms, 50):.2f} p99 {np.percentile(inf_ms, 99):.2f} ms "
                    f"on {r['provider']}")
        try:
            inf = inference_run(args.model, args.providers)
            say(f"inference per bar ({inf['model']}, {inf['provider']}, {inf['bars']} bars): "
                f"p50 {inf['p50_ms']:.2f} ms, p99 {inf['p99_ms']:.2f} ms")
        except UserInputError as exc:
            say(f"inference: not measured ({exc})")
        say(_gpu_note(args.providers))
    finally:
        server.close()
    if not args.no_results:
        _write_results(args, server, lat_rows, timing_rows, inf, lines)
    return 0


def _write_results(args, server, lat_rows, timing_rows, inf, lines) -> None:
    from engine.evaluation.report import provenance, update_section

    md = ["## Live engine (`popmusicnet bench live`)", "", provenance(), "",
          f"Command: `popmusicnet bench live --notes {args.notes} --compare-notes "
          f"{args.compare_notes} --seconds {args.seconds:g} --tempos {args.tempos}`"
          f" on a JACK {getattr(server, 'how', '?')}. Targets: end-to-end p50 <= 5.3 ms, "
          "p99 <= 10 ms; late = 0, skipped = 0.", ""]
    if lat_rows:
        md += ["Note-on to sound (ms). *raw*: MIDI event frame -> first rise above -40 dBFS in "
               "the JACK recording; *end-to-end*: raw + one period of MIDI capture + the "
               f"server's playback latency (+{lat_rows[0]['added_ms']:.2f} ms).", "",
               "| thru | Python load | notes heard | raw p50 | raw p99 | raw max | e2e p50 | "
               "e2e p99 | e2e max | jitter (sd) | xruns live/probe |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in lat_rows:
            md.append(f"| {r['thru']} | {'busy thread' if r['load'] else 'idle'} | "
                      f"{r['heard']}/{r['notes']} | {r['raw_p50']:.2f} | {r['raw_p99']:.2f} | "
                      f"{r['raw_max']:.2f} | {r['e2e_p50']:.2f} | {r['e2e_p99']:.2f} | "
                      f"{r['e2e_max']:.2f} | {r['jitter_ms']:.2f} | {r['live_xruns']}/"
                      f"{r['probe_xruns']} |")
        md.append("")
    rows = [r for r in timing_rows if "error" not in r]
    if rows:
        import numpy as np

        md += ["Accompaniment timing, a busy pure-Python thread beside the engine, metronome on:",
               "", "| BPM | seconds | bars | late | skipped | xruns | xruns of an idle server beside it | "
               "min margin (ms) | engine thread CPU | inference p50 / p99 (ms) |",
               "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            a = np.asarray(r["inference_ms"]) if r["inference_ms"] else np.zeros(1)
            md.append(f"| {r['bpm']:g} | {r['seconds']:.0f} | {r['bars']} | {r['late']} | "
                      f"{r['skipped']} | {r['xruns']} | {r['reference_xruns']} | "
                      f"{r['min_lead_ms']:.1f} | "
                      f"{r['engine_cpu_pct']:.1f}% | {np.percentile(a, 50):.2f} / "
                      f"{np.percentile(a, 99):.2f} |")
        md.append("")
    elif timing_rows:
        md += [f"Accompaniment timing: not measured ({timing_rows[0]['error']}).", ""]
    if inf:
        md += [f"Inference per bar (accompany_next + observe), {inf['model']} on "
               f"{inf['provider']}: p50 {inf['p50_ms']:.2f} ms, p99 {inf['p99_ms']:.2f} ms "
               f"over {inf['bars']} bars.", ""]
    md += [_gpu_note(args.providers), "", "Raw output:", "", "```", *lines, "```"]
    update_section("bench-live", "\n".join(md))
