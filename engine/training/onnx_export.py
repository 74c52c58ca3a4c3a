"""torch -> ONNX export, parity against ONNX Runtime, and model-card writing.

Uses the legacy TorchScript exporter (`dynamo=False`): the dynamo exporter silently fixes a
"dynamic" LSTM sequence length and writes weights to a side file (measured with torch 2.13).
Recurrent models are exported as a single step with explicit state inputs and outputs; loops run
in the engine.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.models.card import ModelCard, sha256_file

log = logging.getLogger(__name__)
OPSET = 17


def export_onnx(module: torch.nn.Module, example_inputs: tuple[torch.Tensor, ...],
                path: str | Path, input_names: list[str], output_names: list[str],
                dynamic_axes: dict[str, dict[int, str]] | None = None) -> Path:
    """Export `module` in eval mode to one self-contained .onnx file (weights inside)."""
    from engine.fileio import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = module.training
    module.eval()
    try:
        with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about python control flow
            torch.onnx.export(module, example_inputs, str(tmp), input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes or {},
                              opset_version=OPSET, dynamo=False, do_constant_folding=True)
    finally:
        module.train(was_training)
    return path


def check_parity(module: torch.nn.Module, example_inputs: tuple[torch.Tensor, ...],
                 path: str | Path, atol: float = 1e-4) -> float:
    """Run `module` and the exported graph (ONNX Runtime, CPU) on the same inputs; return the
    max abs difference over all outputs, raising AssertionError above `atol`."""
    from engine.models.runtime import OnnxModel

    module.eval()
    with torch.no_grad():
        ref = module(*example_inputs)
    ref = ref if isinstance(ref, (tuple, list)) else (ref,)
    model = OnnxModel(path, providers="cpu")
    feeds = {name: t.detach().cpu().numpy() for name, t in zip(model.inputs, example_inputs)}
    got = model.run(feeds)
    diff = max(float(np.max(np.abs(r.detach().cpu().numpy() - g), initial=0.0))
               for r, g in zip(ref, got.values()))
    if diff > atol:
        raise AssertionError(f"{Path(path).name}: torch vs ONNX Runtime differ by {diff:.2e}")
    return diff


def write_card(models_dir: str | Path, name: str, kind: str, files: dict[str, Path],
               representation: dict[str, Any], training: dict[str, Any],
               metrics: dict[str, Any], version: str = "1", description: str = "") -> Path:
    """Write NAME.json beside the component files (which must already be in `models_dir`)."""
    models_dir = Path(models_dir)
    rel, digests = {}, {}
    for component, p in files.items():
        p = Path(p)
        if p.parent.resolve() != models_dir.resolve():
            raise ValueError(f"{p} must be inside {models_dir}")
        rel[component] = p.name
        digests[component] = sha256_file(p)
    card = ModelCard(name=name, kind=kind, version=version, files=rel, sha256=digests,
                     representation=representation, training=training, metrics=metrics,
                     description=description)
    return card.write(models_dir / f"{name}.json")
