"""Train the audio style classifier (Lil Data spectrogram CNN) on rendered corpus scores.

    python -m engine.training.classify.train_audio --out assets/models

Same corpus, labels and piece-level split as the MIDI classifiers; each piece's whole score is
rendered through FluidSynth (engine.training.classify.audio_data) with random GM programs, tempo
and key, cut into 5 s log-spectrogram windows on semitone bands, and the piece is classified by
the mean of its windows' probabilities. The test pieces are also measured from their top part
rendered alone (the secondary, single-instrument row).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from engine import audio_features as af
from engine.models.classifier import KIND_AUDIO
from engine.training.classify import corpus
from engine.training.classify.audio_data import PROGRAMS, RENDER_TOP_PART, audio_sets
from engine.training.classify.models import SpectrogramCNN
from engine.training.classify.datasets import (CACHE_DIR, DEFAULT_CORPUS, load_corpus,
                                               split_summary)
from engine.training.classify.trainer import export_and_measure, fit
from engine.training.common import ProgressLog, pick_device, seed_everything

log = logging.getLogger(__name__)
NAME = "classifier-audio-cnn"


def train_audio(*, out_dir: Path = Path("assets/models"), corpus_path: Path = DEFAULT_CORPUS,
                labels: Sequence[str] = corpus.LABELS,
                pieces: Sequence[corpus.Piece] | None = None, seconds: float = 20.0,
                window_seconds: float = 5.0, train_renders: int = 1,
                single_part: float = 0.2, time_pool: int = 1, epochs: int = 10,
                lr: float = 2e-3, batch: int = 64, seed: int = 0, device: str = "auto",
                max_seconds: float | None = 600.0, name: str = NAME, command: str | None = None,
                cache_dir: Path | None = CACHE_DIR,
                progress: ProgressLog | None = None) -> dict[str, Any]:
    progress = progress or ProgressLog()
    seed_everything(seed)
    dev = pick_device(device)
    if pieces is None:
        pieces = load_corpus(corpus_path, progress=progress)
    frames = int(round(window_seconds * af.SAMPLE_RATE / af.HOP))
    t0 = time.perf_counter()
    common = dict(seconds=seconds, window_frames=frames, hop_frames=frames // 2, seed=seed,
                  cache_dir=cache_dir)
    sets = audio_sets(pieces, labels, train_renders=train_renders, single_part=single_part,
                      splits=("train", "valid"), **common)
    # the test renders as `popmusicnet eval classifiers` makes them (and finds in the cache):
    # the whole score, and the top part alone (the secondary row)
    sets["test"] = audio_sets(pieces, labels, splits=("test",), **common)["test"]
    top = audio_sets(pieces, labels, eval_render=RENDER_TOP_PART, splits=("test",), **common)
    summary = split_summary(sets, labels)
    progress.emit("data", stage="render", seconds_to_build=round(time.perf_counter() - t0, 1),
                  splits=summary)
    model = SpectrogramCNN(len(labels), af.N_BANDS, frames, time_pool=time_pool).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    info = fit(model, sets["train"], sets["valid"], labels, epochs=epochs, lr=lr, batch=batch,
               device=dev, seed=seed, progress=progress, max_seconds=max_seconds)
    rep = {"labels": list(labels), "sample_rate": af.SAMPLE_RATE, "n_fft": af.N_FFT,
           "hop": af.HOP, "bands": "semitone", "low_midi": af.LOW_MIDI, "n_bands": af.N_BANDS,
           "top_db": af.TOP_DB, "window_frames": frames, "window_hop_frames": frames // 2,
           "min_seconds": 2.0, "batch": 32,
           "features": "engine.audio_features.log_semitone (mono, dB re. clip max, [0, 1])"}
    training = {"command": command or "python -m engine.training.classify.train_audio",
                "arch": "spectrogram-cnn (4 conv3x3+maxpool2, dense 48, dropout 0.5)"
                        + (f", frames averaged by {time_pool} first" if time_pool > 1 else ""),
                "time_pool": time_pool,
                "parameters": n_params,
                "data": (f"music21 corpus scores (every part) rendered with FluidSynth "
                         f"(TimGM6mb), {seconds:g} s per render, GM programs {list(PROGRAMS)} "
                         "(one for all parts or one per part), 80-140 BPM, random key; "
                         f"{single_part:g} of the training renders one part alone; per-class "
                         "quota split by group"),
                "splits": summary, "seconds_per_render": seconds,
                "train_renders_per_piece": train_renders, "single_part": single_part,
                "epochs": epochs,
                "lr": lr, "batch": batch, "seed": seed, "device": str(dev),
                **{k: v for k, v in info.items() if k != "history"}}
    desc = ("Style of a recording from log-spectrogram windows (semitone bands): "
            + ", ".join(labels) + ". Spectrogram CNN after the Lil Data report.")
    return export_and_measure(model, sets, labels, Path(out_dir), name, KIND_AUDIO, rep,
                              training, desc, progress,
                              extra={"test_top_part": top["test"]})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("assets/models"))
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--train-renders", type=int, default=1)
    ap.add_argument("--single-part", type=float, default=0.2,
                    help="share of training renders of one part alone (default 0.2)")
    ap.add_argument("--time-pool", type=int, default=1,
                    help="average this many spectrogram frames before the CNN (default 1)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--max-seconds", type=float, default=600.0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    cmd = "python -m engine.training.classify.train_audio " + " ".join(argv or sys.argv[1:])
    train_audio(out_dir=a.out, corpus_path=a.corpus, seconds=a.seconds,
                train_renders=a.train_renders, single_part=a.single_part,
                time_pool=a.time_pool, epochs=a.epochs,
                lr=a.lr, batch=a.batch, seed=a.seed, device=a.device,
                max_seconds=a.max_seconds, command=cmd.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
