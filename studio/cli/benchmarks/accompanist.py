"""`popmusicnet bench accompanist`: the cost of accompanying one bar, on CPU, one thread.

The bars are the bundled demo melodies' 4/4 and 3/4 bars, cycled. One bar = everything the
runtime does for it (engine.evaluation.accompanist_graphs.latency): offline (melody known:
encode, every role's RNN step and decoder, the decision, re-encoding, the melody RNN step) and
live (the bar before held as the melody's guess, then replayed once the bar is observed). Each of `--runs`
runs times `--bars` bars after a warm-up; the table shows every run and the median, with the
machine's load average, since a shared machine's other jobs show up in the p99. The `latency`
harness pins the process to one CPU. `eval accompanist` measures the same on the test
melodies, beside its quality figures; this is the quick way to re-measure speed alone.
"""

from __future__ import annotations

import argparse

NAME = "accompanist"
HELP = "per-bar latency of the accompanist on one CPU thread (target p99 < 2 ms)"
TARGET_P99_MS = 2.0


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="accompanist model name or card path (default: bundled)")
    p.add_argument("--bars", type=int, default=1000, help="bars per run (default 1000)")
    p.add_argument("--runs", type=int, default=3, help="runs (default 3; the median is shown)")
    p.add_argument("--no-results", action="store_true", help="do not write docs/RESULTS.md")


def demo_bars():
    """Melody bars (notes relative to the bar start) and their lengths in ticks, resampled to
    480 ticks a beat, from the bundled demo melodies."""
    from pathlib import Path

    from engine.midi_io import read_midi
    from engine.music import Note

    bars = []
    demo = Path(__file__).resolve().parents[3] / "assets" / "demo"
    for f in sorted(demo.glob("*.mid")):
        song = read_midi(f)
        mel = song.melody_track()
        if mel is None:
            continue
        scale = 480 / song.ticks_per_beat
        for s, e, meter in song.bars(mel.end):
            notes = [Note(round((n.start - s) * scale), round((min(n.end, e) - s) * scale),
                          n.pitch, n.velocity) for n in mel.notes if s <= n.start < e]
            # whole bars of two beats or more (a pickup bar says little about the cost)
            full = meter.bar_ticks(song.ticks_per_beat) == e - s
            if notes and full and e - s >= 2 * song.ticks_per_beat:
                bars.append((notes, round((e - s) * scale)))
    return bars


def run(args: argparse.Namespace) -> int:
    import json
    import statistics

    from engine.errors import UserInputError
    from engine.evaluation.accompanist_graphs import latency
    from engine.models.accompanist import Accompanist

    if args.bars < 10 or args.runs < 1:
        raise UserInputError("--bars must be >= 10 and --runs >= 1")
    model = Accompanist.load(args.model, providers="cpu")
    bars = demo_bars()
    if not bars:
        raise UserInputError("no melody bars in assets/demo")
    by_len: dict[int, list] = {}
    for notes, ticks in bars:
        by_len.setdefault(ticks, []).append(notes)
    runs = []
    for i in range(args.runs):
        res = {}
        for ticks, group in sorted(by_len.items(), reverse=True):
            got = latency(model, group, args.bars, bar_ticks=ticks, tpb=480)
            res[ticks] = got
        runs.append(res)
        print(json.dumps({"event": "run", "run": i, **{
            f"{t // 480}/4": {k: round(v, 3) for k, v in r.items()} for t, r in res.items()}}),
            flush=True)
    lines = _markdown(model.name, model.provider, runs, args)
    print("\n".join(lines))
    if not args.no_results:
        from engine.evaluation.report import update_section

        print(f"wrote {update_section('bench-accompanist', chr(10).join(lines))}")
    worst = max(statistics.median(r[t]["offline_p99_ms"] for r in runs) for t in runs[0])
    print(f"median offline p99 {worst:.2f} ms: target < {TARGET_P99_MS:g} ms "
          f"{'met' if worst < TARGET_P99_MS else 'NOT met'}")
    return 0


def _markdown(name: str, provider: str, runs: list[dict], args) -> list[str]:
    import os
    import statistics

    from engine.evaluation.report import provenance

    lines = ["### Accompanist per bar (`popmusicnet bench accompanist`)", "", provenance(), "",
             f"Model `{name}` on {provider}, one intra-op thread, process pinned to one CPU; "
             f"{args.bars} bars per run after 20 warm-up bars, demo melody bars cycled. "
             f"Target: p99 < {TARGET_P99_MS:g} ms. Load average: "
             f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end.", "",
             "| meter | run | offline p50 (ms) | offline p99 (ms) | live p50 (ms) | "
             "live p99 (ms) | load average |", "|---|---|---|---|---|---|---|"]
    keys = ("offline_p50_ms", "offline_p99_ms", "live_p50_ms", "live_p99_ms")
    for t in runs[0]:
        meter = f"{t // 480}/4"
        for i, r in enumerate(runs):
            v = r[t]
            lines.append(f"| {meter} | {i + 1} | " + " | ".join(f"{v[k]:.2f}" for k in keys)
                         + f" | {v['load_average']:.1f} |")
        med = [statistics.median(r[t][k] for r in runs) for k in keys]
        lines.append(f"| {meter} | **median** | " + " | ".join(f"**{x:.2f}**" for x in med)
                     + " | |")
    return lines
