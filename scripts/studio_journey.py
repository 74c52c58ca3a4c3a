#!/usr/bin/env python3
"""Drive the studio from outside as a user does, and check what it wrote.

    .venv/bin/python scripts/studio_journey.py [--out DIR] [--song FILE]

Starts Xvfb and a window manager (openbox) on a free display, starts `popmusicnet studio` with
its own home folder (settings, autosave), then with xdotool only: Ctrl+O and types the path of a
MIDI file into the Open dialog, Ctrl++ and Ctrl+- (zoom, no ambiguous shortcut), Ctrl+Shift+A
(accompany the melody), Space to play and Space to stop (a screenshot of the window while it
plays), Ctrl+Shift+E to export WAV and Ctrl+Shift+M to export MIDI through their dialogs. Then it checks the files: the MIDI has the melody as it was
and the new voices, in the song's meter with its pickup; the WAV is as long as the song and not
silent. Prints one JSON line with what it found; exit code 0 when every check passed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from screenshot import start_xvfb  # noqa: E402

WINDOW = "PopMusicNet Studio"


class Desktop:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def xdo(self, *args: str) -> str:
        out = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True,
                             timeout=30)
        return out.stdout.strip() if out.returncode == 0 else ""

    def wait_window(self, name: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = self.xdo("search", "--onlyvisible", "--name", name).split()
            if ids:
                return ids[-1]
            time.sleep(0.2)
        raise TimeoutError(f"no window named {name!r} after {timeout:.0f} s")

    def title(self, window: str) -> str:
        return self.xdo("getwindowname", window)

    def wait_title(self, window: str, test, what: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.title(window)
            if test(t):
                return t
            time.sleep(0.2)
        raise TimeoutError(f"{what}: the title stayed {self.title(window)!r}")

    def focus(self, window: str) -> None:
        self.xdo("windowactivate", "--sync", window)
        self.xdo("windowfocus", "--sync", window)

    def keys(self, *combos: str) -> None:
        for combo in combos:
            self.xdo("key", "--clearmodifiers", combo)
            time.sleep(0.15)

    def type(self, text: str) -> None:
        self.xdo("type", "--delay", "8", text)

    def answer_file_dialog(self, title: str, path: Path) -> None:
        dialog = self.wait_window(title, timeout=30)
        self.focus(dialog)
        time.sleep(0.3)
        self.keys("ctrl+a")  # the file name field has the focus; replace what it proposes
        self.type(str(path))
        self.keys("Return")

    def screenshot(self, path: Path) -> None:
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, timeout=30,
                       capture_output=True)


def wait_file(path: Path, timeout: float = 180.0) -> None:
    """Until `path` exists and its size holds still (writers rename a finished file in)."""
    deadline, last = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        if path.exists():
            size = path.stat().st_size
            if size == last and size > 0:
                return
            last = size
        time.sleep(0.3)
    raise TimeoutError(f"{path} was not written")


def check(song_path: Path, mid: Path, wav: Path) -> dict:
    import numpy as np
    import soundfile

    from engine.midi_io import read_midi

    source = read_midi(song_path)
    out = read_midi(mid)
    voices = [t for t in out.tracks if t.role == "accompaniment" and t.notes]
    melody = out.melody_track()
    audio, rate = soundfile.read(str(wav), dtype="float32")
    rms = float(np.sqrt(np.mean(np.square(audio)))) if len(audio) else 0.0
    found = {
        "tracks": [t.name for t in out.tracks],
        "voices": len(voices),
        "melody_kept": melody is not None and melody.notes == source.melody_track().notes,
        "meters": [str(m) for m in out.meters],
        "source_meters": [str(m) for m in source.meters],
        "wav_seconds": round(len(audio) / rate, 2),
        "song_seconds": round(out.duration_seconds, 2),
        "wav_rate": rate,
        "wav_rms": round(rms, 4),
    }
    found["ok"] = bool(found["voices"] >= 1 and found["melody_kept"]
                       and found["meters"] == found["source_meters"]
                       and found["wav_seconds"] >= found["song_seconds"] and rms > 1e-3)
    return found


def journey(out: Path, song: Path, size: tuple[int, int]) -> dict:
    for tool in ("xdotool", "openbox"):
        if shutil.which(tool) is None:
            sys.exit(f"journey: {tool} is not installed (scripts/setup.sh test installs it)")
    home = Path(tempfile.mkdtemp(prefix="pmn-journey-"))
    songs = home / "songs"
    songs.mkdir()
    source = songs / song.name
    shutil.copy(song, source)
    xvfb, display = start_xvfb(size[0] + 80, size[1] + 80)
    env = dict(os.environ, DISPLAY=display, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local/share"), XDG_RUNTIME_DIR=str(home),
               PYTHONUNBUFFERED="1")
    env.pop("QT_QPA_PLATFORM", None)
    wm = studio = None
    desk = Desktop(env)
    err_path = out / "studio-stderr.txt"
    try:
        wm = subprocess.Popen(["openbox"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        with open(err_path, "w") as err:
            studio = subprocess.Popen([sys.executable, "-m", "studio.launcher", "studio"],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        main = desk.wait_window(WINDOW, timeout=90)
        desk.xdo("windowsize", main, str(size[0]), str(size[1]))
        desk.focus(main)
        time.sleep(1.0)
        desk.keys("ctrl+o")
        desk.answer_file_dialog("Open project, MIDI or WAV file", source)
        desk.wait_title(main, lambda t: "Untitled" not in t, "opening the MIDI file")
        desk.focus(main)
        # Zoom in and out as on a US keyboard (Ctrl+Shift+= is Ctrl++): an ambiguous shortcut
        # would print Qt's warning, which the stderr count below catches.
        desk.keys("ctrl+plus", "ctrl+minus", "ctrl+shift+equal", "ctrl+minus")
        desk.keys("ctrl+shift+a")
        desk.wait_title(main, lambda t: t.endswith("*"), "accompanying", timeout=180)
        time.sleep(0.5)
        desk.keys("space")
        time.sleep(2.5)
        desk.screenshot(out / "journey-playing.png")
        desk.keys("space")
        mid, wav = out / f"{source.stem}-journey.mid", out / f"{source.stem}-journey.wav"
        for p in (mid, wav):
            p.unlink(missing_ok=True)
        desk.keys("ctrl+shift+e")
        desk.answer_file_dialog("Export WAV audio", wav)
        wait_file(wav)
        desk.focus(main)
        desk.keys("ctrl+shift+m")
        desk.answer_file_dialog("Export MIDI file", mid)
        wait_file(mid)
        found = check(source, mid, wav)
    finally:
        for proc in (studio, wm):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        xvfb.terminate()
        xvfb.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)
    noise = [ln for ln in err_path.read_text().splitlines() if ln.strip()]
    found["studio_stderr_lines"] = len(noise)
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "out" / "journey")
    p.add_argument("--song", type=Path, default=ROOT / "assets" / "demo" / "waltz.mid")
    p.add_argument("--size", default="1360x820")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    found = journey(args.out.resolve(), args.song.resolve(), size)
    print(json.dumps(found), flush=True)
    return 0 if found["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
