"""Train the MIDI style classifiers (pianoroll CNN or Transformer) on whole-score windows.

    python -m engine.training.classify.train_midi --arch cnn --out assets/models

Data: engine.training.classify.corpus (engine.training.data.styles' pieces, cached as npz), a
per-class quota split by group (hymn tune, mass, work, tune), windows of `window_steps`
normalised steps of the whole score (every part merged: `--view score`, the default) with hop
`hop_steps` (half that for training), at most `--max-windows` per training piece, plus
`--single-part` x that many windows of single parts (the one-track path), plus `--texture` x
that many windows of the piece with its texture changed (engine.training.classify.texture: a
folk tune with rule-made chords and bass, a score reduced to its top line, top line + bass, or
some of its parts; the label stays the style). `--view "top voice"`
trains the older melody-only kind. The test split is scored at piece level through the exported
ONNX graph (the runtime's own path), from the whole score and from the top part alone.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from engine.models.classifier import KIND_MIDI, VIEW_SCORE, VIEW_TOP, VIEWS, MelodySpec
from engine.training.classify import corpus
from engine.training.classify.datasets import (DEFAULT_CORPUS, INPUT_TOP_PART, OOD_INPUTS,
                                               load_corpus, onnx_predictor, piece_sets,
                                               split_summary)
from engine.training.classify.metrics import choose_unsure_threshold, piece_probabilities
from engine.training.classify.models import MelodyTransformer, PianorollCNN
from engine.training.classify.trainer import export_and_measure, fit, pitch_shift_augment
from engine.training.common import ProgressLog, pick_device, seed_everything

log = logging.getLogger(__name__)

NAMES = {"cnn": "classifier-midi-cnn", "transformer": "classifier-midi-transformer"}
#: Whole scores span more than a melody: six octaves around the (normalised) median pitch.
SCORE_SPEC = MelodySpec(low_pitch=24, n_pitches=72, n_planes=3)
TOP_SPEC = MelodySpec()


def build_model(arch: str, n_classes: int, spec: MelodySpec) -> torch.nn.Module:
    if arch == "cnn":
        return PianorollCNN(n_classes, spec.window_steps, spec.n_pitches,
                            in_planes=spec.n_planes)
    if arch == "transformer":
        return MelodyTransformer(n_classes, spec.window_steps, spec.n_pitches,
                                 in_planes=spec.n_planes)
    raise ValueError(f"unknown arch {arch!r}")


def train_midi(arch: str = "cnn", *, out_dir: Path = Path("assets/models"),
               corpus_path: Path = DEFAULT_CORPUS, labels: Sequence[str] = corpus.LABELS,
               pieces: Sequence[corpus.Piece] | None = None, spec: MelodySpec | None = None,
               view: str = VIEW_SCORE, single_part: float = 0.25,
               train_hop: int | None = None, texture: float = 0.0,
               epochs: int = 20, lr: float = 2e-3, batch: int = 64, max_windows: int = 16,
               balanced: bool = False,
               seed: int = 0, device: str = "auto", max_seconds: float | None = 600.0,
               name: str | None = None, command: str | None = None,
               augment_semitones: int = 2,
               progress: ProgressLog | None = None) -> dict[str, Any]:
    """Train, export to ONNX with a card, and return the card's metrics."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    spec = spec or (SCORE_SPEC if view == VIEW_SCORE else TOP_SPEC)
    if view == VIEW_TOP:
        single_part = 0.0
    progress = progress or ProgressLog()
    seed_everything(seed)
    dev = pick_device(device)
    name = name or NAMES[arch]
    if pieces is None:
        pieces = load_corpus(corpus_path, progress=progress)
    t0 = time.perf_counter()
    train_hop = train_hop or spec.hop_steps // 2
    sets = piece_sets(pieces, labels, spec, max_windows, seed, view=view,
                      single_part=single_part, train_hop=train_hop, texture=texture)
    # the secondary measurement: each held-out piece's top part alone (one track)
    top = piece_sets(pieces, labels, spec, max_windows, seed, view=view,
                     eval_input=INPUT_TOP_PART, splits=("valid", "test"))
    # each held-out piece with its texture changed (read as a whole file)
    ood = {what: piece_sets(pieces, labels, spec, max_windows, seed, view=view,
                            eval_input=what, splits=("valid", "test")) for what in OOD_INPUTS}
    summary = split_summary(sets, labels)
    progress.emit("data", stage="windows", seconds_to_build=round(time.perf_counter() - t0, 1),
                  splits=summary)
    model = build_model(arch, len(labels), spec).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    info = fit(model, sets["train"], sets["valid"], labels, epochs=epochs, lr=lr, batch=batch,
               device=dev, seed=seed, progress=progress, max_seconds=max_seconds,
               augment=pitch_shift_augment(augment_semitones) if augment_semitones else None,
               balanced=balanced)
    out_dir = Path(out_dir)
    what = ("every pitched track merged (one track's own notes with --track)"
            if view == VIEW_SCORE else "top voice (skyline)")
    rep = dict(spec.to_dict(), labels=list(labels), view=view,
               input=what + ", key- and octave-normalised, time scaled by 2^k so the median "
               "inter-onset interval is ~1 beat",
               planes=["onset", "active", "one track"][:spec.n_planes], batch=64)
    training = {"command": command or f"python -m engine.training.classify.train_midi --arch "
                f"{arch} --epochs {epochs} --seed {seed}", "arch": arch, "parameters": n_params,
                "data": (f"music21 corpus via engine.training.data.styles, {view} windows"
                         + (f" + {single_part:g} x max windows of single parts"
                            if single_part else "")
                         + (f" + {texture:g} x max windows of texture changes (folk tunes "
                            "with rule-made chords and bass; scores reduced to top line, top "
                            "line + bass or some parts)" if texture else "")
                         + ", per-class quota split by group"),
                "splits": summary, "epochs": epochs, "lr": lr, "batch": batch,
                "max_windows_per_piece": max_windows, "single_part": single_part,
                "texture": texture, "train_hop_steps": train_hop,
                "seed": seed, "device": str(dev), "augment_pitch_shift": augment_semitones,
                **{k: v for k, v in info.items() if k != "history"}}
    desc = (("Style of a score from all its tracks (or of one track): " if view == VIEW_SCORE
             else "Style of a melody from its top voice: ") + ", ".join(labels) + ". " +
            ("Pianoroll CNN with long-in-time, short-in-pitch filters (PopMusicNet)."
             if arch == "cnn" else "Transformer encoder over pianoroll steps (schuBERT)."))
    extra = {"test_top_part": top["test"], "valid_top_part": top["valid"]}
    for what, ps in ood.items():
        extra[f"test_texture_{what}"] = ps["test"]
        extra[f"valid_texture_{what}"] = ps["valid"]
    metrics = export_and_measure(model, sets, labels, out_dir, name, KIND_MIDI, rep, training,
                                 desc, progress, extra=extra)
    unsure = write_unsure_threshold(out_dir / f"{name}.json",
                                    [sets["valid"]] + [ps["valid"] for ps in ood.values()])
    progress.emit("done", stage="unsure", **unsure)
    return metrics


