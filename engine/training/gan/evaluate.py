"""`popmusicnet eval gan`: the Liu & Huo Table 1 on 2,000 bars per row (EB %, UPC, QN %), for our
training data, a naive random model, our Bi-LSTM GAN and our CNN GAN, with the published MuseGAN
row and their training data quoted. Target: our CNN GAN closer to our training data than MuseGAN
was to theirs on every column."""

from __future__ import annotations

import argparse

import numpy as np

from engine.models.gan import BarGenerator, table1_row

#: Liu & Huo, Table 1 (Lakh Pianoroll Dataset rock bars; MuseGAN as they quote it).
PUBLISHED = {"their training data": {"EB": 24.8, "UPC": 3.28, "QN": 88.4},
             "their naive model": {"EB": 40.6, "UPC": 8.92, "QN": 30.4},
             "their Bi-LSTM GAN": {"EB": 39.5, "UPC": 7.73, "QN": 48.7},
             "their CNN-LSTM GAN": {"EB": 27.7, "UPC": 5.24, "QN": 67.4},
             "MuseGAN (published)": {"EB": 22.6, "UPC": 4.13, "QN": 62.2}}
COLUMNS = ("EB", "UPC", "QN")


def naive_bars(n: int, density: float, steps: int, pitches: int, seed: int) -> np.ndarray:
    """The naive model: every cell on independently with the training data's density."""
    return np.random.default_rng(seed).random((n, steps, pitches)) < density


def table1(cnn: BarGenerator, bilstm: BarGenerator | None, train_bars: np.ndarray,
           n: int = 2000, seed: int = 0) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    spec = cnn.spec
    real = train_bars[rng.choice(len(train_bars), min(n, len(train_bars)), replace=False)]
    rows = {"our training data": table1_row(real, spec.low),
            "naive random model (training density)": table1_row(
                naive_bars(n, float(train_bars.mean()), spec.bar_steps, spec.n_pitches, seed),
                spec.low)}
    if bilstm is not None:
        rows[f"our Bi-LSTM GAN ({bilstm.name})"] = table1_row(bilstm.bars(n, seed=seed), spec.low)
    rows[f"our CNN GAN ({cnn.name})"] = table1_row(cnn.bars(n, seed=seed), spec.low)
    return rows


def target_met(cnn_row: dict, ours: dict) -> dict[str, bool]:
    theirs, muse = PUBLISHED["their training data"], PUBLISHED["MuseGAN (published)"]
    return {c: abs(cnn_row[c] - ours[c]) < abs(muse[c] - theirs[c]) for c in COLUMNS}


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="gan-cnn", help="the CNN GAN (default gan-cnn)")
    p.add_argument("--baseline", default="gan-bilstm", help="the Bi-LSTM GAN (default gan-bilstm)")
    p.add_argument("--bars", type=int, default=2000, help="bars per row (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-report", action="store_true", help="do not write docs/RESULTS.md")


def run_eval(args: argparse.Namespace) -> int:
    from engine.errors import ModelError
    from engine.evaluation.report import provenance, update_section
    from engine.training.gan.train import bars_of
    from engine.training.morph import data as gdata

    cnn = BarGenerator.load(args.model, providers="cpu")
    try:
        bilstm = BarGenerator.load(args.baseline, providers="cpu")
    except ModelError:
        bilstm = None
    styles = list(cnn.card.training.get("styles") or gdata.DEFAULT_STYLES)
    barsets = gdata.load_barsets(styles, cnn.spec,
                                 max_pieces=cnn.card.training.get("max_pieces", 400))
    train_bars, _ = bars_of(barsets, "train", cnn.spec, None, styles, args.seed)
    rows = table1(cnn, bilstm, train_bars.astype(bool), n=args.bars, seed=args.seed)
    ours = rows["our training data"]
    cnn_row = rows[f"our CNN GAN ({cnn.name})"]
    met = target_met(cnn_row, ours)
    lines = ["| model | EB (%) | UPC | QN (%) |", "|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['EB']:.1f} | {r['UPC']:.2f} | {r['QN']:.1f} |")
    for name, r in PUBLISHED.items():
        lines.append(f"| _{name}_ (Liu & Huo, Table 1) | {r['EB']:.1f} | {r['UPC']:.2f} | "
                     f"{r['QN']:.1f} |")
    gap = {c: abs(cnn_row[c] - ours[c]) for c in COLUMNS}
    muse_gap = {c: abs(PUBLISHED['MuseGAN (published)'][c] - PUBLISHED['their training data'][c])
                for c in COLUMNS}
    verdict = ", ".join(f"{c} {gap[c]:.2f} vs {muse_gap[c]:.2f} ({'met' if met[c] else 'not met'})"
                        for c in COLUMNS)
    table = "\n".join(lines)
    print(table)
    print(f"target (|our CNN GAN - our data| < |MuseGAN - their data|): {verdict}")
    t = cnn.card.training
    md = f"""## GAN bars (Liu & Huo Table 1)

{provenance()}

{args.bars} bars per row, one 16-step bar of all voices merged (active cells), key-normalised,
pitches {cnn.spec.low}-{cnn.spec.high}; styles {', '.join(styles)} (4/4, 2/2, 2/4 pieces).
Generated bars: cells with p > 0.5 at temperature 1. CNN GAN trained {t.get('epochs_run')} epochs
in {t.get('seconds')} s (`{t.get('command')}`). UPC is averaged over non-empty bars; QN = notes of
at least 3 steps; metrics are ours (engine.models.gan, tested against hand counts and muspy), not
pypianoroll 1.0.4's. Their rows are on Lakh Pianoroll rock bars, ours on the music21 corpus:
compare each model with its own training data, not across.

{table}

Target, |our CNN GAN - our training data| < |MuseGAN - their training data| per column: {verdict}.
"""
    if not args.no_report:
        print(f"wrote {update_section('gan', md)}")
    return 0
