"""Torch-free data plumbing shared by training and `popmusicnet eval classifiers`: the cached
corpus, per-split window sets, and an ONNX Runtime predictor."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine.models.classifier import VIEW_SCORE, MelodySpec, TooShortError, view_windows
from engine.training.classify import corpus
from engine.training.classify.texture import OOD_SETS, training_texture
from engine.training.classify.metrics import PieceSet, to_float
from engine.training.data.corpus import default_cache_dir

log = logging.getLogger(__name__)

#: The classifiers' corpus and render caches, beside engine.training.data's (in
#: $POPMUSICNET_CACHE, else ~/.cache/popmusicnet/data).
CACHE_DIR = default_cache_dir() / "classify"
DEFAULT_CORPUS = CACHE_DIR / "scores.npz"
#: What a model is shown of each held-out piece: the whole score, or its top part alone (one
#: track, as `popmusicnet classify FILE --track N` reads the melody track).
INPUT_SCORE = "score"
INPUT_TOP_PART = "top part"
INPUTS = (INPUT_SCORE, INPUT_TOP_PART)
#: Out-of-distribution inputs: each held-out piece with its texture changed, read as a whole
#: file (engine.training.classify.texture.OOD_SETS).
OOD_INPUTS = tuple(OOD_SETS)
#: Textured versions drawn per training piece (their windows are pooled).
TEXTURE_DRAWS = 2
#: Share of the single-part training windows taken from the top part (the rest: any part).
TOP_PART_SHARE = 0.5

def load_corpus(path: Path = DEFAULT_CORPUS, per_class: dict | int | None = None,
                progress=None) -> list[corpus.Piece]:
    """The cached corpus, built first from engine.training.data.styles if there is none (a few
    minutes of parsing when styles' own caches are not there either)."""
    if not Path(path).exists():
        if progress:
            progress.emit("stage", stage="parse", message=f"parsing the corpus into {path}")
        corpus.save(corpus.collect(per_class=per_class), path)
    return corpus.load(path)


def piece_input(piece: corpus.Piece, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The notes a model is shown of a piece: all of them ("score") or its top part's."""
    if what == INPUT_SCORE:
        return piece.start, piece.end, piece.pitch
    if what == INPUT_TOP_PART:
        return piece.part_notes(piece.top_part())
    if what in OOD_SETS:
        p = OOD_SETS[what][1](piece)
        return p.start, p.end, p.pitch
    raise ValueError(f"input must be one of {INPUTS + OOD_INPUTS}, got {what!r}")


def piece_sets(pieces: Sequence[corpus.Piece], labels: Sequence[str], spec: MelodySpec,
               max_windows: int, seed: int, eval_max_windows: int = 48, *,
               view: str = VIEW_SCORE, eval_input: str = INPUT_SCORE,
               single_part: float = 0.0, train_hop: int | None = None, texture: float = 0.0,
               splits: Sequence[str] = ("train", "valid", "test")) -> dict[str, PieceSet]:
    """Windows (uint8) per split, as a model of `view` reads them.

    Training pieces: the whole score at `train_hop` (default hop/2), at most `max_windows`
    chosen at random (a smaller hop gives short pieces more distinct windows), plus
    (`single_part` > 0) about `single_part * max_windows` windows of single parts (the top part
    for TOP_PART_SHARE of them, else a part drawn at random): the single-track path, where one
    voice of a chorale must not look like a folk tune just because it is alone; plus
    (`texture` > 0) about `texture * max_windows` windows of the piece with its texture changed
    (texture.training_texture: a folk tune accompanied, a score reduced to its top line, top
    line + bass or some of its parts), read as a whole file: a texture is no label. Valid/test
    pieces: `eval_input` (the score, the top part alone, or an OOD_INPUTS texture change) at the
    runtime's hop, at most
    `eval_max_windows` evenly spaced (they do not depend on the training pieces: `splits` may
    leave those out)."""
    rng = np.random.default_rng(seed)
    where = corpus.assign_splits(list(pieces))
    index = {lab: i for i, lab in enumerate(labels)}
    out: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in ("train", "valid", "test")}
    n_single = int(round(single_part * max_windows))
    n_texture = int(round(texture * max_windows))
    train_hop = train_hop or spec.hop_steps // 2
    for piece, split in zip(pieces, where):
        if piece.label not in index or split not in splits:
            continue
        train = split == "train"
        try:
            what = INPUT_SCORE if train else eval_input
            w = view_windows(view, *piece_input(piece, what), spec,
                             hop=train_hop if train else spec.hop_steps,
                             one_track=what == INPUT_TOP_PART)
        except TooShortError:
            continue
        cap = max_windows if train else eval_max_windows
        if len(w) > cap:
            pick = (np.sort(rng.choice(len(w), cap, replace=False)) if train
                    else np.linspace(0, len(w) - 1, cap).round().astype(int))
            w = w[pick]
        if train and n_single:  # a folk tune alone is a single track too
            w = np.concatenate([w, _single_part_windows(piece, view, spec, n_single, rng,
                                                        train_hop)])
        if train and n_texture:
            w = np.concatenate([w, _texture_windows(piece, view, spec, n_texture, rng,
                                                    train_hop)])
        ws, ys, ns = out[split]
        ws.append((w * 255).astype(np.uint8))
        ys.append(index[piece.label])
        ns.append(piece.group)
    return {s: PieceSet(ws, np.array(ys, dtype=np.int64), ns) for s, (ws, ys, ns) in out.items()}


def _single_part_windows(piece: corpus.Piece, view: str, spec: MelodySpec, n: int,
                         rng: np.random.Generator, hop: int) -> np.ndarray:
    """`n` windows, each of one part drawn at random (parts too short to classify skipped)."""
    cands = [k for k in piece.parts() if len(piece.part_notes(k)[0]) >= spec.min_notes]
    if not cands:
        return np.zeros((0, spec.n_planes, spec.window_steps, spec.n_pitches), np.float32)
    top = piece.top_part()
    chosen = rng.choice(cands, size=n)
    if top in cands:  # the melody track is what a user most often classifies alone
        chosen = np.where(rng.random(n) < TOP_PART_SHARE, top, chosen)
    out = []
    for k in np.unique(chosen):
        w = view_windows(view, *piece.part_notes(int(k)), spec, hop=hop, one_track=True)
        m = int((chosen == k).sum())
        out.append(w[np.sort(rng.choice(len(w), min(m, len(w)), replace=False))])
    return np.concatenate(out)


def _texture_windows(piece: corpus.Piece, view: str, spec: MelodySpec, n: int,
                     rng: np.random.Generator, hop: int) -> np.ndarray:
    """`n` windows drawn from TEXTURE_DRAWS texture changes of the piece (whole-file view)."""
    pool = []
    for _ in range(TEXTURE_DRAWS):
        p = training_texture(piece, rng)
        try:
            pool.append(view_windows(view, p.start, p.end, p.pitch, spec, hop=hop,
                                     one_track=False))
        except TooShortError:
            continue
    if not pool:
        return np.zeros((0, spec.n_planes, spec.window_steps, spec.n_pitches), np.float32)
    pool = np.concatenate(pool)
    return pool[np.sort(rng.choice(len(pool), min(n, len(pool)), replace=False))]


def split_summary(sets: dict[str, PieceSet], labels: Sequence[str]) -> dict[str, Any]:
    return {s: {"pieces": {lab: int((ps.labels == i).sum()) for i, lab in enumerate(labels)},
                "windows": int(sum(len(w) for w in ps.windows))} for s, ps in sets.items()}


def onnx_predictor(path: Path):
    from engine.models.runtime import OnnxModel

    model = OnnxModel(path, providers="cpu", threads=2)

    def predict(x: np.ndarray) -> np.ndarray:
        return np.concatenate([model.run({"x": to_float(x[i:i + 256])})["logits"]
                               for i in range(0, len(x), 256)])
    return predict


