"""Train the next-frame LSTM continuation model, export its step graph, measure it, write its card.

    popmusicnet train continuation --minutes 10            # bar continuation (bundled model)
    popmusicnet train continuation --task jsb --minutes 6  # JSB-like next-frame benchmark

Bars task: 2-bar windows (previous bar + the bar to predict) of [onset | active] frames at 4 steps
per beat, key-normalised; BCE on every next frame. Measured on held-out windows by continuing the
first bar for 16 frames and comparing with the true second bar, beside "repeat the last bar".

JSB task (Boulanger-Lewandowski et al. 2012 protocol): whole chorales transposed to C major /
C minor, one frame per quarter note, 88 keys (MIDI 21-108) sounding at the beat, the first frame
predicted from an empty one; the loss per frame is the sum of the 88 per-key BCEs (nats), averaged
with every frame weighted equally. Split: the data engineer's JSB-like hymn-tune split (not the
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


def _fit(model, xtr, xva, args, progress, weight_fn=None):
    """Teacher-forced next-frame training with the best validation epoch kept.
    xtr/xva: (N, T, F) float32 tensors (inputs start with a zero frame where the task wants)."""
    import torch

    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n_batches = max(len(xtr) // args.batch, 1)
    deadline = time.monotonic() + args.minutes * 60
    started = time.perf_counter()
    best, best_state, epochs = float("inf"), None, 0

    def loss_of(x, mask=None):
        logits = model(x[:, :-1])
        per = bce(logits, x[:, 1:]).sum(-1)  # (B, T-1): nats per frame
        if mask is not None:
            m = mask[:, 1:]
            return (per * m).sum() / m.sum()
        return per.mean()

    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr[0]) if isinstance(xtr, tuple) else len(xtr))
        tot = 0.0
        for i in range(n_batches):
            idx = perm[i * args.batch:(i + 1) * args.batch]
            loss = (loss_of(xtr[0][idx], xtr[1][idx]) if isinstance(xtr, tuple)
                    else loss_of(xtr[idx]))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            tot += loss.item()
            if time.monotonic() > deadline:
                break
        model.eval()
        with torch.no_grad():
            val = (loss_of(*xva) if isinstance(xva, tuple) else loss_of(xva)).item()
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


def train(args: argparse.Namespace, barsets=None, chorales=None) -> Path:
    if args.task == "jsb":
        return train_jsb(args, chorales)
    import torch

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
    xtr, _ = gdata.windows(barsets, "train", 2, max_per_piece=args.max_per_piece, styles=styles,
                           seed=args.seed)
    xva, _ = gdata.windows(barsets, "valid", 2, max_per_piece=4, styles=styles, seed=args.seed)
    progress.emit("data", train_windows=len(xtr), valid_windows=len(xva), styles=styles)
    F = 2 * spec.n_pitches
    model = FrameLSTM(F, args.hidden, args.layers, args.dropout)
    init_output_bias(model.out, xtr)
    model = model.to(device)
    fit = _fit(model, torch.from_numpy(xtr.astype(np.float32)).to(device),
               torch.from_numpy(xva.astype(np.float32)).to(device), args, progress)
    model = model.cpu().eval()
    out_dir = Path(args.out) if args.out else user_models_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{args.name}.step.onnx"
    parity = export_step(model, path)
    rep = {"grid": spec.to_dict(), "features": "onset+active", "hidden": args.hidden,
           "layers": args.layers, "context_bars": 1, "key": "normalised to C major / A minor"}
    training = {"command": "popmusicnet train continuation " + " ".join(
                    f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                    if k in ("task", "styles", "hidden", "layers", "dropout", "epochs", "minutes",
                             "batch", "lr", "max_pieces", "max_per_piece", "seed", "name")
                    and v is not None),
                "styles": styles, "max_pieces": args.max_pieces, "train_windows": int(len(xtr)), "device": str(device),
                "parity_max_abs": float(f"{parity:.2e}"), **fit}
    card_path = write_card(out_dir, args.name, "continuation", {"step": path}, rep, training, {},
                           description="next-frame LSTM (2 x 256, dropout 0.5) continuing bars")
    from engine.models.continuation import Continuer
    from engine.models.runtime import load_card
    from engine.training.continuation.evaluate import measure_bars

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
    fit = _fit(model, xtr, xva, args, progress)
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