def write_unsure_threshold(card_path: Path, valid_sets) -> dict[str, Any]:
    """Choose the "unsure" threshold on the valid pieces (whole scores and texture-changed
    copies pooled) through the exported graph, and write it into the card
    (representation["unsure_below"], training["unsure"])."""
    import numpy as np

    from engine.models.card import ModelCard

    card = ModelCard.read(card_path)
    predict = onnx_predictor(card.component_path("classifier"))
    probs = np.concatenate([piece_probabilities(predict, s) for s in valid_sets if s.windows])
    ys = np.concatenate([s.labels for s in valid_sets if s.windows])
    unsure = choose_unsure_threshold(probs, ys)
    unsure["rule"] = ("top-class probability below which classify says unsure: maximises right "
                      "- wrong answers over the valid pieces (whole scores and texture-changed "
                      "copies pooled), every class weighted equally")
    card.representation = dict(card.representation, unsure_below=unsure["threshold"])
    card.training = dict(card.training, unsure=unsure)
    card.write(card.path)
    return unsure


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.training.classify.train_midi`: the same options as `popmusicnet train
    classifier` (engine.training.classify.cli), --arch cnn by default."""
    from engine.training.classify import cli

    return cli.main(argv, prog="engine.training.classify.train_midi",
                    arch="cnn", description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
