"""Shared training plumbing: JSON-line progress, seeding, devices, checkpoints, early stopping
and DistributedDataParallel set-up (the same script runs alone or under `torchrun`).

Progress is one JSON object per line on stdout, so a terminal user can read it, `jq` can filter
it, and the studio's Train panel reads it through QProcess and plots it.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
import torch.distributed as dist

from engine.errors import UserInputError


# -- progress ----------------------------------------------------------------------------------
class ProgressLog:
    """Prints one JSON object per line: {"event", "stage", "epoch", "step", "losses",
    "seconds", "eta_seconds", ...}. Only rank 0 prints under DDP."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def emit(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"event": event, "seconds": round(time.perf_counter() - self.t0, 3)}
        record.update({k: _jsonable(v) for k, v in fields.items()})
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()

    def epoch(self, stage: str, epoch: int, epochs: int, losses: dict[str, float],
              stage_started: float, **extra: Any) -> None:
        """An end-of-epoch line with an ETA for the stage (linear in epochs done)."""
        elapsed = time.perf_counter() - stage_started
        eta = elapsed / (epoch + 1) * (epochs - epoch - 1)
        self.emit("epoch", stage=stage, epoch=epoch, epochs=epochs, losses=losses,
                  eta_seconds=round(eta, 1), **extra)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().item() if v.numel() == 1 else v.detach().cpu().tolist()
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float):
        return round(v, 6) if math.isfinite(v) else None
    if isinstance(v, (str, Path)):  # a path in a staged output folder: named where it goes
        from engine.fileio import final_name

        return final_name(v)
    return v


# -- seeds and devices -------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def pick_device(spec: str = "auto") -> torch.device:
    spec = spec.lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cuda" and not torch.cuda.is_available():
        raise UserInputError("--device cuda: no CUDA device is available to PyTorch here")
    if spec not in ("cpu", "cuda") and not spec.startswith("cuda:"):
        raise UserInputError(f"--device must be auto, cpu or cuda, got {spec!r}")
    return torch.device(spec)


# -- checkpoints -------------------------------------------------------------------------------
def save_checkpoint(path: str | Path, **state: Any) -> Path:
    """Atomically save plain state (state dicts, numbers, strings, lists)."""
    from engine.fileio import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True`: no pickled code runs."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserInputError(f"{path}: checkpoint not found") from None
    except Exception as exc:
        raise UserInputError(f"{path}: not a readable checkpoint ({exc})") from None


class EarlyStopping:
    """Stop when the validation loss has not improved by `min_delta` for `patience` epochs."""

    def __init__(self, patience: int = 5, min_delta: float = 0.0) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best = math.inf
        self.bad_epochs = 0

    def step(self, value: float) -> bool:
        """Record `value`; True if it is the best so far."""
        if value < self.best - self.min_delta:
            self.best, self.bad_epochs = value, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, float]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])


# -- distributed -------------------------------------------------------------------------------
@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device | None = None) -> DistInfo:
    """Join the process group when launched by `torchrun` (WORLD_SIZE > 1): NCCL on CUDA,
    gloo on CPU. A plain run returns a single-process DistInfo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device is not None and device.type == "cuda"
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local)


def device_for(dist_info: DistInfo, device: torch.device) -> torch.device:
    """Under DDP on CUDA each process takes its local GPU."""
    if device.type == "cuda" and dist_info.enabled:
        return torch.device("cuda", dist_info.local_rank)
    return device


def wrap_model(model: torch.nn.Module, dist_info: DistInfo,
               device: torch.device) -> torch.nn.Module:
    model = model.to(device)
    if not dist_info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)


def make_sampler(dataset, dist_info: DistInfo, shuffle: bool = True, seed: int = 0):
    """A DistributedSampler under DDP (each rank sees its shard), else None (use shuffle=)."""
    if not dist_info.enabled:
        return None
    from torch.utils.data.distributed import DistributedSampler

    return DistributedSampler(dataset, num_replicas=dist_info.world_size, rank=dist_info.rank,
                              shuffle=shuffle, seed=seed)


def all_reduce_mean(value: float, dist_info: DistInfo) -> float:
    """Average a scalar across ranks (identity in a single process)."""
    if not dist_info.enabled:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / dist_info.world_size


def barrier(dist_info: DistInfo) -> None:
    if dist_info.enabled:
        dist.barrier()


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
