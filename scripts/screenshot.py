#!/usr/bin/env python3
"""Take docs/screenshot.png: the studio under Xvfb (a real X server, the xcb platform) with a real
song: the 3/4 demo tune with its one-beat pickup (assets/demo/waltz.mid, shown as bar 0),
accompanied by the bundled accompanist when one is installed.

    .venv/bin/python scripts/screenshot.py [--out docs/screenshot.png] [--song FILE]

Starts Xvfb itself on a free display, opens the window, waits for it to paint, grabs it with
QWidget.grab() and stops Xvfb. Prints what it showed (and why a part is missing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # a script run from a checkout, before `pip install -e .`


def start_xvfb(width: int, height: int) -> tuple[subprocess.Popen, str]:
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        sys.exit("screenshot: Xvfb is not installed (apt-get install xvfb)")
    for n in range(99, 120):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            display = f":{n}"
            break
    else:
        sys.exit("screenshot: no free X display number")
    proc = subprocess.Popen([xvfb, display, "-screen", "0", f"{width}x{height}x24", "-nolisten",
                             "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if Path(f"/tmp/.X11-unix/X{display[1:]}").exists():
            return proc, display
        if proc.poll() is not None:
            sys.exit(f"screenshot: Xvfb exited with code {proc.returncode}")
        time.sleep(0.05)
    proc.kill()
    sys.exit("screenshot: Xvfb did not start")


def build_song(path: Path):
    """The melody, accompanied when an accompanist model exists (else the melody alone), and
    the chord changes the voices follow (tick, name) for the roll."""
    from studio.app import services

    song = services.read_midi(path)
    song.title = song.title or path.stem
    note, labels = "melody only", []
    cap = services.capability("accompany")
    if cap:
        melody = song.tracks.index(song.melody_track())
        song, labels = services.accompany_with_chords(song, model=None, melody_track=melody,
                                                      temperature=None, seed=1)
        note = f"accompanied by {services.accompanist(None).name}"
    else:
        note += f" ({cap.reason})"
    return song, note, labels


def shoot(out: Path, song_path: Path, width: int, height: int) -> None:
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from studio.app import theme
    from studio.app.mainwindow import MainWindow
    from studio.app.settings import Settings

    app = QApplication([sys.argv[0], "-platform", "xcb"])
    theme.apply_dark_palette(app)
    settings = Settings(QSettings(str(out.with_suffix(".ini")), QSettings.Format.IniFormat))
    settings.audio_backend = "null"
    window = MainWindow(settings, autosave_dir=out.parent / ".screenshot-autosave")
    window.resize(width, height)
    window.show()
    song, note, labels = build_song(song_path)
    window.doc.set_song(song)
    window.editor.canvas.set_labels(labels)
    window.project.titleChanged.emit(window.project.name)
    doc = window.doc
    # A musician's view: the melody selected in bars 5-8, the loop over the first phrase,
    # the cursor at bar 5.
    bars = song.bars()
    doc.set_loop((bars[0][0], bars[min(3, len(bars) - 1)][1]))
    doc.set_cursor(bars[min(4, len(bars) - 1)][0])
    mel = song.tracks.index(song.melody_track())
    doc.set_current_track(mel)
    lo, hi = bars[min(4, len(bars) - 1)][0], bars[min(7, len(bars) - 1)][1]
    doc.set_selection([n for n in song.tracks[mel].notes if lo <= n.start < hi])
    window.editor.zoom_to_fit()  # every voice, top to bottom
    view = window.editor.view  # the first ten bars across: the pickup reads as bar 0
    view.px_per_tick = (view.width - 20) / bars[min(9, len(bars) - 1)][1]
    view.set_scroll(x=0)
    window.editor.set_playhead(bars[min(2, len(bars) - 1)][0] + 240.0)
    window.say(f"Opened {song_path.name}: {len(song.tracks)} tracks, {song.n_notes} notes")
    doc.undo_stack.setClean()
    classify = next((p for p in window.panels if p.TITLE == "Classify"), None)
    if classify is not None and classify.ensure_checked() and classify.track_button.isEnabled():
        classify.classify_track()  # the melody's style, as a bar chart in the lower panel
        note += "; melody classified"
    started = time.monotonic()

    def grab() -> None:
        waiting = classify is not None and classify.what.text().endswith("…")
        if waiting and time.monotonic() - started < 20:
            QTimer.singleShot(200, grab)  # the classifier is still loading or running
            return
        window.grab().save(str(out))
        window.doc.undo_stack.setClean()
        window.shutdown()
        app.quit()

    QTimer.singleShot(1500, grab)  # let the audio status, panels and fonts settle
    app.exec()
    print(f"screenshot: {out} ({width}x{height}), song {song_path.name}: {note}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    p.add_argument("--song", type=Path, default=ROOT / "assets" / "demo" / "waltz.mid")
    p.add_argument("--size", default="1440x880", help="window size WxH")
    args = p.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    xvfb, display = start_xvfb(width + 40, height + 40)
    os.environ["DISPLAY"] = display
    os.environ.pop("QT_QPA_PLATFORM", None)
    try:
        shoot(args.out, args.song, width, height)
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=5)
        for leftover in (args.out.with_suffix(".ini"),):
            leftover.unlink(missing_ok=True)
        shutil.rmtree(args.out.parent / ".screenshot-autosave", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
