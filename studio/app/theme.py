"""Colours and the application palette (a dark theme, as most DAWs use)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

BACKGROUND = QColor(34, 36, 40)
ROW_WHITE = QColor(44, 47, 52)
ROW_BLACK = QColor(36, 38, 43)
ROW_C = QColor(58, 62, 68)
GRID_BAR = QColor(110, 116, 126)
GRID_BEAT = QColor(70, 75, 82)
GRID_SUB = QColor(52, 55, 61)
SELECTED = QColor(248, 248, 250)  # white: distinct from every track hue
SELECTED_EDGE = QColor(255, 170, 40)
NOTE_EDGE = QColor(15, 16, 18)
PLAYHEAD = QColor(255, 90, 80)
CURSOR = QColor(120, 200, 255)
LOOP = QColor(90, 160, 255, 40)
LOOP_EDGE = QColor(90, 160, 255)
PLANNED = QColor(120, 255, 170)
PREVIEW = QColor(230, 130, 255)
RECORDING = QColor(255, 110, 100)
OVERLAYS = {"planned": PLANNED, "preview": PREVIEW, "recording": RECORDING}
BAND = QColor(120, 200, 255, 60)

# One colour per track, cycling (Tableau-like hues that read well on a dark background).
TRACK_COLOURS = [QColor(c) for c in (
    "#4e9be6", "#f28e2b", "#59c26b", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7",
    "#9c755f", "#bab0ac")]


def track_colour(index: int) -> QColor:
    return TRACK_COLOURS[index % len(TRACK_COLOURS)]


def ghost_colour(index: int) -> QColor:
    """Other tracks' notes: their own hue, faded towards the background (opaque, so painting
    needs no alpha blending)."""
    c, bg = track_colour(index), ROW_WHITE
    mix = 0.38
    return QColor(int(bg.red() + (c.red() - bg.red()) * mix),
                  int(bg.green() + (c.green() - bg.green()) * mix),
                  int(bg.blue() + (c.blue() - bg.blue()) * mix))


def velocity_colour(base: QColor, velocity: int) -> QColor:
    """Louder notes brighter: velocity 0 is 55 % of the base lightness, 127 is 125 %."""
    return base.lighter(int(55 + 70 * velocity / 127))


def apply_dark_palette(app: QApplication) -> None:
    app.setStyle("Fusion")
    pal = QPalette()
    pal.setColor(QPalette.ColorRole.Window, QColor(45, 47, 52))
    pal.setColor(QPalette.ColorRole.WindowText, QColor(225, 228, 232))
    pal.setColor(QPalette.ColorRole.Base, QColor(30, 32, 36))
    pal.setColor(QPalette.ColorRole.AlternateBase, QColor(40, 42, 47))
    pal.setColor(QPalette.ColorRole.ToolTipBase, QColor(60, 63, 70))
    pal.setColor(QPalette.ColorRole.ToolTipText, QColor(235, 235, 235))
    pal.setColor(QPalette.ColorRole.Text, QColor(225, 228, 232))
    pal.setColor(QPalette.ColorRole.Button, QColor(55, 58, 64))
    pal.setColor(QPalette.ColorRole.ButtonText, QColor(225, 228, 232))
    pal.setColor(QPalette.ColorRole.BrightText, QColor(255, 100, 100))
    pal.setColor(QPalette.ColorRole.Highlight, QColor(74, 144, 226))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor(255, 255, 255))
    pal.setColor(QPalette.ColorRole.PlaceholderText, QColor(140, 144, 150))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 123, 128))
    app.setPalette(pal)
