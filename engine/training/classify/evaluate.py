"""`popmusicnet eval classifiers`: balanced accuracy and confusion matrices on held-out pieces.

Runs every installed classifier (MIDI and audio cards) through ONNX Runtime on the test split of
the same corpus cache and split the models were trained on, at piece level (mean of window
probabilities), and writes the "classifiers" section of docs/RESULTS.md. No torch.

    python -m engine.training.classify.evaluate
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from engine.models.classifier import KIND_AUDIO, KIND_MIDI, MelodySpec
from engine.training.classify.datasets import (CACHE_DIR, DEFAULT_CORPUS, load_corpus,
                                               onnx_predictor, piece_sets)
from engine.training.classify.metrics import evaluate

log = logging.getLogger(__name__)

TARGETS = {KIND_MIDI: 0.90, KIND_AUDIO: 0.80}


def evaluate_card(card, pieces) -> dict[str, Any]:
    rep = card.representation
    labels = rep["labels"]
    seed = int(card.training.get("seed", 0))
    if card.kind == KIND_MIDI:
        sets = piece_sets(pieces, labels, MelodySpec.from_dict(rep),
                          int(card.training.get("max_windows_per_piece", 16)), seed)
    else:
        from engine.training.classify.audio_data import audio_sets

        data = card.training.get("data", "")
        seconds = float(data.split(" s per render")[0].split(",")[-1]) if " s per render" in \
            data else 15.0
        sets = audio_sets(pieces, labels, seconds=seconds,
                          window_frames=int(rep["window_frames"]),
                          hop_frames=int(rep["window_hop_frames"]),
                          train_renders=int(card.training.get("train_renders_per_piece", 2)),
                          seed=seed, cache_dir=CACHE_DIR)
    t0 = time.perf_counter()
    result = evaluate(onnx_predictor(card.component_path("classifier")), sets["test"], labels)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result


def _confusion_md(result: dict[str, Any]) -> str:
    labels = result["labels"]
    short = [lab[:10] for lab in labels]
    lines = ["| true \\ predicted | " + " | ".join(short) + " | recall |",
             "|---|" + "---|" * (len(labels) + 1)]
    for lab, row in zip(labels, result["confusion"]):
        n = sum(row)
        rec = f"{row[labels.index(lab)] / n:.0%}" if n else "-"
        lines.append(f"| {lab} | " + " | ".join(str(v) for v in row) + f" | {rec} |")
    return "\n".join(lines)


def run(corpus_path: Path = DEFAULT_CORPUS, names: list[str] | None = None,
        write: bool = True, out=print) -> int:
    from engine.evaluation.report import provenance, update_section
    from engine.models.runtime import list_cards

    cards = [c for kind in (KIND_MIDI, KIND_AUDIO) for c in list_cards(kind)
             if names is None or c.name in names]
    if not cards:
        out("no classifier models installed")
        return 1
    pieces = load_corpus(corpus_path)
    rows, details = [], []
    for card in cards:
        res = evaluate_card(card, pieces)
        target = TARGETS[card.kind]
        ok = "yes" if res["balanced_accuracy"] >= target else "no"
        out(f"{card.name}: balanced accuracy {res['balanced_accuracy']:.1%} on "
            f"{res['pieces']} test pieces (accuracy {res['accuracy']:.1%}, windows "
            f"{res['window_balanced_accuracy']:.1%}; target {target:.0%}: {ok})")
        rows.append(f"| {card.name} | {card.kind.split('-')[1]} | {res['pieces']} | "
                    f"{res['balanced_accuracy']:.1%} | {res['accuracy']:.1%} | "
                    f"{res['window_balanced_accuracy']:.1%} | {target:.0%} | {ok} |")
        details.append(f"**{card.name}** ({res['pieces']} pieces, "
                       f"{res['windows']} windows)\n\n{_confusion_md(res)}")
        out(_confusion_md(res))
    labels = cards[0].representation["labels"]
    md = "\n".join([
        "## Style classifiers", "", provenance(), "",
        "Command: `popmusicnet eval classifiers`. Held-out **pieces** of the music21 corpus "
        f"({', '.join(labels)}), split by group (hymn tune, mass, work, tune) with a per-class "
        "quota; every class is classified from its **top voice** (skyline of the highest part), "
        "key- and octave-normalised, with time rescaled so the median inter-onset interval is "
        "one beat (half-note-pulse notation cannot give the label away). Piece prediction = "
        "mean of window probabilities (MIDI: 32-beat windows, hop 16; audio: 5 s log-spectrogram "
        "windows on semitone bands, of the top voice rendered by FluidSynth with random GM "
        f"program, tempo and key). Chance balanced accuracy: {1 / len(labels):.1%}.", "",
        "| model | input | test pieces | balanced accuracy | accuracy | window bal. acc. | "
        "target | met |", "|---|---|---|---|---|---|---|---|", *rows, "",
        *[d + "\n" for d in details]])
    if write:
        path = update_section("classifiers", md)
        out(f"wrote the classifiers section of {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    return run()


if __name__ == "__main__":
    sys.exit(main())
