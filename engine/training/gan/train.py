"""Train a bar GAN (CNN or Bi-LSTM generator against the bi-LSTM discriminator), export the
generator, write its card with its Table 1 row.

    popmusicnet train gan --arch cnn --minutes 6
    popmusicnet train gan --arch bilstm --minutes 6 --name gan-bilstm

Hinge loss with spectral normalisation in the discriminator (the stabiliser; the report's plain
cross-entropy GAN oscillated). Real bars are binary active planes of one 16-step bar, all voices
merged, key-normalised. After every epoch 500 bars are generated and their Table 1 row compared
with the validation bars; the epoch closest to them is kept (the usual GAN model selection by a
sample metric, done on held-out bars so the reported row against training data is not selected on).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", choices=("cnn", "bilstm"), default="cnn")
    p.add_argument("--styles", default=None, help="comma-separated style labels (default: all)")
    p.add_argument("--conditional", action="store_true", help="condition on the style")
    p.add_argument("--noise", type=int, default=100)
    p.add_argument("--width", type=int, default=None,
                   help="channels (cnn, default 64) or LSTM units (bilstm, default 128)")
    p.add_argument("--d-hidden", type=int, default=64,
                   help="discriminator LSTM units (default 64; 128 ran 1.3 s a batch here)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--minutes", type=float, default=6.0)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--max-pieces", type=int, default=400)
    p.add_argument("--max-per-piece", type=int, default=16, help="training bars per piece")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: on a shared 2-core machine two threads "
                        "spin-wait and ran 4-15x slower, measured)")
    p.add_argument("--name", default=None, help="default gan-ARCH")
    p.add_argument("--out", default=None)


def table1_distance(row: dict[str, float], ref: dict[str, float]) -> float:
    """Relative distance of a Table 1 row from a reference row (EB in points over >= 5)."""
    return (abs(row["EB"] - ref["EB"]) / max(ref["EB"], 5.0)
            + abs(row["UPC"] - ref["UPC"]) / max(ref["UPC"], 1.0)
            + abs(row["QN"] - ref["QN"]) / max(ref["QN"], 1.0))


def bars_of(barsets, split: str, spec, max_per_piece: int | None, styles: list[str],
            seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Active planes of single bars: (N, steps, P) uint8 and style indices (empty bars kept:
    they are part of what EB measures)."""
    from engine.training.morph.data import windows

    x, y = windows(barsets, split, 1, max_per_piece=max_per_piece, styles=styles, seed=seed,
                   skip_empty=False)
    return x[..., spec.n_pitches:], y


