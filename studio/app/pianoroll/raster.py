"""Dense note painting: many visible notes drawn as one image built with numpy.

Why: drawing one QRect per note costs ~1.5 us of Python each (building the QRect), so 10,000
visible notes take ~20 ms. Zoomed out that far, a note is a few pixels wide; rasterising per
(pitch row x pixel column) with a difference array and one `drawImage` costs the same for
10,000 notes as for 1,000 (measured by `popmusicnet bench studio`).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QImage, QPainter


def _argb(colour: QColor) -> int:
    return colour.rgba() if colour.alpha() == 255 else QColor(colour).rgba()


def paint_layers(p: QPainter, layers: list[tuple[np.ndarray, np.ndarray, np.ndarray, QColor]],
                 *, width: int, height: int, key_height: float, scroll_y: float,
                 top_pitch: int, bottom_pitch: int) -> None:
    """Each layer: (pitches, x, w, colour) in paint order (later layers cover earlier ones).

    `x` and `w` are pixel columns; a note covers [x, x + w). One pixel row under every key row
    is left empty, as the rectangle painter does.
    """
    n_rows = top_pitch - bottom_pitch + 1
    if n_rows <= 0 or width <= 0 or height <= 0:
        return
    codes = np.zeros((n_rows, width), np.uint8)
    for code, (pitches, x, w, _) in enumerate(layers, start=1):
        if len(x) == 0:
            continue
        rows = top_pitch - pitches
        keep = (rows >= 0) & (rows < n_rows)
        rows, x0 = rows[keep], np.clip(x[keep], 0, width)
        x1 = np.clip(x[keep] + w[keep], 0, width)
        # Difference array per pitch row: +1 where a note starts, -1 where it ends.
        size = n_rows * (width + 1)
        diff = (np.bincount(rows * (width + 1) + x0, minlength=size)
                - np.bincount(rows * (width + 1) + x1, minlength=size))
        covered = np.cumsum(diff.reshape(n_rows, width + 1), axis=1)[:, :width] > 0
        codes[covered] = code
    # Pixel row -> pitch row (or the empty row n_rows for the gap line and outside the keys).
    yy = np.arange(height, dtype=np.float64) + scroll_y
    pitch_of_row = 127 - np.floor(yy / key_height).astype(np.int64)
    in_gap = (yy % key_height) >= key_height - 1
    rowmap = top_pitch - pitch_of_row
    rowmap[(rowmap < 0) | (rowmap >= n_rows) | in_gap] = n_rows
    # Colours per pitch row first (small), then rows to pixels. Premultiplied ARGB is what the
    # raster engine blends fastest (measured: 30 % less than an indexed image); every colour is
    # opaque, so its premultiplied value is itself, and code 0 is fully transparent.
    lut = np.array([0] + [_argb(layer[3]) for layer in layers], np.uint32)
    rows_rgba = lut[np.vstack([codes, np.zeros((1, width), np.uint8)])]
    pixels = np.ascontiguousarray(rows_rgba[rowmap])
    image = QImage(pixels.data, width, height, width * 4,
                   QImage.Format.Format_ARGB32_Premultiplied)
    p.drawImage(0, 0, image)
