"""`popmusicnet train classifier`: options and entry (found by studio/cli/commands/train.py).

    popmusicnet train classifier --arch cnn --out assets/models
    popmusicnet train classifier --arch transformer --out assets/models
    popmusicnet train classifier --arch audio --out assets/models

Trains on the music21 corpus (engine.training.data.styles' pieces, flattened once into
classify/scores.npz in $POPMUSICNET_CACHE, default ~/.cache/popmusicnet/data), from whole scores
(every part merged; audio: the score rendered) with some single-part windows, and exports ONNX +
a card with the held-out metrics. Single process (no DDP: these models train in minutes).
No torch at module level.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.training.classify.options import add_render_options

KIND = "classifier"
HELP = ("train a style classifier: pianoroll CNN, melody Transformer or spectrogram CNN "
        "(Bach, Palestrina, Monteverdi, Trecento, Classical, Irish, German folk)")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", choices=("cnn", "transformer", "audio"), default="cnn",
                   help="cnn (PopMusicNet pianoroll CNN), transformer (schuBERT encoder) or "
                        "audio (Lil Data spectrogram CNN); default cnn")
    p.add_argument("--out", type=Path, default=Path("assets/models"), metavar="DIR",
                   help="folder for the ONNX file and the card (default assets/models)")
    p.add_argument("--name", default=None, help="model name (default classifier-midi-cnn, "
                                                "classifier-midi-transformer, classifier-audio-cnn)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 20 MIDI, 10 audio)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--max-windows", type=int, default=16,
                   help="MIDI: at most this many training windows per piece (default 16)")
    p.add_argument("--view", choices=("score", "top voice"), default="score",
                   help="MIDI: what the model reads, every track merged (score, default) or the "
                        "top voice only (the older kind)")
    p.add_argument("--single-part", type=float, default=None,
                   help="training data from one part alone: MIDI, extra windows per piece as a "
                        "share of --max-windows (default 0.25); audio, the share of renders "
                        "(default 0.2)")
    p.add_argument("--texture", type=float, default=0.0,
                   help="texture changes (folk tunes with chords and bass, scores reduced to "
                        "their top line, top line + bass or some parts): MIDI, extra windows per "
                        "piece as a share of --max-windows; audio, the share of the whole-score "
                        "renders (default 0)")
    add_render_options(p, prefix="audio: ")
    p.add_argument("--train-hop", type=int, default=None, metavar="STEPS",
                   help="MIDI: hop of the training windows (default half the window hop)")
    p.add_argument("--seconds", type=float, default=20.0,
                   help="audio: seconds rendered per piece (default 20)")
    p.add_argument("--train-renders", type=int, default=1,
                   help="audio: renders per training piece (default 1)")
    p.add_argument("--max-minutes", type=float, default=10.0,
                   help="stop training after this many minutes (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: faster than 2 on a busy machine)")


def run(args: argparse.Namespace) -> int:
    import torch

    from engine.errors import UserInputError

    if args.epochs is not None and args.epochs < 1:
        raise UserInputError(f"--epochs must be at least 1, got {args.epochs}")
    if args.single_part is not None and not 0 <= args.single_part <= 1:
        raise UserInputError(f"--single-part must be between 0 and 1, got {args.single_part}")
    if not 0 <= args.texture <= 2:
        raise UserInputError(f"--texture must be between 0 and 2, got {args.texture}")
    torch.set_num_threads(max(1, args.threads))
    command = "popmusicnet train classifier " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 \
        else f"popmusicnet train classifier --arch {args.arch}"
    if args.arch == "audio":
        from engine.training.classify.audio_data import PROGRAM_CHOICES
        from engine.training.classify.train_audio import NAME, train_audio

        if args.train_renders < 1:
            raise UserInputError(f"--train-renders must be at least 1, got {args.train_renders}")
        if not 0 <= args.texture <= 1 or not 0 <= args.other_soundfont <= 1:
            raise UserInputError("--texture and --other-soundfont must be between 0 and 1 for "
                                 "audio")
        train_audio(out_dir=args.out, seconds=args.seconds, epochs=args.epochs or 10,
                    train_renders=args.train_renders,
                    single_part=0.2 if args.single_part is None else args.single_part,
                    texture=args.texture, programs=PROGRAM_CHOICES[args.programs],
                    other_soundfont=args.other_soundfont, init=args.init,
                    lr=args.lr, batch=args.batch, seed=args.seed, device=args.device,
                    max_seconds=args.max_minutes * 60, name=args.name or NAME, command=command)
    else:
        from engine.training.classify.train_midi import train_midi

        train_midi(args.arch, out_dir=args.out, epochs=args.epochs or 20, lr=args.lr,
                   view=args.view, train_hop=args.train_hop, texture=args.texture,
                   single_part=0.25 if args.single_part is None else args.single_part,
                   batch=args.batch, max_windows=args.max_windows, seed=args.seed,
                   device=args.device, max_seconds=args.max_minutes * 60, name=args.name,
                   command=command)
    return 0
