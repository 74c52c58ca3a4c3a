"""Training data: corpora parsed once into engine.music Songs, cached as npz + a JSON manifest,
split train/valid/test by group so that no tune or work straddles two splits.

Loaders (each returns a list of `Piece`, see corpus.py):
- `load_chorales()`            Bach chorales, S/A/T/B (chorales.py)
- `load_styles()`              labelled multi-style corpus for classifiers/generators (styles.py)
- `load_folder(path)`          a folder of the user's MIDI files (folder.py)
- `load_lpd5(path)`            Lakh Pianoroll Dataset 5-track npz files (lpd5.py)

Heavy libraries (music21, pypianoroll) are imported inside the functions that need them, so this
package imports with numpy alone. No torch here: datasets in the model packages wrap these.
"""

from __future__ import annotations

from engine.training.data.corpus import (
    SPLITS,
    Piece,
    default_cache_dir,
    split,
    split_of,
    split_counts,
)


def load_chorales(*args, **kwargs):  # noqa: D103 - documented in chorales.py
    from engine.training.data.chorales import load_chorales as _load

    return _load(*args, **kwargs)


def load_styles(*args, **kwargs):  # noqa: D103 - documented in styles.py
    from engine.training.data.styles import load_styles as _load

    return _load(*args, **kwargs)


def load_folder(*args, **kwargs):  # noqa: D103 - documented in folder.py
    from engine.training.data.folder import load_folder as _load

    return _load(*args, **kwargs)


def load_lpd5(*args, **kwargs):  # noqa: D103 - documented in lpd5.py
    from engine.training.data.lpd5 import load_lpd5 as _load

    return _load(*args, **kwargs)


__all__ = [
    "SPLITS", "Piece", "default_cache_dir", "split", "split_of", "split_counts",
    "load_chorales", "load_styles", "load_folder", "load_lpd5",
]
