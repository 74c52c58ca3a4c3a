"""The one facade over ONNX Runtime: sessions, provider choice, and where models live.

Provider choice: ask for CUDA only when ONNX Runtime lists it, then trust only what the session
reports (`get_providers()`): onnxruntime-gpu lists CUDA as available on machines without a GPU
and silently falls back to CPU. Small per-bar models run with one intra-op thread (measured:
more threads make a single LSTM step slower).
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.errors import ModelError
from engine.models.card import ModelCard, sha256_file

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parents[2] / "assets" / "models"

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def user_models_dir() -> Path:
    env = os.environ.get("POPMUSICNET_MODELS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "popmusicnet" / "models"


def model_dirs() -> list[Path]:
    """Where cards are looked for: the user's models first (they may shadow bundled ones)."""
    return [user_models_dir(), MODELS_DIR]


def list_cards(kind: str | None = None) -> list[ModelCard]:
    """Every readable card, user models first; unreadable cards are skipped with a warning."""
    seen: set[str] = set()
    cards: list[ModelCard] = []
    for d in model_dirs():
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.json")):
            try:
                card = ModelCard.read(p)
            except ModelError as exc:
                log.warning("skipping %s", exc)
                continue
            if card.name in seen:
                first = next(c for c in cards if c.name == card.name)
                log.warning("model %r: %s is used; it shadows %s", card.name, first.path, p)
                continue
            seen.add(card.name)
            cards.append(card)
    return [c for c in cards if kind is None or c.kind == kind]


def load_card(name_or_path: str | Path | None = None, kind: str | None = None) -> ModelCard:
    """A card by file path or by name (searching `model_dirs()`); None = the first of `kind`."""
    if name_or_path is not None:
        p = Path(name_or_path)
        if p.suffix == ".json" or p.exists():
            card = ModelCard.read(p if p.suffix == ".json" else p.with_suffix(".json"))
            _check_kind(card, kind)
            return card
    cards = list_cards(kind)
    if name_or_path is None:
        if not cards:
            raise ModelError(f"no {kind or ''} model installed (looked in "
                             f"{', '.join(str(d) for d in model_dirs())})".replace("  ", " "))
        return cards[0]
    for card in cards:
        if card.name == str(name_or_path):
            return card
    names = ", ".join(c.name for c in cards) or "none"
    raise ModelError(f"no {kind + ' ' if kind else ''}model named {name_or_path!r} "
                     f"(available: {names})")


def _check_kind(card: ModelCard, kind: str | None) -> None:
    if kind is not None and card.kind != kind:
        raise ModelError(f"{card.path}: model {card.name!r} is a {card.kind}, not a {kind}")


@lru_cache(maxsize=1)
def _ort():
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelError(f"ONNX Runtime is not installed ({exc})") from None
    ort.set_default_logger_severity(3)  # CUDA fallback on CPU machines logs errors otherwise
    return ort


def requested_providers(preference: str = "auto") -> list[str]:
    """Providers to ask for: 'cpu', 'cuda' (with CPU fallback) or 'auto' (CUDA when listed,
    unless POPMUSICNET_PROVIDER says otherwise)."""
    preference = os.environ.get("POPMUSICNET_PROVIDER", preference).lower()
    if preference not in ("auto", "cpu", "cuda"):
        raise ModelError(f"provider must be auto, cpu or cuda, got {preference!r}")
    if preference == "cpu":
        return [CPU]
    if cuda_usable():
        return [CUDA, CPU]
    if preference == "cuda":
        log.warning("CUDA was asked for but cannot be used here (%s); using the CPU",
                    cuda_usable.reason)
    return [CPU]


@lru_cache(maxsize=1)
def cuda_usable() -> bool:
    """Whether ONNX Runtime's CUDA provider can load here: listed, a GPU driver present, and its
    shared library (with CUDA 13 / cuDNN 9 behind it) loads.

    onnxruntime-gpu lists CUDA even on machines without a GPU and, asked for it, prints error
    lines from C++ before falling back to the CPU; probing the library with dlopen first keeps a
    CPU machine quiet. The reason is kept in `cuda_usable.reason` for status lines.
    """
    import ctypes
    import sys

    ort = _ort()
    cuda_usable.reason = ""
    if CUDA not in ort.get_available_providers():
        cuda_usable.reason = "ONNX Runtime was built without CUDA"
        return False
    if sys.platform.startswith("linux"):
        if not (Path("/proc/driver/nvidia").exists() or Path("/dev/nvidiactl").exists()):
            cuda_usable.reason = "no NVIDIA driver"
            return False
        lib = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
        try:
            ctypes.CDLL(str(lib))
        except OSError as exc:
            cuda_usable.reason = str(exc).split(":")[-1].strip() or "CUDA libraries missing"
            return False
    return True


cuda_usable.reason = ""


class OnnxModel:
    """One ONNX graph in an ONNX Runtime session."""

    def __init__(self, path: str | Path, *, sha256: str | None = None, providers: str = "auto",
                 threads: int = 1, name: str | None = None) -> None:
        ort = _ort()
        self.path = Path(path)
        self.name = name or self.path.stem
        if not self.path.exists():
            raise ModelError(f"{self.path}: model file not found")
        if sha256 and sha256_file(self.path) != sha256:
            raise ModelError(f"{self.path}: file does not match its model card (sha256 differs)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        # Denormal floats (the RNN states of some melodies decay into them) take the slow
        # path of the CPU: measured on the accompanist with the test chorales' bars, a live
        # bar 1.49 -> 1.21 ms with them flushed to zero; the notes are the same.
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                providers=requested_providers(providers))
        except Exception as exc:  # ORT raises its own types for corrupt/invalid graphs
            raise ModelError(f"{self.path}: not a loadable ONNX model "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
        self.provider = self.session.get_providers()[0]
        self.inputs = {i.name: tuple(i.shape) for i in self.session.get_inputs()}
        self.outputs = {o.name: tuple(o.shape) for o in self.session.get_outputs()}
        self._output_names = list(self.outputs)
        log.info("%s: running on %s", self.name, self.provider)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = set(self.inputs) - set(feeds)
        if missing:
            raise ModelError(f"{self.name}: missing inputs {', '.join(sorted(missing))}")
        values = self.session.run(self._output_names, feeds)
        return dict(zip(self._output_names, values))

    def __repr__(self) -> str:
        return f"OnnxModel({self.name!r}, provider={self.provider!r})"
