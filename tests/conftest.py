"""Test set-up shared by every test: offscreen Qt, no real audio/MIDI devices unless a test asks."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHONHASHSEED", "0")


@pytest.fixture
def window(qtbot, tmp_path):
    """The studio's main window with its own settings and autosave folder (tests/studio_fixtures;
    imported here only when a test asks for it, so tests without Qt never load PySide6)."""
    from studio_fixtures import make_window

    return make_window(qtbot, tmp_path)
