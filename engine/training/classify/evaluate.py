"""`popmusicnet eval classifiers`: balanced accuracy and confusion matrices on held-out pieces.

Runs every installed classifier (MIDI and audio cards) through ONNX Runtime on the test split of
the same corpus cache and split the models were trained on, at piece level (mean of window
probabilities), from the whole score (main row) and from the top part alone (secondary row),
and writes the "classifiers" section of docs/RESULTS.md. No torch.

    python -m engine.training.classify.evaluate
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from engine.models.classifier import KIND_AUDIO, KIND_MIDI, VIEW_TOP, MelodySpec
from engine.training.classify.datasets import (CACHE_DIR, DEFAULT_CORPUS, INPUT_SCORE,
                                               INPUT_TOP_PART, load_corpus, onnx_predictor,
                                               piece_sets)
from engine.training.classify.metrics import evaluate

log = logging.getLogger(__name__)

TARGETS = {KIND_MIDI: 0.90, KIND_AUDIO: 0.80}
#: What each row of the report shows the models: the whole score (the main figure: a file or a
#: recording), then the top part alone (one track / one instrument: secondary).
INPUTS = (INPUT_SCORE, INPUT_TOP_PART)


def _audio_seconds(training: dict) -> float:
    if "seconds_per_render" in training:
        return float(training["seconds_per_render"])
    data = training.get("data", "")  # cards written before seconds_per_render was stored
    return float(data.split(" s per render")[0].split(",")[-1]) if " s per render" in data \
        else 15.0


def _eval_seconds(training: dict) -> float | None:
    """How long the valid/test renders of an audio card run (None: seconds_per_render)."""
    v = training.get("eval_seconds")
    return float(v) if v else None


def evaluate_card(card, pieces, what: str = INPUT_SCORE) -> dict[str, Any]:
    """Piece-level metrics of one installed classifier on the test pieces, shown `what` of
    each piece (the whole score, or its top part alone)."""
    rep = card.representation
    labels = rep["labels"]
    seed = int(card.training.get("seed", 0))
    if card.kind == KIND_MIDI:
        sets = piece_sets(pieces, labels, MelodySpec.from_dict(rep),
                          int(card.training.get("max_windows_per_piece", 16)), seed,
                          view=str(rep.get("view", VIEW_TOP)), eval_input=what,
                          splits=("test",))
    else:
        from engine.training.classify.audio_data import audio_sets

        # test renders depend only on (seed, piece): render the test split alone
        sets = audio_sets(pieces, labels, seconds=_audio_seconds(card.training),
                          window_frames=int(rep["window_frames"]),
                          hop_frames=int(rep["window_hop_frames"]), train_renders=1,
                          eval_render=what, seed=seed, splits=("test",),
                          eval_seconds=_eval_seconds(card.training), cache_dir=CACHE_DIR)
    t0 = time.perf_counter()
    result = evaluate(onnx_predictor(card.component_path("classifier")), sets["test"], labels)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result


def _reads(card) -> str:
    """What the model was trained on (a card's view; audio: rendered scores)."""
    if card.kind == KIND_AUDIO:
        return "rendered scores" + (" + single parts" if card.training.get("single_part")
                                    else "")
    if card.representation.get("view", VIEW_TOP) == VIEW_TOP:
        return "top voice (skyline)"
    return "whole scores" + (" + single parts" if card.training.get("single_part") else "")


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
        target = TARGETS[card.kind]
        for what in INPUTS:
            res = evaluate_card(card, pieces, what)
            main = what == INPUT_SCORE
            ok = ("yes" if res["balanced_accuracy"] >= target else "no") if main else "-"
            out(f"{card.name} [{what}]: balanced accuracy {res['balanced_accuracy']:.1%} on "
                f"{res['pieces']} test pieces (accuracy {res['accuracy']:.1%}, windows "
                f"{res['window_balanced_accuracy']:.1%}"
                + (f"; target {target:.0%}: {ok})" if main else "; secondary)"))
            rows.append(f"| {card.name} | {card.kind.split('-')[1]} | "
                        f"{'**whole score**' if main else 'top part alone'} | "
                        f"{_reads(card)} | {res['pieces']} | "
                        f"{res['balanced_accuracy']:.1%} | {res['accuracy']:.1%} | "
                        f"{res['window_balanced_accuracy']:.1%} | "
                        f"{f'{target:.0%}' if main else '-'} | {ok} |")
            if main:
                details.append(f"**{card.name}**, whole score ({res['pieces']} pieces, "
                               f"{res['windows']} windows)\n\n{_confusion_md(res)}")
                out(_confusion_md(res))
    labels = cards[0].representation["labels"]
    audio = [c.representation for c in cards if c.kind == KIND_AUDIO]
    audio_windows = ", ".join(sorted({
        f"{round(r['window_frames'] * r['hop'] / r['sample_rate'], 1):g} s (hop "
        f"{round(r['window_hop_frames'] * r['hop'] / r['sample_rate'], 1):g} s)"
        for r in audio})) or "5 s"
    audio_lengths = "; ".join(sorted({
        (f"each test piece rendered from its start to its end, at most "
         f"{_eval_seconds(c.training):g} s (at least {_audio_seconds(c.training):g} s)"
         if _eval_seconds(c.training) else
         f"each test piece rendered for its first {_audio_seconds(c.training):g} s")
        for c in cards if c.kind == KIND_AUDIO}))
    md = "\n".join([
        "## Style classifiers", "", provenance(), "",
        "Command: `popmusicnet eval classifiers`. Held-out **pieces** of the music21 corpus "
        f"({', '.join(labels)}; engine.training.data.styles' pieces), split by group (hymn "
        "tune, mass, work, tune, joined by melody) with a per-class quota. The main figure shows "
        "each model the **whole score** (every part merged into one pianoroll; for audio, the "
        "whole score rendered by FluidSynth with random GM programs, tempo and key), as "
        "`popmusicnet classify FILE` does; so texture (how many voices) is part of what is "
        "classified, and folk tunes are single lines. The secondary row shows the **top part "
        "alone** (the melody track, as `classify FILE --track N` reads one track; audio: that "
        "part rendered alone). Notes are key- and octave-normalised and time is rescaled so "
        "the median inter-onset interval is one beat (half-note-pulse notation cannot give the "
        "label away). Piece prediction = mean of window probabilities (MIDI: 32-beat windows, "
        f"hop 16; audio: {audio_windows} log-spectrogram windows on semitone bands"
        + (f", {audio_lengths}" if audio_lengths else "") + "). "
        "Chance balanced "
        f"accuracy: {1 / len(labels):.1%}.", "",
        "| model | kind | input | trained on | test pieces | balanced accuracy | accuracy | "
        "window bal. acc. | target | met |", "|---|---|---|---|---|---|---|---|---|---|",
        *rows, "", *[d + "\n" for d in details]])
    if write:
        path = update_section("classifiers", md)
        out(f"wrote the classifiers section of {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    return run()


if __name__ == "__main__":
    sys.exit(main())
