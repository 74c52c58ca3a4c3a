"""Shared geometry of the pianoroll widgets: zoom, scroll and the snap grid.

Content coordinates: x = tick * px_per_tick, y = (127 - pitch) * key_height. The widgets
subtract the scroll offsets. Every widget that shows time or pitch listens to `changed`.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QObject, Signal

# Grid choices: label -> fraction of a whole note (a quarter note is 1/4); triplets are 2/3 of it.
GRIDS: dict[str, tuple[int, bool]] = {
    "1/4": (4, False), "1/8": (8, False), "1/16": (16, False), "1/32": (32, False),
    "1/4T": (4, True), "1/8T": (8, True), "1/16T": (16, True), "Off": (0, False),
}


def grid_ticks(label: str, ticks_per_beat: int) -> int:
    """Ticks per grid step (1 when the grid is off)."""
    division, triplet = GRIDS[label]
    if division == 0:
        return 1
    ticks = ticks_per_beat * 4 // division
    return max(1, ticks * 2 // 3 if triplet else ticks)


class ViewState(QObject):
    changed = Signal()

    MIN_PPT, MAX_PPT = 0.002, 2.0
    MIN_KEY, MAX_KEY = 4.0, 32.0

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.px_per_tick = 0.1  # 48 px per quarter at 480 tpb
        self.key_height = 12.0
        self.scroll_x = 0.0  # pixels
        self.scroll_y = (127 - 84) * 12.0  # top row is C6
        self.width = 800
        self.height = 600
        self.grid = "1/16"

    # -- mapping ------------------------------------------------------------------------------
    def tick_to_x(self, tick: float) -> float:
        return tick * self.px_per_tick - self.scroll_x

    def x_to_tick(self, x: float) -> float:
        return (x + self.scroll_x) / self.px_per_tick

    def pitch_to_y(self, pitch: float) -> float:
        return (127 - pitch) * self.key_height - self.scroll_y

    def y_to_pitch(self, y: float) -> int:
        return int(127 - math.floor((y + self.scroll_y) / self.key_height))

    def visible_ticks(self) -> tuple[float, float]:
        return self.x_to_tick(0), self.x_to_tick(self.width)

    def visible_pitches(self) -> tuple[int, int]:
        return max(0, self.y_to_pitch(self.height)), min(127, self.y_to_pitch(0))

    @property
    def content_height(self) -> float:
        return 128 * self.key_height

    # -- changes ------------------------------------------------------------------------------
    def set_scroll(self, x: float | None = None, y: float | None = None) -> None:
        if x is not None:
            self.scroll_x = max(0.0, float(x))
        if y is not None:
            self.scroll_y = min(max(0.0, float(y)), max(0.0, self.content_height - self.height))
        self.changed.emit()

    def set_size(self, width: int, height: int) -> None:
        if (width, height) != (self.width, self.height):
            self.width, self.height = width, height
            self.changed.emit()

    def zoom_x(self, factor: float, anchor_x: float | None = None) -> None:
        """Zoom time around a pixel (default: the left edge), keeping that tick in place."""
        anchor_x = 0.0 if anchor_x is None else anchor_x
        tick = self.x_to_tick(anchor_x)
        self.px_per_tick = min(max(self.px_per_tick * factor, self.MIN_PPT), self.MAX_PPT)
        self.scroll_x = max(0.0, tick * self.px_per_tick - anchor_x)
        self.changed.emit()

    def zoom_y(self, factor: float, anchor_y: float | None = None) -> None:
        anchor_y = self.height / 2 if anchor_y is None else anchor_y
        row = (anchor_y + self.scroll_y) / self.key_height
        self.key_height = min(max(self.key_height * factor, self.MIN_KEY), self.MAX_KEY)
        self.set_scroll(y=row * self.key_height - anchor_y)

    def set_grid(self, label: str) -> None:
        if label not in GRIDS:
            raise ValueError(f"grid must be one of {', '.join(GRIDS)}, got {label!r}")
        self.grid = label
        self.changed.emit()

    def snap(self, tick: float, ticks_per_beat: int) -> int:
        g = grid_ticks(self.grid, ticks_per_beat)
        return max(0, int(round(tick / g)) * g)

    def snap_floor(self, tick: float, ticks_per_beat: int) -> int:
        g = grid_ticks(self.grid, ticks_per_beat)
        return max(0, int(math.floor(tick / g)) * g)

    def show_pitch_range(self, low: int, high: int) -> None:
        """Scroll so that pitches low..high are centred."""
        mid = (low + high) / 2
        self.set_scroll(y=(127 - mid) * self.key_height - self.height / 2)
