"""Torch-free data plumbing shared by training and `popmusicnet eval classifiers`: the cached
corpus, per-split window sets, and an ONNX Runtime predictor."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine.models.classifier import MelodySpec, TooShortError, melody_windows
from engine.training.classify import corpus
from engine.training.classify.metrics import PieceSet, to_float

log = logging.getLogger(__name__)

CACHE_DIR = Path(__file__).resolve().parents[3] / ".popmusicnet-cache" / "classify"
DEFAULT_CORPUS = CACHE_DIR / "corpus.npz"

def load_corpus(path: Path = DEFAULT_CORPUS, per_class: dict | int | None = None,
                progress=None) -> list[corpus.Piece]:
    """The cached corpus, parsing it first if there is none (a few minutes)."""
    if not Path(path).exists():
        if progress:
            progress.emit("stage", stage="parse", message=f"parsing the corpus into {path}")
        corpus.save(corpus.collect(per_class=per_class), path)
    return corpus.load(path)


def piece_sets(pieces: Sequence[corpus.Piece], labels: Sequence[str], spec: MelodySpec,
               max_windows: int, seed: int, eval_max_windows: int = 48
               ) -> dict[str, PieceSet]:
    """Windows (uint8) per split. Training pieces: hop/2 windows, at most `max_windows` chosen at
    random; valid/test: the runtime's hop, at most `eval_max_windows` evenly spaced."""
    rng = np.random.default_rng(seed)
    splits = corpus.assign_splits(list(pieces))
    index = {lab: i for i, lab in enumerate(labels)}
    out: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in ("train", "valid", "test")}
    for piece, split in zip(pieces, splits):
        if piece.label not in index:
            continue
        train = split == "train"
        try:
            w = melody_windows(piece.start, piece.end, piece.pitch, spec,
                               hop=spec.hop_steps // 2 if train else spec.hop_steps)
        except TooShortError:
            continue
        cap = max_windows if train else eval_max_windows
        if len(w) > cap:
            pick = (np.sort(rng.choice(len(w), cap, replace=False)) if train
                    else np.linspace(0, len(w) - 1, cap).round().astype(int))
            w = w[pick]
        ws, ys, ns = out[split]
        ws.append((w * 255).astype(np.uint8))
        ys.append(index[piece.label])
        ns.append(piece.group)
    return {s: PieceSet(ws, np.array(ys, dtype=np.int64), ns) for s, (ws, ys, ns) in out.items()}


def split_summary(sets: dict[str, PieceSet], labels: Sequence[str]) -> dict[str, Any]:
    return {s: {"pieces": {lab: int((ps.labels == i).sum()) for i, lab in enumerate(labels)},
                "windows": int(sum(len(w) for w in ps.windows))} for s, ps in sets.items()}


def onnx_predictor(path: Path):
    from engine.models.runtime import OnnxModel

    model = OnnxModel(path, providers="cpu", threads=2)

    def predict(x: np.ndarray) -> np.ndarray:
        return np.concatenate([model.run({"x": to_float(x[i:i + 256])})["logits"]
                               for i in range(0, len(x), 256)])
    return predict


