"""The studio as an application: start-up without torch, the CLI without a display, the
excepthook, preferences stored with QSettings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")


ROOT = Path(__file__).resolve().parents[1]

STARTUP = r"""
import sys, time
t0 = time.perf_counter()
from PySide6.QtWidgets import QApplication
from studio.app.mainwindow import MainWindow
app = QApplication([])
w = MainWindow(open_audio=False)
w.show()
app.processEvents()
assert w.windowTitle().startswith("PopMusicNet Studio — "), w.windowTitle()
assert "torch" not in sys.modules, "the studio imported torch"
assert "onnxruntime" not in sys.modules, "the studio loaded ONNX Runtime before it was needed"
print(f"{time.perf_counter() - t0:.3f}")
"""


def test_window_opens_without_torch_or_onnxruntime(tmp_path):
    """In a fresh process (other tests import torch into this one). The time is printed by
    `popmusicnet bench studio`; here only that it starts at all, and without torch."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", STARTUP], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.split()[-1]) > 0


def test_studio_command_without_a_display_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run([sys.executable, "-m", "studio.launcher", "studio"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert out.returncode == 2
    assert "no display" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "studio.launcher", "studio",
                          str(tmp_path / "missing.pmn")], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=60)
    assert out.returncode == 2 and "no such file" in out.stderr


def test_excepthook_shows_a_dialog_instead_of_dying(qtbot, window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from studio.app import excepthook

    shown = []
    monkeypatch.setattr(QMessageBox, "exec", lambda self: shown.append(
        (self.text(), self.detailedText())))
    try:
        raise ValueError("boom")
    except ValueError:
        excepthook.handle(*sys.exc_info())
    assert "ValueError: boom" in shown[0][0] and "Traceback" in shown[0][1]


def test_preferences_are_stored(qtbot, window):
    from studio.app.preferences.dialog import PreferencesDialog

    dialog = PreferencesDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.backend.setCurrentText("null")
    dialog.buffer.setCurrentText("256")
    dialog.soundfont.setText("/usr/share/sounds/sf2/TimGM6mb.sf2")
    dialog.accept()
    assert window.settings.audio_backend == "null"
    assert window.settings.buffer_frames == 256
    assert window.settings.soundfont.endswith("TimGM6mb.sf2")
    assert window.settings.midi_input == ""
