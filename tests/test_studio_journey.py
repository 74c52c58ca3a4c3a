"""The studio driven from outside (Xvfb, openbox, xdotool): open a MIDI file with Ctrl+O,
accompany it, play, export WAV and MIDI; the script checks the files it wrote."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_open_accompany_play_export_as_a_user(tmp_path):
    for tool in ("Xvfb", "xdotool", "openbox", "import"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup.sh test installs it)")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "studio_journey.py"),
                          "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode in (0, 1), out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["ok"], found
    assert found["tracks"][0] == "Melody" and found["voices"] == 3
    assert found["meters"] == ["1/4", "3/4"]  # the waltz's pickup survived the round trip
    assert found["wav_seconds"] >= found["song_seconds"] > 20
    assert (tmp_path / "journey-playing.png").stat().st_size > 10_000
    assert found["studio_stderr_lines"] <= 1, (tmp_path / "studio-stderr.txt").read_text()
