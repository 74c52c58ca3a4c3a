"""GAN bar generation (numpy + ONNX Runtime; no torch) and the Liu & Huo Table 1 metrics.

The generator graph maps a noise vector (and, for a style-conditioned model, a one-hot style) to
one bar of active-plane probabilities (bar_steps x n_pitches); a cell sounds where p > 0.5 (the
generators are trained against binary real bars, so their outputs sit near 0 or 1).

Temperature scales the noise (the "truncation trick" of BigGAN, Brock et al. 2019): 0 gives the
generator's central bar, 1 the training distribution, up to 2 wilder bars than it was trained on.
Per-cell Bernoulli sampling was not used: it breaks held notes into fragments (QN falls).
"""

from __future__ import annotations

import logging

import numpy as np

from engine.errors import ModelError, UserInputError
from engine.models.card import ModelCard
from engine.models.genroll import GridSpec, bars_to_song, meter_bar_steps
from engine.music import Song

log = logging.getLogger(__name__)

KIND = "gan"
#: The bundled default (the Bi-LSTM GAN beside it is the report's baseline, kept for Table 1).
DEFAULT_NAME = "gan-cnn"


class BarGenerator:
    def __init__(self, card: ModelCard, *, providers: str = "auto") -> None:
        self.card = card
        self.name = card.name
        rep = card.representation
        try:
            self.spec = GridSpec.from_dict(rep["grid"])
            self.noise = int(rep["noise"])
            self.styles: tuple[str, ...] = tuple(rep.get("styles") or ())
            self.conditional = bool(rep.get("conditional", False))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{card.path}: gan card lacks a usable representation ({exc})") from None
        self.generator = card.open("generator", providers=providers)
        self.provider = self.generator.provider

    @classmethod
    def load(cls, name: str | None = None, *, providers: str = "auto") -> BarGenerator:
        from engine.models.runtime import list_cards, load_card

        if name is None and any(c.name == DEFAULT_NAME for c in list_cards(KIND)):
            name = DEFAULT_NAME
        return cls(load_card(name, kind=KIND), providers=providers)

    def style_index(self, style: str) -> int:
        s = style.lower()
        hits = [i for i, k in enumerate(self.styles) if k.lower() == s]
        hits = hits or [i for i, k in enumerate(self.styles) if k.lower().startswith(s)]
        if len(hits) != 1:
            raise UserInputError(f"unknown style {style!r} for model {self.name} "
                                 f"(styles: {', '.join(self.styles) or 'none'})")
        return hits[0]

    def probabilities(self, n_bars: int, *, seed: int = 0, temperature: float = 1.0,
                      style: str | int | None = None, batch: int = 256) -> np.ndarray:
        """(n_bars, bar_steps, n_pitches) float32 probabilities of independent bars."""
        if not 0.0 <= temperature <= 2.0:
            raise UserInputError(f"temperature must be in range 0..2, got {temperature:g}")
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n_bars, self.noise)).astype(np.float32) * temperature
        feeds_style = None
        if self.conditional:
            if style is None:  # each bar a style drawn at random, seeded
                idx = rng.integers(0, len(self.styles), n_bars)
            else:
                idx = np.full(n_bars, style if isinstance(style, int) else self.style_index(style))
            feeds_style = np.eye(len(self.styles), dtype=np.float32)[idx]
        elif style is not None:
            raise UserInputError(f"model {self.name} is not style-conditioned")
        out = []
        for i in range(0, n_bars, batch):
            feeds = {"z": z[i:i + batch]}
            if feeds_style is not None:
                feeds["style"] = feeds_style[i:i + batch]
            out.append(self.generator.run(feeds)["probs"])
        return np.concatenate(out) if out else np.zeros((0, self.spec.bar_steps,
                                                         self.spec.n_pitches), np.float32)

    def bars(self, n_bars: int, **kw) -> np.ndarray:
        """(n_bars, bar_steps, n_pitches) bool active cells."""
        return self.probabilities(n_bars, **kw) > 0.5

    def generate(self, n_bars: int, *, seed: int = 0, temperature: float = 1.0,
                 style: str | None = None, bpm: float = 100.0, program: int = 0,
                 meter: tuple[int, int] | None = None) -> Song:
        """`n_bars` bars in `meter` (numerator, denominator; default 4/4): the model's 16-step
        bars cut to the meter's length (3/4: their first 3 beats), or for a bar longer than 16
        steps (6/4, 12/8) consecutive model bars joined and cut."""
        steps = meter_bar_steps(meter, self.spec) if meter is not None else self.spec.bar_steps
        n_model = n_bars * -(-steps // self.spec.bar_steps)
        bars = self.bars(n_model, seed=seed, temperature=temperature, style=style)
        if steps > self.spec.bar_steps:  # consecutive model bars make one long bar
            bars = bars.reshape(n_bars, -1, bars.shape[-1])[:, :steps]
        return bars_to_song(bars.astype(np.float32), self.spec, bpm=bpm, name="generated",
                            program=program, title=f"{self.name} seed {seed}", meter=meter)


# -- Table 1 metrics (Liu & Huo, after MuseGAN, Dong et al. 2018) -------------------------------
# Hand-written because pypianoroll 1.0.4's are wrong (checked by hand counts) and muspy has no qualified
# note rate; tests check these against hand counts and muspy's n_pitch_classes_used.
def empty_bar_rate(bars: np.ndarray) -> float:
    """Share of bars with no sounding cell. bars: (N, steps, pitches) bool."""
    bars = np.asarray(bars, bool)
    return float(np.mean(~bars.any(axis=(1, 2)))) if len(bars) else 0.0


def used_pitch_classes(bars: np.ndarray, low: int) -> float:
    """Mean number of pitch classes sounding per non-empty bar (0..12); column j is MIDI low+j."""
    bars = np.asarray(bars, bool)
    used = bars.any(axis=1)  # (N, pitches)
    n = used.shape[1]
    chroma = np.zeros((len(bars), 12), bool)
    for j in range(n):
        chroma[:, (low + j) % 12] |= used[:, j]
    counts = chroma.sum(axis=1)
    nonempty = used.any(axis=1)
    return float(counts[nonempty].mean()) if nonempty.any() else 0.0


def note_lengths(bars: np.ndarray) -> np.ndarray:
    """Lengths in steps of every note: maximal runs of a sounding pitch within a bar."""
    bars = np.asarray(bars, bool)
    padded = np.pad(bars, ((0, 0), (1, 1), (0, 0)))
    d = np.diff(padded.astype(np.int8), axis=1)  # +1 at a start, -1 after an end
    starts = np.argwhere(d == 1)
    ends = np.argwhere(d == -1)
    # argwhere orders by (bar, step, pitch); reorder by (bar, pitch, step) to pair starts/ends
    so = np.lexsort((starts[:, 1], starts[:, 2], starts[:, 0]))
    eo = np.lexsort((ends[:, 1], ends[:, 2], ends[:, 0]))
    return (ends[eo, 1] - starts[so, 1]).astype(np.int64)


def qualified_note_rate(bars: np.ndarray, min_steps: int = 3) -> float:
    """Share of notes at least `min_steps` steps long (MuseGAN: 3 sixteenths)."""
    lengths = note_lengths(bars)
    return float(np.mean(lengths >= min_steps)) if len(lengths) else 0.0


def table1_row(bars: np.ndarray, low: int) -> dict[str, float]:
    return {"EB": 100 * empty_bar_rate(bars), "UPC": used_pitch_classes(bars, low),
            "QN": 100 * qualified_note_rate(bars)}
