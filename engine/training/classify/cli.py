"""`popmusicnet train classifier`: the one parser of the style classifiers' training.

    popmusicnet train classifier --arch cnn --out assets/models
    popmusicnet train classifier --arch transformer --balanced --out assets/models
    popmusicnet train classifier --arch audio --out assets/models

Trains on the music21 corpus (engine.training.data.styles' pieces, flattened once into
classify/scores.npz in $POPMUSICNET_CACHE, default ~/.cache/popmusicnet/data), from whole scores
(every part merged; audio: the score rendered) with some single-part windows, and exports ONNX +
a card with the held-out metrics. Single process (no DDP: these models train in minutes).
The module entry points (`python -m engine.training.classify.train_midi` / `.train_audio`) parse
with this same parser (`main`), so every option is spelled and checked once. Options that only
one family reads say so in their help ("MIDI:" / "audio:"); the defaults that differ by family
are None here and chosen in `run`. No torch at module level.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

KIND = "classifier"
HELP = ("train a style classifier: pianoroll CNN, melody Transformer or spectrogram CNN "
        "(Bach, Palestrina, Monteverdi, Trecento, Classical, Irish, German folk)")
ARCHS = ("cnn", "transformer", "audio")
#: `--programs` values; engine.training.classify.audio_data.PROGRAM_CHOICES maps them to programs.
PROGRAM_CHOICE_NAMES = ("default", "wide")
#: Per family, the defaults of the options whose default is None in the parser.
DEFAULTS = {"midi": {"epochs": 20, "single_part": 0.25},
            "audio": {"epochs": 10, "single_part": 0.2}}


def register(p: argparse.ArgumentParser, arch: str = "cnn") -> None:
    p.add_argument("--arch", choices=ARCHS, default=arch,
                   help="cnn (PopMusicNet pianoroll CNN), transformer (schuBERT encoder) or "
                        f"audio (Lil Data spectrogram CNN); default {arch}")
    p.add_argument("--out", type=Path, default=Path("assets/models"), metavar="DIR",
                   help="folder for the ONNX file and the card (default assets/models)")
    p.add_argument("--name", default=None, help="model name (default classifier-midi-cnn, "
                                                "classifier-midi-transformer, classifier-audio-cnn)")
    p.add_argument("--corpus", type=Path, default=None, metavar="NPZ",
                   help="the flattened corpus (default: the cache's classify/scores.npz, "
                        "built on first use)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 20 MIDI, 10 audio)")
    p.add_argument("--lr", type=float, default=2e-3, help="learning rate (default 0.002)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--balanced", action="store_true",
                   help="draw each epoch's windows with every class equally likely "
                        "(unweighted loss) instead of class-weighting the loss")
    p.add_argument("--single-part", type=float, default=None,
                   help="training data from one part alone: MIDI, extra windows per piece as a "
                        "share of --max-windows (default 0.25); audio, the share of renders "
                        "(default 0.2)")
    p.add_argument("--texture", type=float, default=0.0,
                   help="texture changes (folk tunes with chords and bass, scores reduced to "
                        "their top line, top line + bass or some parts): MIDI, extra windows per "
                        "piece as a share of --max-windows (0-2); audio, the share of the "
                        "whole-score renders (0-1); default 0")
    p.add_argument("--max-seconds", type=float, default=600.0,
                   help="stop training after this many seconds (default 600)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: faster than 2 on a busy machine)")

    midi = p.add_argument_group("MIDI classifiers (--arch cnn, transformer)")
    midi.add_argument("--max-windows", type=int, default=16,
                      help="MIDI: at most this many training windows per piece (default 16)")
    midi.add_argument("--view", choices=("score", "top voice"), default="score",
                      help="MIDI: what the model reads, every track merged (score, default) or "
                           "the top voice only (the older kind)")
    midi.add_argument("--train-hop", type=int, default=None, metavar="STEPS",
                      help="MIDI: hop of the training windows (default half the window hop)")

    audio = p.add_argument_group("audio classifier (--arch audio)")
    audio.add_argument("--seconds", type=float, default=20.0,
                       help="audio: seconds rendered per piece (default 20)")
    audio.add_argument("--eval-seconds", type=float, default=None,
                       help="audio: render each valid/test piece whole, up to this many seconds "
                            "(at least --seconds), as `classify FILE.wav` reads a whole "
                            "recording (default: --seconds from the start)")
    audio.add_argument("--window-seconds", type=float, default=5.0,
                       help="audio: length of one spectrogram window (default 5 s; hop: half)")
    audio.add_argument("--train-renders", type=int, default=1,
                       help="audio: renders per training piece (default 1)")
    audio.add_argument("--renders-per-class", type=int, default=0,
                       help="audio: render each class's training pieces about this many times "
                            "in all (more renders of the pieces of small classes; default 0: "
                            "off)")
    audio.add_argument("--max-renders", type=int, default=12,
                       help="audio: at most this many renders of one piece (default 12)")
    audio.add_argument("--time-pool", type=int, default=1,
                       help="audio: average this many spectrogram frames before the CNN "
                            "(default 1)")
    audio.add_argument("--channels", default="16,32,32,64",
                       help="audio: channels of the four conv layers (default 16,32,32,64)")
    audio.add_argument("--epoch-windows", type=int, default=None,
                       help="audio: windows per epoch (default: every training window once)")
    audio.add_argument("--spec-augment", action="store_true",
                       help="audio: mask one run of frames and one of bands in each window")
    audio.add_argument("--patience", type=int, default=4,
                       help="audio: stop after this many epochs without a better validation "
                            "score (default 4)")
    audio.add_argument("--programs", choices=PROGRAM_CHOICE_NAMES, default="default",
                       help="audio: GM programs of the training renders: default (14 classical "
                            "and folk instruments) or wide (every melodic program, 0-111)")
    audio.add_argument("--other-soundfont", type=float, default=0.0, metavar="SHARE",
                       help="audio: share of the training renders made with an installed "
                            "soundfont other than the finder's (default 0)")
    audio.add_argument("--init", default=None, metavar="MODEL",
                       help="audio: start from this audio classifier (name or card path) "
                            "instead of random weights")


def _check(args: argparse.Namespace) -> list[int]:
    """Raise UserInputError for an option out of range; return the audio CNN's channels."""
    from engine.errors import UserInputError

    def at_least(flag: str, value: int | None, low: int) -> None:
        if value is not None and value < low:
            raise UserInputError(f"{flag} must be at least {low}, got {value}")

    at_least("--epochs", args.epochs, 1)
    at_least("--batch", args.batch, 1)
    if args.single_part is not None and not 0 <= args.single_part <= 1:
        raise UserInputError(f"--single-part must be between 0 and 1, got {args.single_part:g}")
    top_texture = 1 if args.arch == "audio" else 2
    if not 0 <= args.texture <= top_texture:
        raise UserInputError(f"--texture must be between 0 and {top_texture}, "
                             f"got {args.texture:g}")
    if args.arch != "audio":
        at_least("--max-windows", args.max_windows, 1)
        at_least("--train-hop", args.train_hop, 1)
        return []
    try:
        channels = [int(c) for c in args.channels.split(",")]
    except ValueError:
        channels = []
    if len(channels) != 4 or min(channels) < 1:
        raise UserInputError(f"--channels needs four positive integers, got {args.channels!r}")
    for flag, value, low in (("--renders-per-class", args.renders_per_class, 0),
                             ("--max-renders", args.max_renders, 1),
                             ("--train-renders", args.train_renders, 1),
                             ("--time-pool", args.time_pool, 1),
                             ("--patience", args.patience, 1),
                             ("--epoch-windows", args.epoch_windows, 1)):
        at_least(flag, value, low)
    if not 0 <= args.other_soundfont <= 1:
        raise UserInputError("--other-soundfont must be between 0 and 1, "
                             f"got {args.other_soundfont:g}")
    if not 1.0 <= args.window_seconds <= args.seconds:
        raise UserInputError(f"--window-seconds must be between 1 and --seconds "
                             f"({args.seconds:g}), got {args.window_seconds:g}")
    return channels


