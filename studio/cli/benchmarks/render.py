"""`popmusicnet bench render`: offline render speed (realtime factor) on one core.

The song is built in code: 60 s, 4 tracks (flute melody in eighths, piano chords in half notes,
electric bass in quarters, drums: kick/snare on the beats, hi-hat in eighths), 120 BPM, 4/4.
The process is pinned to one CPU; each configuration is rendered `--runs` times and the median
is reported, as CPU time (robust on a shared machine) and wall time. Realtime factor =
60 s of music / render time (the release tail is rendered but not counted as music).
"""

from __future__ import annotations

import argparse

NAME = "render"
HELP = "realtime factor of rendering a 4-track 60 s song (target >= 150x on one core)"
TARGET = 150.0


def benchmark_song():
    """The 60-second, 4-track song, deterministic."""
    import random

    from engine.music import ROLE_ACCOMPANIMENT, ROLE_MELODY, Note, Song, TempoChange, Track

    rnd = random.Random(1)
    tpb, bars = 480, 30  # 30 bars of 4/4 at 120 BPM = 60 s
    mel, chords, bass, drums = [], [], [], []
    roots = [48, 53, 55, 45]  # C F G Am
    for b in range(bars):
        s = b * 4 * tpb
        root = roots[b % 4]
        for e in range(8):
            if rnd.random() < 0.8:
                mel.append(Note(s + e * 240, s + e * 240 + 220,
                                72 + rnd.choice([0, 2, 4, 5, 7, 9]) - 5, 90))
        for h in (0, 1):
            for iv in (0, 4, 7):
                chords.append(Note(s + h * 960, s + h * 960 + 900, root + 12 + iv, 70))
        for q in range(4):
            bass.append(Note(s + q * 480, s + q * 480 + 450, root - 12, 95))
            drums.append(Note(s + q * 480, s + q * 480 + 60, 36 if q % 2 == 0 else 38, 100))
        for e in range(8):
            drums.append(Note(s + e * 240, s + e * 240 + 60, 42, 70))
    return Song(tracks=[Track("Melody", 73, role=ROLE_MELODY, notes=mel),
                        Track("Chords", 0, role=ROLE_ACCOMPANIMENT, notes=chords),
                        Track("Bass", 33, role=ROLE_ACCOMPANIMENT, notes=bass),
                        Track("Drums", 0, is_drum=True, notes=drums)],
                tempos=[TempoChange(0, 120.0)], title="bench-render")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=5, help="renders per configuration (median)")
    p.add_argument("--soundfont", action="append", metavar="SF2",
                   help="SoundFont(s) to measure (default: the one found, and pretty_midi's "
                        "TimGM6mb if different)")
    p.add_argument("--rate", type=int, default=48000, help="sample rate (default 48000)")
    p.add_argument("--timing-onsets", type=int, default=16,
                   help="random onsets measured for the note-on timing table (default 16)")
    p.add_argument("--no-results", action="store_true", help="do not write docs/RESULTS.md")


def run(args: argparse.Namespace) -> int:
    import os

    from engine.errors import UserInputError

    if args.runs < 1 or args.timing_onsets < 1:
        raise UserInputError("--runs and --timing-onsets must be >= 1")
    pinned, saved = "not pinned", None
    if hasattr(os, "sched_setaffinity"):
        saved = os.sched_getaffinity(0)
        cpu = min(saved)
        os.sched_setaffinity(0, {cpu})
        pinned = f"pinned to CPU {cpu}"
    try:
        return _run(args, pinned)
    finally:
        if saved is not None:
            os.sched_setaffinity(0, saved)


def onset_errors(soundfont, rate: int, groups: int, n: int = 16, seed: int = 0) -> list[int]:
    """Audio-measured note-on error in frames for `n` random onset times.

    Each onset is a piano note rendered alone; its first sample above -120 dBFS is compared
    with the same note rendered at frame 0 (so the sample's own attack cancels out).
    """
    import random

    import numpy as np

    from engine.music import Note, Song, TempoChange, Track
    from engine.synth.render import render

    def first_rise(tick: int) -> tuple[int, float]:
        song = Song(tracks=[Track("p", notes=[Note(tick, tick + 240, 60, 100)])],
                    tempos=[TempoChange(0, 120.0)])
        audio = render(song, sample_rate=rate, soundfont=soundfont, timing_groups=groups,
                       tail_seconds=0.05).audio
        loud = np.flatnonzero(np.abs(audio).max(axis=1) > 1e-6)
        return int(loud[0]), song.tick_to_seconds(tick) * rate

    ref, _ = first_rise(0)
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        got, exact = first_rise(rnd.randrange(1, 4 * 480))
        out.append(int(round(got - ref - exact)))
    return out


