"""Train the MIDI style classifiers (pianoroll CNN or Transformer) on top-voice windows.

    python -m engine.training.classify.train_midi --arch cnn --out assets/models

Data: engine.training.classify.corpus (parsed once, cached as npz), a per-class quota split by
group (hymn tune, mass, work, tune), windows of `window_steps` normalised steps with hop
`hop_steps` (half that for training), at most `--max-windows` per training piece. The test split
is scored at piece level through the exported ONNX graph (the runtime's own path).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from engine.models.classifier import KIND_MIDI, MelodySpec
from engine.training.classify import corpus
from engine.training.classify.datasets import (DEFAULT_CORPUS, load_corpus, piece_sets,
                                               split_summary)
from engine.training.classify.models import MelodyTransformer, PianorollCNN
from engine.training.classify.trainer import export_and_measure, fit, pitch_shift_augment
from engine.training.common import ProgressLog, pick_device, seed_everything

log = logging.getLogger(__name__)

NAMES = {"cnn": "classifier-midi-cnn", "transformer": "classifier-midi-transformer"}


def build_model(arch: str, n_classes: int, spec: MelodySpec) -> torch.nn.Module:
    if arch == "cnn":
        return PianorollCNN(n_classes, spec.window_steps, spec.n_pitches)
    if arch == "transformer":
        return MelodyTransformer(n_classes, spec.window_steps, spec.n_pitches)
    raise ValueError(f"unknown arch {arch!r}")


def train_midi(arch: str = "cnn", *, out_dir: Path = Path("assets/models"),
               corpus_path: Path = DEFAULT_CORPUS, labels: Sequence[str] = corpus.LABELS,
               pieces: Sequence[corpus.Piece] | None = None, spec: MelodySpec = MelodySpec(),
               epochs: int = 20, lr: float = 2e-3, batch: int = 64, max_windows: int = 16,
               seed: int = 0, device: str = "auto", max_seconds: float | None = 600.0,
               name: str | None = None, command: str | None = None,
               augment_semitones: int = 2,
               progress: ProgressLog | None = None) -> dict[str, Any]:
    """Train, export to ONNX with a card, and return the card's metrics."""
    progress = progress or ProgressLog()
    seed_everything(seed)
    dev = pick_device(device)
    name = name or NAMES[arch]
    if pieces is None:
        pieces = load_corpus(corpus_path, progress=progress)
    t0 = time.perf_counter()
    sets = piece_sets(pieces, labels, spec, max_windows, seed)
    summary = split_summary(sets, labels)
    progress.emit("data", stage="windows", seconds_to_build=round(time.perf_counter() - t0, 1),
                  splits=summary)
    model = build_model(arch, len(labels), spec).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    info = fit(model, sets["train"], sets["valid"], labels, epochs=epochs, lr=lr, batch=batch,
               device=dev, seed=seed, progress=progress, max_seconds=max_seconds,
               augment=pitch_shift_augment(augment_semitones) if augment_semitones else None)
    out_dir = Path(out_dir)
    rep = dict(spec.to_dict(), labels=list(labels), input="top voice, key- and octave-"
               "normalised, time scaled by 2^k so the median inter-onset interval is ~1 beat",
               planes=["onset", "active"], batch=64)
    training = {"command": command or f"python -m engine.training.classify.train_midi --arch "
                f"{arch} --epochs {epochs} --seed {seed}", "arch": arch, "parameters": n_params,
                "data": "music21 corpus, top voice, per-class quota split by group",
                "splits": summary, "epochs": epochs, "lr": lr, "batch": batch,
                "max_windows_per_piece": max_windows, "seed": seed, "device": str(dev),
                "augment_pitch_shift": augment_semitones,
                **{k: v for k, v in info.items() if k != "history"}}
    desc = ("Style of a melody from its top voice: " + ", ".join(labels) + ". " +
            ("Pianoroll CNN with long-in-time, short-in-pitch filters (PopMusicNet)."
             if arch == "cnn" else "Transformer encoder over pianoroll steps (schuBERT)."))
    return export_and_measure(model, sets, labels, out_dir, name, KIND_MIDI, rep, training,
                              desc, progress)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", choices=sorted(NAMES), default="cnn")
    ap.add_argument("--out", type=Path, default=Path("assets/models"))
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--max-windows", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--max-seconds", type=float, default=600.0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    cmd = "python -m engine.training.classify.train_midi " + " ".join(argv or sys.argv[1:])
    train_midi(a.arch, out_dir=a.out, corpus_path=a.corpus, epochs=a.epochs, lr=a.lr,
               batch=a.batch, max_windows=a.max_windows, seed=a.seed, device=a.device,
               max_seconds=a.max_seconds, command=cmd.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
