"""Train the melody LSTM-VAE morph model, export it to ONNX and write its card.

    popmusicnet train morph --out DIR          # the bundled model: every default

Data: 2-bar windows of the corpus' key-normalised pieces (engine.training.morph.data), each
reduced to its melody tokens (the skyline: a chorale's soprano, a folk tune itself); windows
without a note are left out. Every training batch is transposed by a random number of semitones
(-5..+6, as far as the window's notes stay in the pitch window).

Loss per window: cross-entropy summed over the steps + beta * KL, the KL with free bits: each
latent dimension's batch-mean KL counts only above free_bits / latent nats, so the latent can
hold up to `--free-bits` nats of the melody before any penalty. The learning rate falls on a cosine
from --lr to a twentieth of it over the run (the epochs or the minutes, whichever end it first).
The epoch with the best greedy (free-running) per-step accuracy on the validation split is kept.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_NAME = "morph-lstmvae"
TRANSPOSE = (-5, 6)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--styles", default=None,
                   help="comma-separated style labels of the corpus (default: bach, "
                        "chinese_folk, german_folk, irish)")
    p.add_argument("--bars", type=int, default=2, help="bars per window (default 2)")
    p.add_argument("--latent", type=int, default=64, help="latent size (default 64)")
    p.add_argument("--hidden", type=int, default=256, help="decoder LSTM units (default 256)")
    p.add_argument("--enc-hidden", type=int, default=192,
                   help="encoder LSTM units per direction (default 192)")
    p.add_argument("--embed", type=int, default=64, help="token embedding size (default 64)")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--minutes", type=float, default=28.0,
                   help="stop training after this long (default 28)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--beta", type=float, default=0.05, help="KL weight (default 0.05)")
    p.add_argument("--free-bits", type=float, default=256.0,
                   help="nats of KL over the whole latent left unpenalised (default 256)")
    p.add_argument("--word-dropout", type=float, default=0.3,
                   help="share of the decoder's previous tokens hidden in training (default 0.3)")
    p.add_argument("--no-transpose", action="store_true",
                   help="no transposition augmentation")
    p.add_argument("--max-pieces", type=int, default=400, help="pieces per style at most")
    p.add_argument("--max-per-piece", type=int, default=32, help="training windows per piece")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: on a shared 2-core machine two threads "
                        "spin-wait and ran 4-15x slower, measured)")
    p.add_argument("--name", default=DEFAULT_NAME)
    p.add_argument("--out", default=None, help="models folder (default: the user models folder)")


def token_windows(barsets, split: str, n_bars: int, n_pitches: int, *, styles, seed: int,
                  max_per_piece: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(N, T) int64 melody tokens of the split's windows with at least one note, and their
    style indices."""
    from engine.models import melody_tokens as mt
    from engine.training.morph import data as gdata

    x, y = gdata.windows(barsets, split, n_bars, max_per_piece=max_per_piece, styles=styles,
                         seed=seed)
    if len(x) == 0:
        return np.zeros((0, n_bars * 16), np.int64), y
    tok = mt.from_features(x, n_pitches)
    keep = (tok >= mt.NOTE0).any(axis=1)
    return tok[keep], y[keep]


def transpose_batch(tokens, n_pitches: int, generator):
    """Each window moved by a random number of semitones in TRANSPOSE, as far as its notes stay
    inside the pitch window (torch, in place of a copy)."""
    import torch

    from engine.models.melody_tokens import NOTE0

    notes = tokens >= NOTE0
    big = torch.iinfo(tokens.dtype).max
    lo = torch.where(notes, tokens, torch.full_like(tokens, big)).min(dim=1).values - NOTE0
    hi = torch.where(notes, tokens, torch.full_like(tokens, -1)).max(dim=1).values - NOTE0
    down = torch.clamp(-lo, min=TRANSPOSE[0], max=0)
    up = torch.clamp(n_pitches - 1 - hi, min=0, max=TRANSPOSE[1])
    r = torch.rand(len(tokens), generator=generator)
    shift = (down + torch.floor(r * (up - down + 1)).long()).clamp(max=up)
    return torch.where(notes, tokens + shift.unsqueeze(1), tokens)


def greedy_accuracy(vae, tokens, batch: int = 512) -> tuple[float, float]:
    """Per-step accuracy of the greedy decode from mu, and teacher-forced (torch)."""
    import torch

    vae.eval()
    free, forced, n = 0.0, 0.0, 0
    with torch.no_grad():
        for i in range(0, len(tokens), batch):
            x = tokens[i:i + batch]
            mu, _ = vae.encode(x)
            noise = torch.zeros(len(x), x.shape[1], vae.vocab)
            free += float((vae.decode(mu, noise) == x).float().sum())
            forced += float((vae.decode_logits(x, mu).argmax(-1) == x).float().sum())
            n += x.numel()
    return free / max(n, 1), forced / max(n, 1)


