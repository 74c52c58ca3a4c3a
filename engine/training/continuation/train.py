"""Train the next-frame LSTM continuation model, export its step graph, measure it, write its card.

    popmusicnet train continuation --minutes 10            # bar continuation (bundled model)
    popmusicnet train continuation --task jsb --minutes 6  # JSB-like next-frame benchmark

Bars task: 2-bar windows (previous bar + the bar to predict; `--window-bars`) of [onset | active]
frames at 4 steps per beat, key-normalised; BCE on every next frame. With `--lookback` (default)
each input step also holds the frame one bar before the predicted one and its position in the bar
(Magenta's Lookback RNN; engine.models.continuation.model_inputs). After training, the decoding
(onset / held thresholds, at most k onsets a step or a multiple of the expected number) is chosen
on the validation windows for note F1, writing at most 1.25 x the true number of notes, and
stored in the card (beside the decoding with the best F1 alone); then the test windows are measured by continuing the first bar for 16
frames and comparing with the true second bar, beside "repeat the last bar".

JSB task (Boulanger-Lewandowski et al. 2012 protocol): whole chorales transposed to C major /
C minor, one frame per quarter note, 88 keys (MIDI 21-108) sounding at the beat, the first frame
predicted from an empty one; the loss per frame is the sum of the 88 per-key BCEs (nats), averaged
with every frame weighted equally. Split: the corpus's JSB-like hymn-tune split (not the
same pieces as JSB Chorales, so the figure is JSB-like only). The JSB model is measured in torch
and not bundled (it serves the benchmark, not a feature).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

JSB_LOW, JSB_KEYS = 21, 88
PUBLISHED_JSB = {"TCN": 8.10, "LSTM": 8.45}  # Bai, Kolter & Koltun 2018, Table 1 (NLL per frame)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", choices=("bars", "jsb"), default="bars")
    p.add_argument("--styles", default=None, help="comma-separated style labels (bars task)")
    p.add_argument("--lookback", action=argparse.BooleanOptionalAction, default=True,
                   help="bars task: also input the frame one bar before the predicted one and "
                        "its position in the bar (default on)")
    p.add_argument("--window-bars", type=int, default=2,
                   help="bars task: bars per training window (default 2)")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--max-pieces", type=int, default=400)
    p.add_argument("--max-per-piece", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: on a shared 2-core machine two threads "
                        "spin-wait and ran 4-15x slower, measured)")
    p.add_argument("--name", default="continuation-lstm")
    p.add_argument("--out", default=None)


def _fit(model, tr, va, args, progress):
    """Teacher-forced next-frame training with the best validation epoch kept.
    tr/va: (inputs (N, T, n_inputs), targets (N, T, F), mask (N, T) or None) float32 tensors:
    inputs[:, t] predicts targets[:, t]; the loss is nats per (unmasked) frame."""
    import torch

    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n_batches = max(len(tr[0]) // args.batch, 1)
    deadline = time.monotonic() + args.minutes * 60
    started = time.perf_counter()
    best, best_state, epochs = float("inf"), None, 0

    def loss_of(x, y, mask=None):
        per = bce(model(x), y).sum(-1)  # (B, T): nats per frame
        if mask is not None:
            return (per * mask).sum() / mask.sum()
        return per.mean()

    def valid_loss():
        total, n = 0.0, 0
        for i in range(0, len(va[0]), 256):
            sl = slice(i, i + 256)
            m = None if va[2] is None else va[2][sl]
            w = float(m.sum()) if m is not None else len(va[0][sl]) * va[0].shape[1]
            total += loss_of(va[0][sl], va[1][sl], m).item() * w
            n += w
        return total / max(n, 1)

    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(tr[0]))
        tot = 0.0
        for i in range(n_batches):
            idx = perm[i * args.batch:(i + 1) * args.batch]
            loss = loss_of(tr[0][idx], tr[1][idx], None if tr[2] is None else tr[2][idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            tot += loss.item()
            if time.monotonic() > deadline:
                break
        model.eval()
        with torch.no_grad():
            val = valid_loss()
        if val < best:
            best = val
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        epochs = epoch + 1
        progress.epoch("train", epoch, args.epochs, {"nll": tot / (i + 1), "valid_nll": val},
                       started)
        if time.monotonic() > deadline:
            progress.emit("stopped", reason="time budget", epoch=epoch)
            break
    model.load_state_dict(best_state)
    return {"epochs": epochs, "seconds": round(time.perf_counter() - started, 1),
            "best_valid_nll_per_frame": round(best, 4)}


def bar_tensors(x: np.ndarray, spec, lookback: bool, device):
    """(inputs, targets, None) tensors of next-frame training on windows x (N, T, F)."""
    import torch

    from engine.models.continuation import model_inputs

    x = x.astype(np.float32)
    inp = model_inputs(x, np.arange(x.shape[1] - 1), spec.bar_steps, lookback=lookback)
    return (torch.from_numpy(np.ascontiguousarray(inp)).to(device),
            torch.from_numpy(np.ascontiguousarray(x[:, 1:])).to(device), None)


def train(args: argparse.Namespace, barsets=None, chorales=None) -> Path:
    if args.task == "jsb":
        return train_jsb(args, chorales)
    import torch

    from engine.models.continuation import n_model_inputs
    from engine.models.genroll import GridSpec
    from engine.models.runtime import user_models_dir
    from engine.training.common import ProgressLog, pick_device, seed_everything
    from engine.training.continuation.model import FrameLSTM, export_step
    from engine.training.morph.train import init_output_bias
    from engine.training.morph import data as gdata
    from engine.training.onnx_export import write_card

    seed_everything(args.seed)
    torch.set_num_threads(max(args.threads, 1))
    device = pick_device(args.device)
    progress = ProgressLog()
    spec = GridSpec()
    if barsets is None:
        styles_arg = args.styles.split(",") if args.styles else None
        barsets = gdata.load_barsets(styles_arg, spec, max_pieces=args.max_pieces, seed=args.seed)
    styles = sorted({b.style for b in barsets})
    if args.window_bars < 2:
        raise ValueError("--window-bars must be at least 2")
    xtr, _ = gdata.windows(barsets, "train", args.window_bars, max_per_piece=args.max_per_piece,
                           styles=styles, seed=args.seed)
    # validation and test: the measured task itself, 2-bar windows (bar 1 context, bar 2 to continue)
    xva, _ = gdata.windows(barsets, "valid", 2, max_per_piece=4, styles=styles, seed=args.seed)
    if not len(xtr) or not len(xva):
        raise ValueError(f"no training or validation windows of {args.window_bars} bars")
    progress.emit("data", train_windows=len(xtr), valid_windows=len(xva), styles=styles)
    F = 2 * spec.n_pitches
    n_inputs = n_model_inputs(F, spec.bar_steps, args.lookback)
    model = FrameLSTM(F, args.hidden, args.layers, args.dropout, n_inputs=n_inputs)
    init_output_bias(model.out, xtr)
    model = model.to(device)
    fit = _fit(model, bar_tensors(xtr, spec, args.lookback, device),
               bar_tensors(xva, spec, args.lookback, device), args, progress)
    model = model.cpu().eval()
    out_dir = Path(args.out) if args.out else user_models_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{args.name}.step.onnx"
    parity = export_step(model, path)
    rep = {"grid": spec.to_dict(), "features": "onset+active", "hidden": args.hidden,
           "layers": args.layers, "context_bars": 1, "key": "normalised to C major / A minor",
           "lookback": bool(args.lookback),
           "inputs": ("frame t | frame t+1-16 (one bar before the predicted frame) | one-hot "
                      "position of t+1 in the bar | has-lookback flag" if args.lookback
                      else "frame t")}
    training = {"command": "popmusicnet train continuation " + " ".join(
                    (f"--{k.replace('_', '-')}" if v is True else
                     f"--no-{k.replace('_', '-')}" if v is False else
                     f"--{k.replace('_', '-')} {v}") for k, v in vars(args).items()
                    if k in ("task", "styles", "lookback", "window_bars", "hidden", "layers",
                             "dropout", "epochs", "minutes", "batch", "lr", "max_pieces",
                             "max_per_piece", "seed", "threads", "name")
                    and v is not None),
                "styles": styles, "max_pieces": args.max_pieces, "train_windows": int(len(xtr)),
                "window_bars": args.window_bars, "device": str(device),
                "parity_max_abs": float(f"{parity:.2e}"), **fit}
    card_path = write_card(out_dir, args.name, "continuation", {"step": path}, rep, training, {},
                           description="next-frame LSTM (2 x 256, dropout 0.5) continuing bars")
    from engine.models.continuation import Continuer
    from engine.models.runtime import load_card
    from engine.training.continuation.evaluate import choose_decoding, measure_bars

    started = time.perf_counter()
    decoding, max_f1 = choose_decoding(Continuer(load_card(card_path), providers="cpu"), xva)
    progress.emit("decoding", seconds=round(time.perf_counter() - started, 1),
                  default={k: v for k, v in decoding.items() if k != "grid"},
                  max_f1={k: v for k, v in max_f1.items() if k != "grid"})
    card = load_card(card_path)
    card.representation["decoding"] = decoding
    card.representation["decoding_max_f1"] = max_f1
    card.write(card_path)
    xte, _ = gdata.windows(barsets, "test", 2, max_per_piece=4, styles=styles, seed=args.seed)
    metrics = measure_bars(Continuer(load_card(card_path), providers="cpu"),
                           xte if len(xte) else xva, seed=args.seed)
    card = load_card(card_path)
    card.metrics = metrics
    card.write(card_path)
    progress.emit("done", card=str(card_path), metrics=metrics)
    return card_path


# -- JSB-like next-frame benchmark --------------------------------------------------------------
def jsb_frames(song, mode: str | None) -> np.ndarray:
    """(quarters, 88) float32: keys 21-108 sounding at each quarter-note beat, after transposing
    the song to C major / C minor (`mode` from the key; None = estimate)."""
    from engine.music import estimate_key

    key = estimate_key(song)
    shift = 0 if key is None else ((0 - key.tonic + 6) % 12 - 6)
    tpb = song.ticks_per_beat
    n = max(int(np.ceil(song.end / tpb)), 1)
    frames = np.zeros((n, JSB_KEYS), np.float32)
    for t in song.tracks:
        if t.is_drum:
            continue
        for note in t.notes:
            p = note.pitch + shift
            if not JSB_LOW <= p < JSB_LOW + JSB_KEYS:
                continue
            first = int(np.ceil(note.start / tpb))
            last = int(np.ceil(note.end / tpb))  # beats b with start <= b*tpb < end
            frames[first:last, p - JSB_LOW] = 1.0
    return frames


def jsb_nll(model, seqs: list[np.ndarray]) -> float:
    """Nats per frame, every frame of every piece weighted equally (frame 0 from an empty one)."""
    import torch

    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    total, frames = 0.0, 0
    model.eval()
    with torch.no_grad():
        for s in seqs:
            x = torch.from_numpy(np.concatenate([np.zeros((1, JSB_KEYS), np.float32), s]))[None]
            logits = model(x[:, :-1])
            total += bce(logits, x[:, 1:]).sum().item()
            frames += len(s)
    return total / max(frames, 1)


def _pad(seqs: list[np.ndarray]):
    import torch

    T = max(len(s) for s in seqs) + 1
    x = np.zeros((len(seqs), T, JSB_KEYS), np.float32)
    m = np.zeros((len(seqs), T), np.float32)
    for i, s in enumerate(seqs):
        x[i, 1:len(s) + 1] = s
        m[i, 1:len(s) + 1] = 1
    return torch.from_numpy(x), torch.from_numpy(m)


def train_jsb(args: argparse.Namespace, chorales=None) -> Path:
    """Train on the JSB-like train split, select on valid, report test NLL: a JSON report
    `continuation-jsb.result` in the models folder, also copied into the bar model's card
    (`--name`) when that card is there, where `popmusicnet eval continuation` reports it."""
    import json

    import torch

    from engine.models.runtime import user_models_dir
    from engine.training.common import ProgressLog, pick_device, seed_everything
    from engine.training.continuation.model import FrameLSTM
    from engine.training.morph.train import init_output_bias

    seed_everything(args.seed)
    torch.set_num_threads(max(args.threads, 1))
    device = pick_device(args.device)
    progress = ProgressLog()
    if chorales is None:
        from engine.training.data import load_chorales

        chorales = [(p.song, p.split) for p in load_chorales()]
    by = {s: [jsb_frames(song, None) for song, sp in chorales if sp == s]
          for s in ("train", "valid", "test")}
    progress.emit("data", **{k: len(v) for k, v in by.items()},
                  frames={k: int(sum(len(s) for s in v)) for k, v in by.items()})
    model = FrameLSTM(JSB_KEYS, args.hidden, args.layers, args.dropout)
    init_output_bias(model.out, np.concatenate(by["train"]))
    model = model.to(device)
    xtr, xva = _pad(by["train"]), _pad(by["valid"])
    args.batch = min(args.batch, 16)
    fit = _fit(model, (xtr[0][:, :-1], xtr[0][:, 1:], xtr[1][:, 1:]),
               (xva[0][:, :-1], xva[0][:, 1:], xva[1][:, 1:]), args, progress)
    model = model.cpu()
    result = {"task": "JSB-like next-frame (quarter-note frames, 88 keys, C major/minor)",
              "test_nll_per_frame": round(jsb_nll(model, by["test"]), 3),
              "valid_nll_per_frame": round(jsb_nll(model, by["valid"]), 3),
              "pieces": {k: len(v) for k, v in by.items()},
              "test_frames": int(sum(len(s) for s in by["test"])),
              "published_jsb_nll": PUBLISHED_JSB,
              "params": int(sum(p.numel() for p in model.parameters())), **fit,
              "command": f"popmusicnet train continuation --task jsb --minutes {args.minutes} "
                         f"--seed {args.seed}"}
    out_dir = Path(args.out) if args.out else user_models_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    # not *.json: the models folder's *.json are model cards
    path = out_dir / "continuation-jsb.result"
    from engine.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    card_path = out_dir / f"{args.name}.json"
    if card_path.exists():  # keep the benchmark beside the bar model's own metrics
        from engine.models.card import ModelCard

        card = ModelCard.read(card_path)
        card.metrics["jsb_like"] = {k: result[k] for k in (
            "test_nll_per_frame", "valid_nll_per_frame", "pieces", "test_frames",
            "published_jsb_nll", "seconds", "epochs", "command")}
        card.write(card_path)
    progress.emit("done", result=result, path=str(path))
    return path
