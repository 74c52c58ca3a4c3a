"""Train the audio style classifier (Lil Data spectrogram CNN) on rendered corpus scores.

    python -m engine.training.classify.train_audio --out assets/models

Same corpus, labels and piece-level split as the MIDI classifiers; each piece's whole score is
rendered through FluidSynth (engine.training.classify.audio_data) with random GM programs, tempo
and key, cut into log-spectrogram windows on semitone bands, and the piece is classified by
the mean of its windows' probabilities. The test pieces are also measured from their top part
rendered alone (the secondary, single-instrument row).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from engine import audio_features as af
from engine.errors import UserInputError
from engine.models.classifier import KIND_AUDIO
from engine.synth.soundfont import another_soundfont, find_soundfont
from engine.training.classify import corpus
from engine.training.classify.audio_data import (PROGRAMS, RENDER_TOP_PART,
                                                  audio_sets, train_renders_per_class)
from engine.training.classify.datasets import (CACHE_DIR, DEFAULT_CORPUS, load_corpus,
                                               split_summary)
from engine.training.classify.models import SpectrogramCNN
from engine.training.classify.trainer import export_and_measure, fit
from engine.training.classify.trainer import spec_augment as masking
from engine.training.common import ProgressLog, pick_device, seed_everything

log = logging.getLogger(__name__)
NAME = "classifier-audio-cnn"


def train_audio(*, out_dir: Path = Path("assets/models"), corpus_path: Path = DEFAULT_CORPUS,
                labels: Sequence[str] = corpus.LABELS,
                pieces: Sequence[corpus.Piece] | None = None, seconds: float = 20.0,
                eval_seconds: float | None = None,
                window_seconds: float = 5.0, train_renders: int = 1,
                single_part: float = 0.2, texture: float = 0.0, time_pool: int = 1,
                epochs: int = 10,
                renders_per_class: int = 0, max_renders: int = 12,
                channels: Sequence[int] = (16, 32, 32, 64), balanced: bool = False,
                epoch_windows: int | None = None, spec_augment: bool = False,
                patience: int = 4, programs: Sequence[int] = PROGRAMS,
                other_soundfont: float = 0.0, init: str | Path | None = None,
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
    if eval_seconds is not None and eval_seconds <= seconds:
        eval_seconds = None
    font = find_soundfont()
    other = another_soundfont(font) if other_soundfont > 0 else None
    if other_soundfont > 0 and other is None:
        raise UserInputError(f"--other-soundfont needs a second soundfont; only {font.name} "
                             "is installed")
    common = dict(seconds=seconds, window_frames=frames, hop_frames=frames // 2, seed=seed,
                  eval_seconds=eval_seconds, cache_dir=cache_dir, soundfont=font)
    sets = audio_sets(pieces, labels, train_renders=train_renders, single_part=single_part,
                      renders_per_class=renders_per_class, max_renders=max_renders,
                      texture=texture, programs=programs, other_soundfont=other_soundfont,
                      splits=("train", "valid"), **common)
    # the test renders as `popmusicnet eval classifiers` makes them (and finds in the cache):
    # the whole score, and the top part alone (the secondary row)
    sets["test"] = audio_sets(pieces, labels, splits=("test",), **common)["test"]
    top = audio_sets(pieces, labels, eval_render=RENDER_TOP_PART, splits=("test",), **common)
    summary = split_summary(sets, labels)
    progress.emit("data", stage="render", seconds_to_build=round(time.perf_counter() - t0, 1),
                  splits=summary)
    channels = tuple(int(c) for c in channels)
    model = SpectrogramCNN(len(labels), af.N_BANDS, frames, channels=channels,
                           time_pool=time_pool).to(dev)
    if init is not None:
        init_from_model(model, init, labels, frames)
        model.to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    info = fit(model, sets["train"], sets["valid"], labels, epochs=epochs, lr=lr, batch=batch,
               device=dev, seed=seed, progress=progress, max_seconds=max_seconds,
               patience=patience, balanced=balanced, epoch_windows=epoch_windows,
               augment=masking() if spec_augment else None)
    rep = {"labels": list(labels), "sample_rate": af.SAMPLE_RATE, "n_fft": af.N_FFT,
           "hop": af.HOP, "bands": "semitone", "low_midi": af.LOW_MIDI, "n_bands": af.N_BANDS,
           "top_db": af.TOP_DB, "window_frames": frames, "window_hop_frames": frames // 2,
           "min_seconds": 2.0, "batch": 32,
           "features": "engine.audio_features.log_semitone (mono, dB re. clip max, [0, 1])"}
    training = {"command": command or "python -m engine.training.classify.train_audio",
                "arch": f"spectrogram-cnn (4 conv3x3+maxpool2, channels {list(channels)}, "
                        "dense 48, dropout 0.5)"
                        + (f", frames averaged by {time_pool} first" if time_pool > 1 else ""),
                "time_pool": time_pool,
                "parameters": n_params,
                "soundfont": font.name,
                "programs": [int(p) for p in programs],
                **({"other_soundfont": {"share": other_soundfont, "soundfont": other.name}}
                   if other is not None else {}),
                **({"init": str(init)} if init is not None else {}),
                "data": (f"music21 corpus scores (every part) rendered with FluidSynth "
                         f"({font.name}"
                         + (f"; {other_soundfont:g} of the training renders {other.name}"
                            if other is not None else "")
                         + f"), {seconds:g} s per render, GM programs "
                         + (f"{list(programs)}" if len(programs) < 20 else
                            f"{min(programs)}-{max(programs)} ({len(programs)} programs)")
                         + " (one for all parts or one per part; valid/test renders: "
                         f"{list(PROGRAMS)}), 80-140 BPM, random key; "
                         f"{single_part:g} of the training renders one part alone"
                         + (f", {texture:g} of the whole-score ones with their texture changed "
                            "(folk tunes with rule-made chords and bass; scores reduced to top "
                            "line, top line + bass or some parts)" if texture else "")
                         + "; per-class quota split by group"
                         + (f"; weights initialised from {init}" if init is not None else "")),
                "splits": summary, "seconds_per_render": seconds,
                # valid/test pieces: the whole piece up to this many seconds (None: seconds)
                "eval_seconds": eval_seconds,
                "train_renders_per_piece": (
                    train_renders_per_class(pieces, corpus.assign_splits(list(pieces)), labels,
                                            train_renders, renders_per_class, max_renders)
                    if renders_per_class > 0 else train_renders),
                "single_part": single_part, "texture": texture,
                "spec_augment": ({"max_frames": 12, "max_bands": 6} if spec_augment else None),
                "patience": patience,
                "epochs": epochs,
                "lr": lr, "batch": batch, "seed": seed, "device": str(dev),
                **{k: v for k, v in info.items() if k != "history"}}
    desc = ("Style of a recording from log-spectrogram windows (semitone bands): "
            + ", ".join(labels) + ". Spectrogram CNN after the Lil Data report.")
    return export_and_measure(model, sets, labels, Path(out_dir), name, KIND_AUDIO, rep,
                              training, desc, progress,
                              extra={"test_top_part": top["test"]})


def init_from_model(model: SpectrogramCNN, init: str | Path, labels: Sequence[str],
                    frames: int) -> None:
    """Start from an installed audio classifier (a name or a card path): its checkpoint
    (NAME.ckpt beside the card) when there is one, else the weights of its ONNX graph, where
    each BatchNorm is folded into the convolution before it; the BatchNorm layers then become
    identities (their statistics are in the weights), so the model starts as that classifier.
    The architecture, labels and window length must match."""
    import onnx
    from onnx import numpy_helper

    from engine.models.runtime import load_card

    try:
        card = load_card(str(init), kind=KIND_AUDIO)
    except Exception as e:  # noqa: BLE001 - one line for the user
        raise UserInputError(f"--init: {e}") from None
    rep = card.representation
    if list(rep["labels"]) != list(labels) or int(rep["window_frames"]) != frames:
        raise UserInputError(f"--init: {card.name} has labels {rep['labels']} and "
                             f"{rep['window_frames']}-frame windows; this training has "
                             f"{list(labels)} and {frames}")
    ckpt = card.component_path("classifier").with_suffix(".ckpt")
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)["model"]
        model.load_state_dict(state)
        return
    graph = onnx.load(str(card.component_path("classifier"))).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    params: dict[str, np.ndarray] = {}
    for node in graph.node:  # "/features/features.4/Conv" -> features[4]; head Gemms by name
        if node.op_type == "Conv":
            idx = node.name.split("/")[-2].split(".")[-1] if node.name.count("/") >= 2 else ""
            if not idx.isdigit():
                raise UserInputError(f"--init: {card.name}: unexpected ONNX node {node.name}")
            params[f"features.{idx}.weight"] = weights[node.input[1]]
            params[f"features.{idx}.bias"] = weights[node.input[2]]
        elif node.op_type == "Gemm":
            params[node.input[1]] = weights[node.input[1]]
            params[node.input[2]] = weights[node.input[2]]
    state = model.state_dict()
    for k, v in params.items():
        if k not in state or tuple(state[k].shape) != v.shape:
            raise UserInputError(f"--init: {card.name} does not fit this architecture "
                                 f"({k} {v.shape})")
    for i, layer in enumerate(model.features):
        if isinstance(layer, torch.nn.BatchNorm2d):
            model.features[i] = torch.nn.Identity()
    missing = [k for k in model.state_dict() if k not in params]
    if missing:
        raise UserInputError(f"--init: {card.name} lacks {', '.join(missing)}")
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in params.items()})


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.training.classify.train_audio`: the same options as `popmusicnet train
    classifier` (engine.training.classify.cli), --arch audio by default."""
    from engine.training.classify import cli

    return cli.main(argv, prog="engine.training.classify.train_audio", arch="audio",
                    description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
