"""Numpy-only pieces of classifier training and evaluation: class weights, window sets per
piece, piece-level probabilities (mean of windows), balanced accuracy and confusion matrices.
Kept free of torch so `popmusicnet eval classifiers` runs on the ONNX models alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from engine.models.classifier import average_windows, softmax


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """W_c = N_total / N_c (0 for a class with no samples)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(float)
    total = counts.sum()
    return np.where(counts > 0, total / np.maximum(counts, 1), 0.0).astype(np.float32)


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        m[int(t), int(p)] += 1
    return m


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean per-class recall over the classes present in the truth."""
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(cm)[present] / support[present]))


@dataclass
class PieceSet:
    """Windows of each piece of one split (uint8 or float arrays) and the piece labels."""

    windows: list[np.ndarray]
    labels: np.ndarray
    names: list[str]

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate(self.windows)
        y = np.concatenate([np.full(len(w), lab) for w, lab in zip(self.windows, self.labels)])
        return x, y


def piece_probabilities(predict: Callable[[np.ndarray], np.ndarray],
                        pieces: PieceSet) -> np.ndarray:
    """(n_pieces, n_classes): mean window probabilities per piece; `predict` gives logits."""
    sizes = [len(w) for w in pieces.windows]
    logits = predict(np.concatenate(pieces.windows))
    probs = softmax(logits.astype(np.float64))
    out, i = [], 0
    for n in sizes:
        out.append(average_windows(probs[i:i + n]))
        i += n
    return np.stack(out)


def evaluate(predict: Callable[[np.ndarray], np.ndarray], pieces: PieceSet,
             labels: Sequence[str]) -> dict[str, Any]:
    """Piece-level and window-level balanced accuracy, accuracy and the confusion matrix."""
    n = len(labels)
    pp = piece_probabilities(predict, pieces)
    cm = confusion(pieces.labels, pp.argmax(1), n)
    x, y = pieces.flat()
    wcm = confusion(y, softmax(predict(x).astype(np.float64)).argmax(1), n)
    return {"balanced_accuracy": round(balanced_accuracy(cm), 4),
            "accuracy": round(float(np.trace(cm) / max(cm.sum(), 1)), 4),
            "window_balanced_accuracy": round(balanced_accuracy(wcm), 4),
            "pieces": int(cm.sum()), "windows": int(wcm.sum()),
            "pieces_per_class": {lab: int(c) for lab, c in zip(labels, cm.sum(1))},
            "labels": list(labels), "confusion": cm.tolist()}


def to_float(x: np.ndarray) -> np.ndarray:
    """Windows are stored as uint8 (0..255) to keep memory small; models see float32 0..1."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    return x.astype(np.float32, copy=False)




#: Candidate "unsure" thresholds on the top class's piece probability.
UNSURE_GRID = tuple(round(0.2 + 0.05 * i, 2) for i in range(15))  # 0.20 .. 0.90


def choose_unsure_threshold(probs: np.ndarray, labels: np.ndarray,
                            grid: Sequence[float] = UNSURE_GRID) -> dict[str, Any]:
    """The top-class probability below which a classifier says it is unsure, chosen on
    validation pieces: the grid value that maximises (right answers - wrong answers), each piece
    weighted by 1 / its class's count (so every class counts the same, as in balanced
    accuracy); an "unsure" scores 0. Ties: the lower threshold. Returns the threshold and, for
    it, the class-balanced shares of answered pieces and of right answers among them."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels)
    w = 1.0 / counts[labels]
    top = probs.max(1)
    right = probs.argmax(1) == labels
    best = None
    for t in grid:
        ans = top >= t
        score = float((w * (ans & right)).sum() - (w * (ans & ~right)).sum())
        if best is None or score > best[0] + 1e-12:
            best = (score, t, ans)
    _, t, ans = best
    answered = float((w * ans).sum() / w.sum())
    precision = float((w * (ans & right)).sum() / max((w * ans).sum(), 1e-12))
    return {"threshold": float(t), "valid_pieces": int(len(labels)),
            "valid_answered": round(answered, 4), "valid_right_when_answered": round(precision, 4)}