def run(args: argparse.Namespace, command: str | None = None) -> int:
    """Check the options (UserInputError, before anything heavy), then train and export."""
    channels = _check(args)
    import torch

    torch.set_num_threads(max(1, args.threads))
    if command is None:
        command = ("popmusicnet train classifier " + " ".join(sys.argv[3:])).strip() \
            if len(sys.argv) > 3 else f"popmusicnet train classifier --arch {args.arch}"
    family = DEFAULTS["audio" if args.arch == "audio" else "midi"]
    epochs = args.epochs or family["epochs"]
    single_part = family["single_part"] if args.single_part is None else args.single_part
    corpus = {} if args.corpus is None else {"corpus_path": args.corpus}
    if args.arch == "audio":
        from engine.training.classify.audio_data import PROGRAM_CHOICES
        from engine.training.classify.train_audio import NAME, train_audio

        train_audio(out_dir=args.out, seconds=args.seconds, eval_seconds=args.eval_seconds,
                    window_seconds=args.window_seconds, train_renders=args.train_renders,
                    single_part=single_part, texture=args.texture, time_pool=args.time_pool,
                    epochs=epochs, renders_per_class=args.renders_per_class,
                    max_renders=args.max_renders, channels=channels, balanced=args.balanced,
                    epoch_windows=args.epoch_windows, spec_augment=args.spec_augment,
                    patience=args.patience, programs=PROGRAM_CHOICES[args.programs],
                    other_soundfont=args.other_soundfont, init=args.init, lr=args.lr,
                    batch=args.batch, seed=args.seed, device=args.device,
                    max_seconds=args.max_seconds, name=args.name or NAME, command=command,
                    **corpus)
    else:
        from engine.training.classify.train_midi import train_midi

        train_midi(args.arch, out_dir=args.out, epochs=epochs, lr=args.lr, view=args.view,
                   train_hop=args.train_hop, texture=args.texture, single_part=single_part,
                   batch=args.batch, max_windows=args.max_windows, balanced=args.balanced,
                   seed=args.seed, device=args.device, max_seconds=args.max_seconds,
                   name=args.name, command=command, **corpus)
    return 0


def main(argv: Sequence[str] | None, *, prog: str, arch: str, description: str) -> int:
    """A module entry point on this parser: bad options exit 2 with argparse's usage line;
    `--out` is staged as `popmusicnet train` stages it (nothing half-built there on failure)."""
    import logging

    from engine.errors import UserInputError

    ap = argparse.ArgumentParser(prog=prog, description=description)
    register(ap, arch=arch)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    try:
        _check(args)
    except UserInputError as e:
        ap.error(str(e))
    from engine.fileio import staged_folder

    final = args.out
    # as `popmusicnet train` does: written beside --out, installed there only when it succeeds
    with staged_folder(final) as args.out:
        return run(args, command=" ".join([f"python -m {prog}", *argv]))
