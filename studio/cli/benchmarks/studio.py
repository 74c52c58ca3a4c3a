"""`popmusicnet bench studio`: pianoroll paint time per frame with 10,000 notes, and start-up
time to a usable window (in a fresh process each run; torch must not be imported).

Paint time is measured inside `NoteCanvas.paintEvent` (offscreen Qt, the real widget) for three
cases: the whole song in view (every note painted), a 16-bar view, and a playhead frame (the
cached picture plus the playhead line, which is what playback repaints ~60 times a second).
"""

from __future__ import annotations

import argparse

NAME = "studio"
HELP = "pianoroll paint time with 10,000 notes (target < 16 ms/frame) and start-up time"
TARGET_PAINT_MS = 16.0
TARGET_START_S = 1.5

_STARTUP = r"""
import os, sys, time
t0 = time.perf_counter()
from PySide6.QtWidgets import QApplication
from studio.app import theme
from studio.app.mainwindow import MainWindow
app = QApplication([])
theme.apply_dark_palette(app)
w = MainWindow(open_audio=False)
w.show()
app.processEvents()
w.editor.canvas.repaint()
print(f"{time.perf_counter() - t0:.4f} {int('torch' in sys.modules)}")
w.shutdown()
"""


def benchmark_song(n_notes: int = 10_000):
    """4 tracks, 2,500 notes each: eighth-note lines over 312 bars of 4/4, deterministic."""
    import random

    from engine.music import Note, Song, Track

    rnd = random.Random(7)
    tracks = []
    per = n_notes // 4
    for k, (low, name) in enumerate(((64, "Melody"), (55, "Alto"), (48, "Tenor"), (36, "Bass"))):
        notes = [Note(i * 240, i * 240 + 200, low + rnd.randrange(0, 12), rnd.randrange(40, 127))
                 for i in range(per)]
        tracks.append(Track(name, program=0, role="melody" if k == 0 else "accompaniment",
                            notes=notes))
    return Song(tracks=tracks, title="bench-studio")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=30, help="frames per case (median reported)")
    p.add_argument("--starts", type=int, default=5, help="start-up runs (first one is cold)")
    p.add_argument("--no-results", action="store_true", help="do not write docs/RESULTS.md")


def _median_paint(canvas, frames: int, invalidate: bool) -> tuple[float, float]:
    import statistics

    times = []
    for i in range(frames):
        if invalidate:
            canvas.invalidate()
        else:
            canvas.set_playhead(1000.0 + i * 10)
        canvas.repaint()
        times.append(canvas.last_paint_ms)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def run(args: argparse.Namespace) -> int:
    import os
    import subprocess
    import sys

    from engine.errors import UserInputError

    if args.frames < 1 or args.starts < 1:
        raise UserInputError("--frames and --starts must be >= 1")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    # The offscreen platform warns about window size hints on every dock; not our numbers.
    qInstallMessageHandler(lambda mode, ctx, msg: None if "propagateSizeHints" in msg
                           else print(msg, file=sys.stderr))

    from studio.app import theme
    from studio.app.mainwindow import MainWindow

    app = QApplication.instance() or QApplication([])
    theme.apply_dark_palette(app)
    window = MainWindow(open_audio=False, panels=False)
    window.resize(1600, 900)
    window.show()
    song = benchmark_song()
    window.doc.set_song(song)
    app.processEvents()
    editor, canvas = window.editor, window.editor.canvas
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bench studio: {song.n_notes} notes in {len(song.tracks)} tracks, canvas "
          f"{canvas.width()}x{canvas.height()} px, {args.frames} frames per case, "
          f"load average {load:.1f} on {os.cpu_count()} cores")
    rows = []
    editor.zoom_to_fit()
    editor.view.show_pitch_range(36, 76)
    app.processEvents()
    cases = [("whole song in view (all 10,000 notes)", True)]
    for label, inval in cases:
        med, p95 = _median_paint(canvas, args.frames, inval)
        rows.append((label, med, p95))
    bar = song.bars(1)[0][1]
    editor.view.px_per_tick = canvas.width() / (16 * bar)
    editor.view.set_scroll(x=40 * bar * editor.view.px_per_tick)
    app.processEvents()
    rows.append(("16 bars in view", *_median_paint(canvas, args.frames, True)))
    rows.append(("playhead frame (cached picture)", *_median_paint(canvas, args.frames, False)))
    for label, med, p95 in rows:
        print(f"  {label:<40} median {med:6.2f} ms   p95 {p95:6.2f} ms")
    worst = max(r[1] for r in rows)
    print(f"target < {TARGET_PAINT_MS:g} ms per frame: worst median {worst:.2f} ms "
          f"({'met' if worst < TARGET_PAINT_MS else 'NOT met'})")
    window.shutdown()

    starts, torch_loaded = [], False
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    for _ in range(args.starts):
        out = subprocess.run([sys.executable, "-c", _STARTUP], capture_output=True, text=True,
                             env=env, timeout=120)
        if out.returncode != 0:
            print(out.stderr.strip().splitlines()[-1:] or "start-up run failed")
            return 1
        seconds, torch_flag = out.stdout.split()[-2:]
        starts.append(float(seconds))
        torch_loaded |= torch_flag == "1"
    warm = sorted(starts[1:] or starts)
    warm_med = warm[len(warm) // 2]
    print(f"  start-up to a painted window: first {starts[0]:.2f} s, warm median {warm_med:.2f} s "
          f"({len(starts)} runs); torch imported: {'YES' if torch_loaded else 'no'}")
    print(f"target < {TARGET_START_S:g} s warm: {'met' if warm_med < TARGET_START_S else 'NOT met'}")
    if not args.no_results:
        from engine.evaluation.report import provenance, update_section

        lines = ["### Studio (`popmusicnet bench studio`)", "", provenance(), "",
                 f"Pianoroll paint time per frame, {song.n_notes} notes, canvas "
                 f"{canvas.width()}x{canvas.height()} px, offscreen Qt, median of {args.frames} "
                 f"(machine load average {load:.1f} on {os.cpu_count()} cores while measuring):",
                 "", "| case | median ms | p95 ms |", "|---|---|---|"]
        lines += [f"| {label} | {med:.2f} | {p95:.2f} |" for label, med, p95 in rows]
        lines += ["", f"Start-up to a painted window (fresh process): first {starts[0]:.2f} s, "
                      f"warm median {warm_med:.2f} s over {len(starts) - 1 or 1} runs; "
                      f"torch imported: {'yes' if torch_loaded else 'no'}. "
                      f"Targets: < {TARGET_PAINT_MS:g} ms/frame, < {TARGET_START_S:g} s warm."]
        update_section("bench-studio", "\n".join(lines))
    return 0 if worst < TARGET_PAINT_MS and warm_med < TARGET_START_S and not torch_loaded else 1