def train(args: argparse.Namespace, barsets=None) -> Path:
    import torch
    import torch.nn.functional as F

    from engine.models.gan import table1_row
    from engine.models.genroll import GridSpec
    from engine.models.runtime import user_models_dir
    from engine.training.common import ProgressLog, pick_device, seed_everything
    from engine.training.gan.model import (
        BiLSTMGenerator,
        CNNGenerator,
        Discriminator,
        GeneratorGraph,
    )
    from engine.training.morph import data as gdata

    seed_everything(args.seed)
    torch.set_num_threads(max(args.threads, 1))
    device = pick_device(args.device)
    progress = ProgressLog()
    spec = GridSpec()
    if barsets is None:
        styles_arg = args.styles.split(",") if args.styles else None
        barsets = gdata.load_barsets(styles_arg, spec, max_pieces=args.max_pieces, seed=args.seed)
    styles = sorted({b.style for b in barsets})
    xtr, ytr = bars_of(barsets, "train", spec, args.max_per_piece, styles, args.seed)
    xva, _ = bars_of(barsets, "valid", spec, 8, styles, args.seed)
    ref_valid = table1_row(xva.astype(bool), spec.low)
    ref_train = table1_row(xtr.astype(bool), spec.low)
    progress.emit("data", train_bars=len(xtr), valid_bars=len(xva), styles=styles,
                  table1_train=ref_train, table1_valid=ref_valid)
    S = len(styles) if args.conditional else 0
    P, T = spec.n_pitches, spec.bar_steps
    if args.arch == "cnn":
        gen = CNNGenerator(args.noise, S, T, P, channels=args.width or 64)
    else:
        gen = BiLSTMGenerator(args.noise, S, T, P, hidden=args.width or 128)
    disc = Discriminator(S, P, hidden=args.d_hidden)
    gen, disc = gen.to(device), disc.to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(0.5, 0.9))
    x_t = torch.from_numpy(xtr.astype(np.float32))
    onehot = torch.eye(max(S, 1))
    y_t = torch.from_numpy(ytr)
    n_batches = max(len(x_t) // args.batch, 1)
    deadline = time.monotonic() + args.minutes * 60
    started = time.perf_counter()
    best = (float("inf"), None, -1)
    eval_rng = np.random.default_rng(args.seed + 1)
    for epoch in range(args.epochs):
        gen.train()
        disc.train()
        perm = torch.randperm(len(x_t))
        ld = lg = 0.0
        for i in range(n_batches):
            idx = perm[i * args.batch:(i + 1) * args.batch]
            real = x_t[idx].to(device)
            style = onehot[y_t[idx]].to(device) if S else None
            z = torch.randn(len(idx), args.noise, device=device)
            fake = torch.sigmoid(gen(z, style))
            d_loss = (F.relu(1 - disc(real, style)).mean()
                      + F.relu(1 + disc(fake.detach(), style)).mean())
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            g_loss = -disc(fake, style).mean()
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            ld += d_loss.item()
            lg += g_loss.item()
            if time.monotonic() > deadline:
                break
        gen.eval()
        with torch.no_grad():
            z = torch.from_numpy(eval_rng.standard_normal((500, args.noise)).astype(np.float32))
            st = onehot[torch.from_numpy(eval_rng.integers(0, S, 500))] if S else None
            sample = (torch.sigmoid(gen(z.to(device), None if st is None else st.to(device)))
                      > 0.5).cpu().numpy()
        row = table1_row(sample, spec.low)
        dist = table1_distance(row, ref_valid)
        if dist < best[0]:
            best = (dist, {k: v.detach().cpu().clone() for k, v in gen.state_dict().items()}, epoch)
        progress.epoch("train", epoch, args.epochs, {"d": ld / (i + 1), "g": lg / (i + 1)},
                       started, table1=row, distance_to_valid=round(dist, 4))
        if time.monotonic() > deadline:
            progress.emit("stopped", reason="time budget", epoch=epoch)
            break
    seconds = time.perf_counter() - started
    gen.load_state_dict(best[1])
    gen = gen.cpu().eval()

    from engine.training.onnx_export import check_parity, export_onnx, write_card

    name = args.name or f"gan-{args.arch}"
    out_dir = Path(args.out) if args.out else user_models_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    graph = GeneratorGraph(gen).eval()
    g = torch.Generator().manual_seed(0)
    example = (torch.randn(3, args.noise, generator=g),)
    names = ["z"]
    dyn = {"z": {0: "batch"}, "probs": {0: "batch"}}
    if S:
        example = example + (torch.eye(S)[torch.tensor([0, S - 1, 0])],)
        names.append("style")
        dyn["style"] = {0: "batch"}
    path = out_dir / f"{name}.onnx"
    export_onnx(graph, example, path, names, ["probs"], dyn)
    parity = check_parity(graph, example, path)
    representation = {"grid": spec.to_dict(), "noise": args.noise, "conditional": bool(S),
                      "styles": styles if S else [], "features": "active",
                      "key": "C major / A minor", "arch": gen.config()}
    training = {"command": "popmusicnet train gan " + " ".join(
                    f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                    if k in ("arch", "styles", "epochs", "minutes", "batch", "lr", "seed",
                             "max_pieces", "max_per_piece", "width", "d_hidden") and v is not None)
                + (" --conditional" if S else ""),
                "styles": styles, "max_pieces": args.max_pieces, "train_bars": int(len(xtr)), "epochs_run": epoch + 1,
                "best_epoch": best[2], "seconds": round(seconds, 1), "device": str(device),
                "parity_max_abs": float(f"{parity:.2e}"),
                "params": int(sum(p.numel() for p in gen.parameters()))}
    card_path = write_card(out_dir, name, "gan", {"generator": path}, representation, training,
                           {}, description=f"{args.arch.upper()} bar generator (Liu & Huo) vs a "
                           "bi-LSTM discriminator, hinge loss + spectral norm")
    from engine.models.gan import BarGenerator
    from engine.models.runtime import load_card

    bg = BarGenerator(load_card(card_path), providers="cpu")
    row = table1_row(bg.bars(2000, seed=args.seed), spec.low)
    card = load_card(card_path)
    card.metrics = {"table1_generated_2000": {k: round(v, 2) for k, v in row.items()},
                    "table1_training_data": {k: round(v, 2) for k, v in ref_train.items()}}
    card.write(card_path)
    progress.emit("done", card=str(card_path), metrics=card.metrics)
    return card_path
