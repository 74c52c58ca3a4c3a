"""Does the audio style classifier hear a folk tune the same with and without a chord track?

    .venv/bin/python scripts/audio_texture_check.py [--model NAME] [--tunes N] [--chord-style S]

Takes the held-out (test split) irish and german_folk tunes of the classifiers' corpus, renders
each twice through FluidSynth with the same random choices (tempo, key, programs, soundfont:
the card's): the tune alone, and the tune with a chord track and a bass (the rule-made per-bar
triads of engine.training.classify.texture.accompanied, held, struck on every beat or
arpeggiated), classifies both recordings whole (up to the card's evaluation length) and prints
each tune's top class alone and with chords, then how many keep their top class and how many
are called folk either way. Exit 0 when the check ran (whatever it found), 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FOLK = ("irish", "german_folk")


def check(model: str, tunes: int, chord_style: str | None, seed: int | None = None,
          out=print) -> dict:
    import numpy as np

    from engine.models.classifier import KIND_AUDIO
    from engine.models.runtime import load_card
    from engine.synth.soundfont import soundfont_named
    from engine.training.classify.audio_data import ScoreRenderer, piece_windows, render_rng
    from engine.training.classify.corpus import assign_splits
    from engine.training.classify.datasets import load_corpus, onnx_predictor
    from engine.training.classify.evaluate import _audio_seconds, _eval_seconds
    from engine.training.classify.metrics import PieceSet, piece_probabilities
    from engine.training.classify.texture import accompanied, piece_rng

    card = load_card(model, kind=KIND_AUDIO)
    rep, tr = card.representation, card.training
    labels = rep["labels"]
    seed = int(tr.get("seed", 0)) if seed is None else seed
    seconds, eval_seconds = _audio_seconds(tr), _eval_seconds(tr)
    pieces = load_corpus()
    folk = [p for p, s in zip(pieces, assign_splits(pieces))
            if s == "test" and p.label in FOLK and p.chords is not None and len(p.pitch) >= 8]
    folk = folk[:tunes] if tunes else folk
    predict = onnx_predictor(card.component_path("classifier"))
    renderer = ScoreRenderer(soundfont=soundfont_named(tr.get("soundfont")))
    folk_idx = [labels.index(f) for f in FOLK if f in labels]
    same = folk_alone = folk_chords = 0
    try:
        for p in folk:
            got = []
            for heard in (p, accompanied(p, piece_rng(p, "chords"), chord_style=chord_style)):
                w = piece_windows(renderer, heard, render_rng(seed, p, 0), seconds,
                                  int(rep["window_frames"]), int(rep["window_hop_frames"]),
                                  random_start=False, max_seconds=eval_seconds)
                probs = piece_probabilities(predict, PieceSet([w], np.zeros(1, np.int64),
                                                              [""]))[0]
                got.append((int(probs.argmax()), float(probs.max())))
            (a, pa), (b, pb) = got
            same += a == b
            folk_alone += a in folk_idx
            folk_chords += b in folk_idx
            out(f"{p.label:<11} {p.group}: alone {labels[a]} {pa:.0%}; with chords "
                f"{labels[b]} {pb:.0%}" + ("" if a == b else "  (differs)"))
    finally:
        renderer.close()
    n = len(folk)
    out(f"{card.name}: {n} folk test tunes: same top class alone and with chords for {same}/{n};"
        f" called folk {folk_alone}/{n} alone, {folk_chords}/{n} with chords")
    return {"tunes": n, "same_top_class": same, "folk_alone": folk_alone,
            "folk_with_chords": folk_chords}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="classifier-audio-cnn",
                    help="audio classifier name or card path (default classifier-audio-cnn)")
    ap.add_argument("--tunes", type=int, default=20,
                    help="how many folk test tunes (default 20; 0: all of them)")
    ap.add_argument("--chord-style", choices=("held", "beats", "arpeggio"), default=None,
                    help="how the chords are played (default: drawn per tune)")
    a = ap.parse_args(argv)
    if a.tunes < 0:
        ap.error(f"--tunes must be 0 or more, got {a.tunes}")
    from engine.errors import UserInputError

    try:
        check(a.model, a.tunes, a.chord_style)
    except UserInputError as e:
        print(f"audio_texture_check: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
