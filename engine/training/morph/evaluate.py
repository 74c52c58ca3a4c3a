"""Measure an exported morph model through its runtime (ONNX Runtime, CPU): what ships is what
is measured.

- reconstruction note F1 on held-out windows (z = mu), sampled (seeded Bernoulli, as the product
  decodes) and most-likely (p > 0.5); reference: decoding another window's latent (shuffled), which
  says how much of the F1 the latent carries rather than the style prior.
- smoothness: share of notes (onset cells) that change between decodes 0.1 of alpha apart
  (slerp between two held-out windows, same seed), beside the share that changes when only the
  seed changes at a fixed alpha.
- decode latency for one window (2 bars by default), batch 1, p50/p99 over repeated runs.
"""

from __future__ import annotations

import time

import numpy as np

from engine.models.genroll import note_f1
from engine.models.morph import Morpher, changed_share


def reconstruction(morpher: Morpher, windows: np.ndarray, seed: int = 0,
                   batch: int = 64) -> dict[str, float]:
    p = morpher.spec.n_pitches
    f1s = {"sampled": [], "likely": [], "shuffled": []}
    prec, rec = [], []
    rng = np.random.default_rng(seed)
    for i in range(0, len(windows), batch):
        w = windows[i:i + batch].astype(np.float32)
        mu = morpher.encode_windows(w)
        samp = morpher.decode(mu, seed=seed + i)
        likely = morpher.decode(mu, seed=seed + i, temperature=0.0)
        other = morpher.decode(mu[rng.permutation(len(mu))], seed=seed + i)
        for j in range(len(w)):
            pr, rc, f = note_f1(samp[j], w[j], p)
            f1s["sampled"].append(f)
            prec.append(pr)
            rec.append(rc)
            f1s["likely"].append(note_f1(likely[j], w[j], p)[2])
            f1s["shuffled"].append(note_f1(other[j], w[j], p)[2])
    return {"recon_f1_sampled": float(np.mean(f1s["sampled"])),
            "recon_precision_sampled": float(np.mean(prec)),
            "recon_recall_sampled": float(np.mean(rec)),
            "recon_f1_likely": float(np.mean(f1s["likely"])),
            "recon_f1_shuffled_latent": float(np.mean(f1s["shuffled"]))}


def smoothness(morpher: Morpher, windows: np.ndarray, n_pairs: int = 40,
               seed: int = 0) -> dict[str, float]:
    p = morpher.spec.n_pitches
    rng = np.random.default_rng(seed)
    alphas = np.round(np.linspace(0, 1, 11), 2)
    steps, reseeds = [], []
    mu = morpher.encode_windows(windows.astype(np.float32))
    for k in range(n_pairs):
        a, b = rng.choice(len(mu), 2, replace=False)
        z = np.stack([morpher.morph_latent(mu[a], mu[b], float(al)) for al in alphas])
        dec = morpher.decode(z, seed=seed + k)
        steps.extend(changed_share(dec[i], dec[i + 1], p) for i in range(len(alphas) - 1))
        other = morpher.decode(z[5:6], seed=seed + k + 10_000)
        reseeds.append(changed_share(dec[5], other[0], p))
    return {"smooth_change_per_0.1_alpha": float(np.mean(steps)),
            "smooth_change_per_0.1_alpha_p90": float(np.percentile(steps, 90)),
            "smooth_change_new_seed_same_alpha": float(np.mean(reseeds))}


def latency(morpher: Morpher, runs: int = 200, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((1, morpher.latent)).astype(np.float32)
    for _ in range(5):
        morpher.decode(z, seed=seed)
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        morpher.decode(z, seed=seed + i)
        times.append((time.perf_counter() - t0) * 1000)
    return {"decode_ms_p50": float(np.percentile(times, 50)),
            "decode_ms_p99": float(np.percentile(times, 99)),
            "decode_window_bars": morpher.n_bars}


def measure(morpher: Morpher, windows: np.ndarray, *, n_windows: int = 200, seed: int = 0,
            latency_runs: int = 200) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    if len(windows) > n_windows:
        windows = windows[np.sort(rng.choice(len(windows), n_windows, replace=False))]
    out: dict[str, float] = {"held_out_windows": int(len(windows))}
    out.update(reconstruction(morpher, windows, seed))
    out.update(smoothness(morpher, windows, n_pairs=min(40, max(len(windows) // 2, 1)),
                          seed=seed))
    out.update(latency(morpher, runs=latency_runs, seed=seed))
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


# -- `popmusicnet eval morph` --------------------------------------------------------------------
def add_eval_arguments(p) -> None:
    p.add_argument("--model", default=None, help="model name or card path (default: bundled)")
    p.add_argument("--windows", type=int, default=200, help="held-out windows (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-report", action="store_true", help="do not write docs/RESULTS.md")


def run_eval(args) -> int:
    """Measure the installed morph model on the test split and write the RESULTS section."""
    from engine.evaluation.report import provenance, update_section
    from engine.training.morph import data as gdata

    morpher = Morpher.load(args.model, providers="cpu")
    styles = list(morpher.card.representation.get("styles") or gdata.DEFAULT_STYLES)
    barsets = gdata.load_barsets(styles, morpher.spec,
                                 max_pieces=morpher.card.training.get("max_pieces", 400))
    xte, _ = gdata.windows(barsets, "test", morpher.n_bars, max_per_piece=4, styles=styles,
                           seed=args.seed)
    import os

    load_before = os.getloadavg()[0]
    m = measure(morpher, xte, n_windows=args.windows, seed=args.seed)
    load = max(load_before, os.getloadavg()[0])
    for k, v in m.items():
        print(f"{k}: {v}")
    t = morpher.card.training
    md = f"""## Style morphing (LSTM-VAE)

{provenance()}

Model `{morpher.name}`: 3-layer LSTM encoder/decoder ({morpher.hidden} units), latent
{morpher.latent}, {morpher.n_bars}-bar windows, styles {', '.join(styles)}; trained
{t.get('epochs')} epochs in {t.get('seconds')} s on {t.get('train_windows')} windows
(`{t.get('command')}`). Measured by `popmusicnet eval morph` through ONNX Runtime (CPU, one
thread) on {m['held_out_windows']} windows of held-out pieces (test split).

| measure | value |
|---|---|
| reconstruction note F1, sampled (z = mu, seeded Bernoulli) | {m['recon_f1_sampled']:.3f} (P {m['recon_precision_sampled']:.3f}, R {m['recon_recall_sampled']:.3f}) |
| reconstruction note F1, most likely notes (p > 0.5) | {m['recon_f1_likely']:.3f} |
| reference: another window's latent (shuffled) | {m['recon_f1_shuffled_latent']:.3f} |
| notes changed per 0.1 of alpha (mean / p90) | {m['smooth_change_per_0.1_alpha']:.3f} / {m['smooth_change_per_0.1_alpha_p90']:.3f} |
| reference: notes changed by a new seed at one alpha | {m['smooth_change_new_seed_same_alpha']:.3f} |
| decode latency, {m['decode_window_bars']} bars, p50 / p99 (target p99 < 16 ms) | {m['decode_ms_p50']:.2f} / {m['decode_ms_p99']:.2f} ms |

Latency measured with a 1-minute load average of {load:.1f} on {os.cpu_count()} cores (the
machine is shared: under load the p99 grows several-fold).
Notes are onset cells (step, pitch); "changed" = |A xor B| / |A or B| between decodes 0.1 of
alpha apart on a slerp between two held-out windows, same seed.
"""
    if not args.no_report:
        print(f"wrote {update_section('morph', md)}")
    return 0
