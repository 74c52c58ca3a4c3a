"""Measure the exported continuation model through its runtime on held-out 2-bar windows:
continue bar 1 for one bar, compare with the true bar 2 (Rajaraman's Hamming-like accuracy on
the active plane, note-onset F1), beside the "repeat the last bar" baseline."""

from __future__ import annotations

import numpy as np

from engine.models.continuation import Continuer, hamming_accuracy
from engine.models.genroll import note_f1


def measure_bars(model: Continuer, windows: np.ndarray, *, seed: int = 0, n_windows: int = 400,
                 batch: int = 128) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    if len(windows) > n_windows:
        windows = windows[np.sort(rng.choice(len(windows), n_windows, replace=False))]
    steps, p = model.spec.bar_steps, model.spec.n_pitches
    rows: dict[str, list] = {k: [] for k in ("likely", "sampled", "repeat")}
    for i in range(0, len(windows), batch):
        w = windows[i:i + batch].astype(np.float32)
        ctx, true = w[:, :steps], w[:, steps:]
        preds = {"likely": model.continue_features(ctx, steps, seed=seed + i, temperature=0.0),
                 "sampled": model.continue_features(ctx, steps, seed=seed + i),
                 "repeat": ctx}
        for k, pr in preds.items():
            for j in range(len(w)):
                rows[k].append((hamming_accuracy(pr[j, :, p:], true[j, :, p:]),
                                note_f1(pr[j], true[j], p)[2]))
    out: dict[str, float] = {"held_out_windows": int(len(windows))}
    for k, vals in rows.items():
        a = np.array(vals)
        out[f"hamming_{k}"] = round(float(a[:, 0].mean()), 5)
        out[f"note_f1_{k}"] = round(float(a[:, 1].mean()), 4)
    return out


# -- `popmusicnet eval continuation` -------------------------------------------------------------
def add_eval_arguments(p) -> None:
    p.add_argument("--model", default=None, help="model name or card path (default: bundled)")
    p.add_argument("--windows", type=int, default=400, help="held-out windows (default 400)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-report", action="store_true", help="do not write docs/RESULTS.md")


def run_eval(args) -> int:
    from engine.evaluation.report import provenance, update_section
    from engine.training.continuation.train import PUBLISHED_JSB
    from engine.training.morph import data as gdata

    model = Continuer.load(args.model, providers="cpu")
    styles = list(model.card.training.get("styles") or gdata.DEFAULT_STYLES)
    barsets = gdata.load_barsets(styles, model.spec,
                                 max_pieces=model.card.training.get("max_pieces", 400))
    xte, _ = gdata.windows(barsets, "test", 2, max_per_piece=4, styles=styles, seed=args.seed)
    m = measure_bars(model, xte, seed=args.seed, n_windows=args.windows)
    for k, v in m.items():
        print(f"{k}: {v}")
    t = model.card.training
    jsb = model.card.metrics.get("jsb_like")
    if jsb:
        jsb_md = (f"JSB-like next-frame benchmark (`{jsb['command']}`): **{jsb['test_nll_per_frame']:.2f} "
                  f"nats per frame** on the test split ({jsb['pieces']['test']} chorales, "
                  f"{jsb['test_frames']} quarter-note frames; valid {jsb['valid_nll_per_frame']:.2f}); "
                  f"published on JSB Chorales: TCN {PUBLISHED_JSB['TCN']}, LSTM "
                  f"{PUBLISHED_JSB['LSTM']} (Bai et al. 2018). Ours is JSB-like, not the same "
                  "pieces: the music21 chorales split by hymn tune (60/20/20), transposed to C "
                  "major / C minor, 88 keys MIDI 21-108 sounding at each beat, per-frame sum of "
                  "per-key BCE, every frame weighted equally; measured in torch at the end of "
                  "training (the JSB model is not bundled).")
    else:
        jsb_md = "JSB-like benchmark: not run for this model (`popmusicnet train continuation --task jsb`)."
    md = f"""## LSTM continuation

{provenance()}

Model `{model.name}`: next-frame LSTM, {model.layers} x {model.hidden}, dropout 0.5, sigmoid +
BCE, [onset | active] frames at 4 per beat, key-normalised; styles {', '.join(styles)}; trained
{t.get('epochs')} epochs in {t.get('seconds')} s (`{t.get('command')}`). Measured by
`popmusicnet eval continuation` through ONNX Runtime on {m['held_out_windows']} held-out 2-bar
windows (test split): bar 1 is the context, bar 2 is generated free-running (each frame fed
back) and compared with the true bar 2.

| continuation of bar 2 | Hamming-like accuracy (Rajaraman, N = 128) | note F1 (onsets) |
|---|---|---|
| LSTM, most likely notes (temperature 0) | {m['hamming_likely']:.4f} | {m['note_f1_likely']:.3f} |
| LSTM, sampled (temperature 1) | {m['hamming_sampled']:.4f} | {m['note_f1_sampled']:.3f} |
| repeat the last bar | {m['hamming_repeat']:.4f} | {m['note_f1_repeat']:.3f} |

Hamming-like accuracy: mean over frames of (correct notes - false notes) / 128 on the active
plane (silence scores 0), as on the slides.

{jsb_md}
"""
    if not args.no_report:
        print(f"wrote {update_section('continuation', md)}")
    return 0