def fluidsynth_cli_seconds(song, soundfont, rate: int, runs: int) -> float | None:
    """Median CPU seconds of FluidSynth's own C renderer (`fluidsynth -F`) on the same song,
    same settings (chorus off, dynamic sample loading), as a yardstick for our Python side.
    None when the `fluidsynth` program is not installed."""
    import resource
    import shutil
    import statistics
    import subprocess
    import tempfile
    from pathlib import Path

    from engine.midi_io import write_midi

    exe = shutil.which("fluidsynth")
    if exe is None:
        return None
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "bench.mid", Path(tmp) / "bench.wav"
        write_midi(song, mid)
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([exe, "-q", "-n", "-i", "-F", str(wav), "-r", str(rate),
                            "-o", "synth.chorus.active=0", "-o", "synth.dynamic-sample-loading=1",
                            str(soundfont), str(mid)], check=True, capture_output=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            times.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return statistics.median(times)


def _run(args: argparse.Namespace, pinned: str) -> int:
    import os
    import statistics
    import time

    from engine.evaluation.report import provenance, update_section
    from engine.synth.render import render
    from engine.synth.soundfont import bundled_soundfont, find_soundfont

    fonts = [find_soundfont(s) for s in args.soundfont] if args.soundfont else [find_soundfont()]
    if not args.soundfont:
        tim = bundled_soundfont()
        if tim is not None and tim.is_file() and tim.name not in {f.name for f in fonts}:
            fonts.append(find_soundfont(tim))
    song = benchmark_song()
    music_s = song.duration_seconds
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    machine = f"{os.cpu_count()} CPUs, load average {load:.1f} at the start"
    print(f"bench render: {len(song.tracks)} tracks, {song.n_notes} notes, {music_s:.1f} s of "
          f"music, {args.rate} Hz, {args.runs} runs each, {pinned}, {machine}")
    rows, refs = [], []
    for sf in fonts:
        render(song, sample_rate=args.rate, soundfont=sf, timing_groups=1)  # warm the caches
        for groups in (2, 1):
            cpu_t, wall_t = [], []
            for _ in range(args.runs):
                c0, w0 = time.process_time(), time.perf_counter()
                res = render(song, sample_rate=args.rate, soundfont=sf, timing_groups=groups)
                cpu_t.append(time.process_time() - c0)
                wall_t.append(time.perf_counter() - w0)
            cpu, wall = statistics.median(cpu_t), statistics.median(wall_t)
            row = (sf.name, groups, cpu, music_s / cpu, wall, music_s / wall, res.synths)
            rows.append(row)
            default = " (default)" if groups == 2 else ""
            verdict = "meets" if music_s / cpu >= TARGET else "below"
            print(f"  {sf.name:<16} timing groups {groups}{default:<10} synths {res.synths}  "
                  f"cpu {cpu:6.3f} s = {music_s / cpu:6.1f}x   wall {wall:6.3f} s = "
                  f"{music_s / wall:6.1f}x realtime   ({verdict} the {TARGET:g}x target)")
        ref = fluidsynth_cli_seconds(song, sf, args.rate, args.runs)
        if ref is not None:
            refs.append((sf.name, ref))
            print(f"  {sf.name:<16} yardstick: FluidSynth's own `fluidsynth -F` (C, whole "
                  f"process) cpu {ref:6.3f} s = {music_s / ref:6.1f}x")
    print("note-on timing, measured in the audio (frames late vs the exact sample, "
          f"{args.timing_onsets} random onsets, {args.rate} Hz):")
    timing = []
    for groups in (1, 2, 64):
        errs = onset_errors(fonts[-1], args.rate, groups, n=args.timing_onsets)
        worst = max(errs, key=abs)
        timing.append((groups, min(errs), max(errs), statistics.mean(errs), worst))
        print(f"  timing groups {groups:2d}: {min(errs)}..{max(errs)} frames, mean "
              f"{statistics.mean(errs):.1f}, worst {1000 * worst / args.rate:.3f} ms")
    if not args.no_results:
        table = ["| soundfont | timing groups | synths used | CPU s | realtime (CPU) | wall s | "
                 "realtime (wall) |", "|---|---|---|---|---|---|---|"]
        table += [f"| {r[0]} | {r[1]} | {r[6]} | {r[2]:.3f} | {r[3]:.0f}x | {r[4]:.3f} | "
                  f"{r[5]:.0f}x |" for r in rows]
        if refs:
            table += [f"| {name} | `fluidsynth -F` (C yardstick) | 1 | {ref:.3f} | "
                      f"{music_s / ref:.0f}x | | |" for name, ref in refs]
        ttable = ["| timing groups | frames late (min..max) | mean | worst |", "|---|---|---|---|"]
        ttable += [f"| {g} | {lo}..{hi} | {mean:.1f} | {1000 * w / args.rate:.3f} ms |"
                   for g, lo, hi, mean, w in timing]
        md = (f"## Offline render (`popmusicnet bench render`)\n\n{provenance()}\n\n"
              f"Speed: 4-track, {music_s:.0f} s song built in code ({song.n_notes} notes), "
              f"{args.rate} Hz, float render incl. soundfont loading, median of {args.runs} "
              f"runs, one core ({pinned}; {machine}); realtime factor = {music_s:.0f} s / "
              f"render time. "
              f"Target >= {TARGET:g}x. Timing groups 2 is the default.\n\n"
              + "\n".join(table)
              + f"\n\nNote-on timing measured in the rendered audio ({args.timing_onsets} "
                f"random onsets, {fonts[-1].name}, first sample above -120 dBFS vs the same "
                f"note at frame 0):\n\n" + "\n".join(ttable))
        path = update_section("bench-render", md)
        print(f"wrote the bench-render section of {path}")
    return 0