def train(args: argparse.Namespace, barsets=None) -> Path:
    """Train, export, measure, write the card; returns the card's path. `barsets` (a list of
    data.BarSet) replaces the corpus (tests)."""
    import torch

    from engine.models import melody_tokens as mt
    from engine.models.genroll import GridSpec
    from engine.models.runtime import user_models_dir
    from engine.training.common import ProgressLog, pick_device, seed_everything
    from engine.training.morph import data as gdata
    from engine.training.morph.model import MelodyVAE, export_graphs

    seed_everything(args.seed)
    torch.set_num_threads(max(args.threads, 1))
    device = pick_device(args.device)
    progress = ProgressLog()
    spec = GridSpec()
    P = spec.n_pitches
    styles_arg = args.styles.split(",") if args.styles else None
    if barsets is None:
        barsets = gdata.load_barsets(styles_arg, spec, max_pieces=args.max_pieces, seed=args.seed)
    styles = sorted({b.style for b in barsets})
    xtr, ytr = token_windows(barsets, "train", args.bars, P, styles=styles, seed=args.seed,
                             max_per_piece=args.max_per_piece)
    xva, _ = token_windows(barsets, "valid", args.bars, P, styles=styles, seed=args.seed,
                           max_per_piece=4)
    if len(xtr) == 0 or len(xva) == 0:
        raise ValueError("no training or validation windows with a melody")
    progress.emit("data", train_windows=len(xtr), valid_windows=len(xva), styles=styles)

    V = mt.vocab_size(P)
    vae = MelodyVAE(V, args.hidden, args.latent, args.embed, args.enc_hidden,
                    word_dropout=args.word_dropout).to(device)
    opt = torch.optim.Adam(vae.parameters(), lr=args.lr)
    ce = torch.nn.CrossEntropyLoss(reduction="none")
    xtr_t = torch.from_numpy(xtr)
    xva_t = torch.from_numpy(xva)
    gen = torch.Generator().manual_seed(args.seed)
    n_batches = max(len(xtr) // args.batch, 1)
    deadline = time.monotonic() + args.minutes * 60
    started = time.perf_counter()
    best, best_state, best_epoch, step = -1.0, None, 0, 0
    free_per_dim = args.free_bits / args.latent
    total_steps = args.epochs * n_batches
    budget = args.minutes * 60

    def set_lr() -> None:
        # cosine from lr to lr/20 over the run, whichever of the epochs or the minutes ends it
        done = min(max(step / total_steps, (time.perf_counter() - started) / budget), 1.0)
        for g in opt.param_groups:
            g["lr"] = args.lr / 20 + (args.lr - args.lr / 20) * 0.5 * (1 + np.cos(np.pi * done))

    epochs_done = 0
    for epoch in range(args.epochs):
        vae.train()
        perm = torch.randperm(len(xtr_t), generator=gen)
        tot = {"rec": 0.0, "kl": 0.0}
        for i in range(n_batches):
            x = xtr_t[perm[i * args.batch:(i + 1) * args.batch]]
            if not args.no_transpose:
                x = transpose_batch(x, P, gen)
            x = x.to(device)
            set_lr()
            logits, mu, logvar = vae(x)
            rec = ce(logits.reshape(-1, V), x.reshape(-1)).view(x.shape).sum(1).mean()
            kl_dim = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean(0)
            kl_term = torch.clamp(kl_dim, min=free_per_dim).sum()
            loss = rec + args.beta * kl_term
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            opt.step()
            step += 1
            tot["rec"] += rec.item()
            tot["kl"] += kl_dim.sum().item()
            if time.monotonic() > deadline:
                break
        vae_cpu = vae.cpu()
        acc, acc_tf = greedy_accuracy(vae_cpu, xva_t)
        vae.to(device)
        if acc > best:
            best, best_epoch = acc, epoch + 1
            best_state = {k: v.detach().cpu().clone() for k, v in vae.state_dict().items()}
        epochs_done = epoch + 1
        progress.epoch("train", epoch, args.epochs, {
            "rec": tot["rec"] / (i + 1), "kl": tot["kl"] / (i + 1),
            "valid_step_accuracy": acc, "valid_step_accuracy_teacher_forced": acc_tf}, started)
        if time.monotonic() > deadline:
            progress.emit("stopped", reason="time budget", epoch=epoch)
            break
    train_seconds = time.perf_counter() - started
    vae.load_state_dict(best_state)
    vae = vae.cpu().eval()

    # style centroids: the mean latent (mu) of each style's training windows
    with torch.no_grad():
        mus = np.concatenate([vae.encode(xtr_t[i:i + 512])[0].numpy()
                              for i in range(0, len(xtr_t), 512)])
    centroids = {s: mus[ytr == k].mean(axis=0).round(5).tolist() for k, s in enumerate(styles)
                 if np.any(ytr == k)}

    out_dir = Path(args.out) if args.out else user_models_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    exported = export_graphs(vae, out_dir, args.name, args.bars * spec.bar_steps)
    from engine.training.onnx_export import write_card

    representation = {
        "grid": spec.to_dict(), "n_bars": args.bars, "latent": args.latent,
        "hidden": args.hidden, "enc_hidden": args.enc_hidden, "embed": args.embed,
        "layers": 1,
        "melody": {"vocab": V, "rest": mt.REST, "hold": mt.HOLD, "note0": mt.NOTE0,
                   "steps": args.bars * spec.bar_steps,
                   "tokens": "per 16th step: rest, hold, or note-on of pitch grid.low + "
                             "(token - note0)",
                   "source": "skyline (highest sounding pitch) of every pitched track"},
        "key": "normalised to C major / A minor", "styles": styles, "centroids": centroids}
    xte, _ = token_windows(barsets, "test", args.bars, P, styles=styles, seed=args.seed,
                           max_per_piece=4)
    te_acc, te_tf = greedy_accuracy(vae, torch.from_numpy(xte)) if len(xte) else (None, None)
    training = {"command": "popmusicnet train morph " + _args_line(args),
                "styles": styles, "max_pieces": args.max_pieces,
                "train_windows": int(len(xtr)), "valid_windows": int(len(xva)),
                "epochs": epochs_done, "best_epoch": best_epoch, "steps": step,
                "seconds": round(train_seconds, 1), "device": str(device),
                "best_valid_step_accuracy": round(best, 4),
                "test_step_accuracy_teacher_forced_torch":
                    None if te_tf is None else round(te_tf, 4),
                "test_step_accuracy_greedy_torch": None if te_acc is None else round(te_acc, 4),
                "parity": {k: float(f"{v:.2e}") for k, v in exported["parity"].items()},
                "data": "music21 corpus via engine.training.data.load_styles (group splits)"}
    card_path = write_card(out_dir, args.name, "morph", exported["files"], representation,
                           training, {}, description="melody LSTM-VAE style morphing "
                           "(BiLSTM encoder, LSTM decoder fed z at every step, greedy or "
                           "Gumbel-sampled decode in one graph, slerp between latents)")
    from engine.models.morph import Morpher
    from engine.models.runtime import load_card
    from engine.training.morph.evaluate import reconstruction

    morpher = Morpher(load_card(card_path), providers="cpu")
    card = load_card(card_path)
    card.metrics = reconstruction(morpher, xte if len(xte) else xva, seed=args.seed)
    card.write(card_path)
    progress.emit("done", card=str(card_path), metrics=card.metrics)
    return card_path


def init_output_bias(layer, x: np.ndarray) -> None:
    """Start a sigmoid output layer's bias at the logit of each feature's training frequency
    (used by the continuation LSTM's pianoroll output).

    Measured: from a zero bias, the pianoroll LSTM-VAE and the next-frame LSTM sat at the
    frequency-only loss (318 nats a window) for 800+ steps without using their inputs; from
    this bias they left it within ~150 steps."""
    import torch

    m = np.clip(x.reshape(-1, x.shape[-1]).mean(axis=0), 1e-3, 1 - 1e-3)
    with torch.no_grad():
        layer.bias.copy_(torch.from_numpy(np.log(m / (1 - m)).astype(np.float32)))


def _args_line(args: argparse.Namespace) -> str:
    keep = ("styles", "bars", "latent", "hidden", "enc_hidden", "embed", "epochs", "minutes",
            "batch", "lr", "beta", "free_bits", "word_dropout", "max_pieces", "max_per_piece",
            "seed", "name")
    parts = []
    for k in keep:
        v = getattr(args, k, None)
        if v is not None:
            parts.append(f"--{k.replace('_', '-')} {v}")
    if getattr(args, "no_transpose", False):
        parts.append("--no-transpose")
    return " ".join(parts)
