"""Test set-up shared by every test: offscreen Qt, no real audio/MIDI devices unless a test asks."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHONHASHSEED", "0")
