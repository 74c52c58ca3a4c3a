"""Shared training loop for the classifiers: weighted cross-entropy on windows, piece-level
validation (mean of window probabilities), early stopping, metrics, ONNX export and card.

Class weights follow the PopMusicNet report: W_c = N_total / N_c over the training windows, so
every class weighs the same in the loss however many windows it has.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from engine.training.classify.metrics import (PieceSet, class_weights, evaluate,  # noqa: F401
                                              to_float)
from engine.training.common import EarlyStopping, ProgressLog

log = logging.getLogger(__name__)


def torch_predictor(model: nn.Module, device: torch.device, batch: int = 256
                    ) -> Callable[[np.ndarray], np.ndarray]:
    def predict(x: np.ndarray) -> np.ndarray:
        model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(x), batch):
                xb = torch.from_numpy(to_float(x[i:i + batch])).to(device)
                out.append(model(xb).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
    return predict


def fit(model: nn.Module, train: PieceSet, valid: PieceSet, labels: Sequence[str], *,
        epochs: int, lr: float, batch: int, device: torch.device, seed: int,
        progress: ProgressLog, patience: int = 4, max_seconds: float | None = None,
        stage: str = "train", augment: Callable[[np.ndarray, np.random.Generator], np.ndarray]
        | None = None, balanced: bool = False, epoch_windows: int | None = None
        ) -> dict[str, Any]:
    """Train with class-weighted cross-entropy; keep the weights with the best validation
    piece-level balanced accuracy (ties: lower validation loss).

    With `balanced` each epoch draws its windows with every class equally likely (with
    replacement) and the loss is unweighted: the class weights would count the class sizes a
    second time. `epoch_windows` sets the windows an epoch sees (default: all of them)."""
    n = len(labels)
    x, y = train.flat()
    weights = class_weights(y, n)
    per_epoch = int(epoch_windows or len(x))
    if balanced:
        counts = np.bincount(y.astype(np.int64), minlength=n).astype(np.float64)
        draw_p = 1.0 / counts[y.astype(np.int64)]
        draw_p /= draw_p.sum()
        loss_fn = nn.CrossEntropyLoss()
    else:
        loss_fn = nn.CrossEntropyLoss(weight=torch.from_numpy(weights).to(device))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * ((per_epoch + batch - 1) // batch))
    rng = np.random.default_rng(seed)
    stopper = EarlyStopping(patience)
    best_state, best_key, best_epoch = None, (-1.0, 0.0), -1
    t_stage = time.perf_counter()
    history = []
    predict = torch_predictor(model, device)
    for epoch in range(epochs):
        model.train()
        if balanced:
            order = rng.choice(len(x), size=per_epoch, p=draw_p)
        elif per_epoch < len(x):
            order = rng.permutation(len(x))[:per_epoch]
        else:
            order = rng.permutation(len(x))
        total, seen = 0.0, 0
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            xf = to_float(x[idx])
            if augment is not None:
                xf = augment(xf, rng)
            xb = torch.from_numpy(np.ascontiguousarray(xf)).to(device)
            yb = torch.from_numpy(y[idx].astype(np.int64)).to(device)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        val = evaluate(predict, valid, labels)
        vx, vy = valid.flat()
        with torch.no_grad():
            vlogits = torch.from_numpy(predict(vx))
            vloss = float(nn.functional.cross_entropy(vlogits, torch.from_numpy(vy.astype(np.int64))))
        key = (val["balanced_accuracy"], -vloss)
        if key > best_key:
            best_key, best_state, best_epoch = key, copy.deepcopy(model.state_dict()), epoch
        stopper.step(-val["balanced_accuracy"] + 1e-3 * vloss)
        history.append({"epoch": epoch, "train_loss": total / seen, "valid_loss": vloss,
                        "valid_balanced_accuracy": val["balanced_accuracy"]})
        progress.epoch(stage, epoch, epochs, {"train": total / seen, "valid": vloss},
                       t_stage, valid_balanced_accuracy=val["balanced_accuracy"],
                       valid_window_balanced_accuracy=val["window_balanced_accuracy"])
        if stopper.should_stop:
            break
        if max_seconds and time.perf_counter() - t_stage > max_seconds:
            progress.emit("note", stage=stage, message="time budget reached")
            break
    model.load_state_dict(best_state)
    return {"best_epoch": best_epoch, "epochs_run": len(history),
            **({"sampling": "class-balanced, unweighted loss"} if balanced else
               {"class_weights": {lab: round(float(w), 3) for lab, w in zip(labels, weights)}}),
            "windows_per_epoch": per_epoch,
            "seconds": round(time.perf_counter() - t_stage, 1), "history": history}


def pitch_shift_augment(max_shift: int = 2):
    """Move each window up or down by up to `max_shift` semitones (pitch is the last axis),
    so that key-estimate errors and modal finals do not become features."""
    def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        shifts = rng.integers(-max_shift, max_shift + 1, size=len(x))
        out = np.zeros_like(x)
        for k in np.unique(shifts):
            sel = shifts == k
            if k > 0:
                out[sel, ..., k:] = x[sel, ..., :-k]
            elif k < 0:
                out[sel, ..., :k] = x[sel, ..., -k:]
            else:
                out[sel] = x[sel]
        out[:, 2:] = x[:, 2:]  # planes past onset/active (the one-track flag) are not pitches
        return out
    return augment


def spec_augment(max_frames: int = 12, max_bands: int = 6):
    """SpecAugment-style masking of (B, 1, bands, frames) windows: one run of up to
    `max_frames` frames and one of up to `max_bands` bands per window set to silence (0), so no
    single moment or register carries a class."""
    def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = x.copy()
        b, _, n_bands, n_frames = x.shape
        fw = rng.integers(0, max_frames + 1, size=b)
        f0 = rng.integers(0, np.maximum(n_frames - fw, 0) + 1)
        bw = rng.integers(0, max_bands + 1, size=b)
        b0 = rng.integers(0, np.maximum(n_bands - bw, 0) + 1)
        for i in range(b):
            x[i, :, :, f0[i]:f0[i] + fw[i]] = 0.0
            x[i, :, b0[i]:b0[i] + bw[i], :] = 0.0
        return x
    return augment


def export_classifier(model: nn.Module, example: np.ndarray, out_dir: Path, name: str,
                      kind: str, representation: dict, training: dict, metrics: dict,
                      description: str) -> tuple[Path, float]:
    """Export to NAME.onnx (dynamic batch), check torch vs ORT parity, write NAME.json."""
    from engine.training.onnx_export import check_parity, export_onnx, write_card

    model = model.cpu().eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    xb = torch.from_numpy(to_float(example))
    onnx_path = export_onnx(model, (xb,), out_dir / f"{name}.onnx", ["x"], ["logits"],
                            {"x": {0: "batch"}, "logits": {0: "batch"}})
    diff = check_parity(model, (xb,), onnx_path, atol=1e-3)
    training = dict(training, parity_max_abs_diff=float(diff))
    write_card(out_dir, name, kind, {"classifier": onnx_path}, representation, training,
               metrics, description=description)
    return onnx_path, diff


def export_and_measure(model: nn.Module, sets: dict[str, PieceSet], labels: Sequence[str],
                       out_dir: Path, name: str, kind: str, representation: dict,
                       training: dict, description: str, progress: ProgressLog,
                       extra: dict[str, PieceSet] | None = None) -> dict:
    """Checkpoint, export with parity, measure the exported graph on the valid and test pieces
    (and on any `extra` named sets, e.g. the top parts alone) through ONNX Runtime, and write
    those metrics into the card (same ONNX file, same sha256)."""
    from engine.models.card import ModelCard
    from engine.training.classify.datasets import onnx_predictor
    from engine.training.common import save_checkpoint

    out_dir = Path(out_dir)
    save_checkpoint(out_dir / f"{name}.ckpt", model=model.state_dict(),
                    labels=list(labels))  # kept if the export fails (*.ckpt is git-ignored)
    example = sets["valid"].windows[0][:2]
    path, diff = export_classifier(model, example, out_dir, name, kind, representation,
                                   training, {}, description)
    predict = onnx_predictor(path)
    metrics = {"test": evaluate(predict, sets["test"], labels),
               "valid": evaluate(predict, sets["valid"], labels)}
    for key, ps in (extra or {}).items():
        if ps.windows:
            metrics[key] = evaluate(predict, ps, labels)
    card = ModelCard.read(out_dir / f"{name}.json")
    card.metrics = metrics
    card.write(card.path)
    progress.emit("done", stage="export", model=str(path), parity=diff,
                  test_balanced_accuracy=metrics["test"]["balanced_accuracy"],
                  test_accuracy=metrics["test"]["accuracy"],
                  **{f"{k}_balanced_accuracy": m["balanced_accuracy"]
                     for k, m in metrics.items() if k not in ("test", "valid")})
    return metrics
