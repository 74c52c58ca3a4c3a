"""Options of `popmusicnet train band` (no torch: the CLI's parser is built without it)."""

from __future__ import annotations

import argparse

NAME = "band-gru"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--hidden", type=int, default=96, help="GRU size (default 96)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--dropout", type=float, default=0.3, help="dropout (default 0.3)")
    p.add_argument("--batch", type=int, default=16, help="pieces per batch")
    p.add_argument("--device", default="auto",
                   help="auto (CUDA when PyTorch sees a GPU), cpu or cuda")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the ONNX files and "
                                                                "the card")
    p.add_argument("--name", default=NAME)
