"""Shared fixtures of the studio tests: a main window with its own settings and autosave
folder, dialogs replaced by recorders (never a modal box in a test)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox


def make_window(qtbot, tmp_path, *, panels: bool = False):
    from studio.app.mainwindow import MainWindow
    from studio.app.settings import Settings

    settings = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w = MainWindow(settings, open_audio=False, autosave_dir=tmp_path / "autosave", panels=panels)
    w.project.ask_save = lambda text: QMessageBox.StandardButton.Discard
    w.project.errors = []
    w.project.show_error = lambda title, text: w.project.errors.append(text)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    return w


@pytest.fixture
def full_window(qtbot, tmp_path):
    return make_window(qtbot, tmp_path, panels=True)
