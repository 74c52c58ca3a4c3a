"""Training windows for the generator models (morph, GAN bars, continuation), from the shared
corpus loaders (engine.training.data: group-wise leak-free splits, style labels).

Every piece becomes key-normalised 16-step bars (`engine.models.genroll.song_bars`, the same code
the runtime uses). Pieces whose meter is not a 16-step bar (4/4, 2/2) or half of one (2/4, paired
into 16-step units) are left out: the generators write 4/4 bars.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from engine.models.genroll import GridSpec, song_bars
from engine.music import Song

log = logging.getLogger(__name__)

SIXTEEN_STEP_METERS = {"4/4", "2/2", "2/4"}
#: Styles of engine.training.data.styles with mostly 16-step bars (Palestrina and Trecento are in
#: 4/2 or 6/8, most quartet movements change meter).
DEFAULT_STYLES = ("bach", "german_folk", "irish", "chinese_folk")


@dataclass
class BarSet:
    """Bars of one piece: (n_bars, bar_steps, 2P) uint8 features, its style, split, and id."""

    bars: np.ndarray
    style: str
    split: str
    id: str
    shift: int = 0


def piece_bars(song: Song, spec: GridSpec, *, style: str, split: str, id: str,
               shift: int | None = None) -> BarSet:
    """`shift=None` estimates the key; pass the corpus' key shift where it is known."""
    if shift is None:
        feats, shift = song_bars(song, spec, normalise_key=True)
    else:
        feats, _ = song_bars(song.transposed(shift) if shift else song, spec, normalise_key=False)
    return BarSet(feats.astype(np.uint8), style, split, id, shift)


def load_barsets(styles: list[str] | None, spec: GridSpec, *, max_pieces: int | None = None,
                 seed: int = 0) -> list[BarSet]:
    """Bars of every usable piece of `styles` (labels of engine.training.data.load_styles; None =
    DEFAULT_STYLES), at most `max_pieces` per style (random but seeded), in every split."""
    from engine.training.data import load_styles

    styles = list(styles or DEFAULT_STYLES)
    pieces = load_styles(styles, max_per_class=max_pieces)
    rng = np.random.default_rng(seed)
    by_style: dict[str, list] = {}
    for p in pieces:
        if styles and p.label not in styles:
            continue
        if p.meter not in SIXTEEN_STEP_METERS:
            continue
        by_style.setdefault(p.label, []).append(p)
    out: list[BarSet] = []
    for style, group in sorted(by_style.items()):
        if max_pieces is not None and len(group) > max_pieces:
            idx = rng.choice(len(group), max_pieces, replace=False)
            group = [group[i] for i in sorted(idx)]
        for p in group:
            shift = p.key.normalising_shift() if p.key is not None else 0
            try:
                out.append(piece_bars(p.song, spec, style=style, split=p.split, id=p.id,
                                      shift=shift))
            except ValueError:  # a note would leave MIDI 0..127
                continue
        log.info("%s: %d pieces", style, len(group))
    if not out:
        raise ValueError(f"no usable pieces for styles {styles}")
    return out


def windows(barsets: list[BarSet], split: str, n_bars: int, *, hop: int = 1,
            max_per_piece: int | None = None, styles: list[str] | None = None,
            seed: int = 0, skip_empty: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Windows of `n_bars` bars: (N, n_bars * bar_steps, F) uint8 and style indices (N,)
    (index into `styles`, default the sorted style names)."""
    styles = styles or sorted({b.style for b in barsets})
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for b in barsets:
        if b.split != split or b.style not in styles:
            continue
        starts = list(range(0, len(b.bars) - n_bars + 1, hop))
        if max_per_piece is not None and len(starts) > max_per_piece:
            starts = sorted(rng.choice(starts, max_per_piece, replace=False).tolist())
        for s in starts:
            w = b.bars[s:s + n_bars]
            if skip_empty and not w.any():
                continue
            xs.append(w.reshape(-1, w.shape[-1]))
            ys.append(styles.index(b.style))
    if not xs:
        return np.zeros((0, 0, 0), np.uint8), np.zeros(0, np.int64)
    return np.stack(xs), np.array(ys, np.int64)
