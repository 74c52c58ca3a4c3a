"""`popmusicnet train accompanist`: options and entry (found by studio/cli/commands/train.py).

    popmusicnet train accompanist --data corpus:bach --epochs 40 --out out/acc --seed 0
    torchrun --nproc_per_node=2 -m studio train accompanist --data corpus:bach --device cpu ...

No torch at module level (the CLI's parser is built without it).
"""

from __future__ import annotations

import argparse

KIND = "accompanist"
HELP = "train the VAE-RNN accompanist (bar VAEs + melody RNN + one RNN per accompaniment role)"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="corpus:bach",
                   help="corpus:bach (default), folder:PATH (your MIDI files) or lpd5:PATH "
                        "(Lakh Pianoroll Dataset 5-track npz files)")
    p.add_argument("--epochs", type=int, default=30, help="epochs per stage (early stopping on "
                                                           "the validation split may stop sooner)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for checkpoint, ONNX "
                                                                "files and the model card (the "
                                                                "model is installed there only "
                                                                "when training succeeds; the "
                                                                "checkpoint is kept for --resume)")
    p.add_argument("--name", default="accompanist-bach", help="model name (card file name)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--install", action="store_true",
                   help="also copy the model into the user models folder")
    p.add_argument("--latent", type=int, default=None, help="latent size per bar (default 32)")
    p.add_argument("--rnn-hidden", type=int, default=None, help="GRU size (default 128)")
    p.add_argument("--batch-bars", type=int, default=None, help="bars per VAE batch (256)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per process (default: PyTorch's choice; use 1 on a busy or "
                        "small machine and under torchrun on CPU)")
    p.add_argument("--latent-loss", type=float, default=None,
                   help="RNN stages: weight of the MSE to the encoder means (default 0.05; "
                        "lower lets the predicted latents carry more history to the decoders)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (2e-3)")
    p.add_argument("--transpose", type=int, default=None, metavar="T",
                   help="augmentation: shift the key-normalised pieces by -T..+T semitones "
                        "(default 2; 0 trains on C major / A minor only, as the runtime plays)")
    p.add_argument("--no-bar-context", action="store_true",
                   help="accompaniment decoders read only the melody around each step, not the "
                        "whole bar's (the model before 2026-11-23)")


def run(args: argparse.Namespace) -> int:
    from engine.errors import UserInputError
    from engine.training.accompanist.config import ModelConfig, TrainConfig
    from engine.training.accompanist.train import train

    if args.epochs < 1:
        raise UserInputError(f"--epochs must be at least 1, got {args.epochs}")
    mcfg, tcfg = ModelConfig(), TrainConfig()
    if args.latent:
        mcfg.latent = args.latent
    if args.rnn_hidden:
        mcfg.rnn_hidden = args.rnn_hidden
    mcfg.bar_context = not args.no_bar_context
    if args.batch_bars:
        tcfg.batch_bars = args.batch_bars
    if args.lr:
        tcfg.lr = args.lr
    if args.transpose is not None:
        if args.transpose < 0:
            raise UserInputError(f"--transpose must be 0 or more, got {args.transpose}")
        tcfg.transpose = args.transpose
    if args.latent_loss is not None:
        tcfg.latent_loss = args.latent_loss
    train(args.data, args.out, epochs=args.epochs, device=args.device, seed=args.seed,
          resume=args.resume, install=args.install, name=args.name, model_cfg=mcfg,
          train_cfg=tcfg, threads=args.threads,
          checkpoint_dir=getattr(args, "final_out", None) or args.out)
    return 0
