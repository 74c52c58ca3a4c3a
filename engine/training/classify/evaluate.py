"""`popmusicnet eval classifiers`: balanced accuracy and confusion matrices on held-out pieces.

Runs every installed classifier (MIDI and audio cards) through ONNX Runtime on the test split of
the same corpus cache and split the models were trained on, at piece level (mean of window
probabilities), from the whole score (main row), from the top part alone (secondary row) and
from each test piece with its texture changed (engine.training.classify.texture.OOD_SETS: folk
tunes with rule-made chords, scores reduced to one line or to melody + bass; audio also with
its timbre changed: GM programs its training never used, a second installed soundfont), checks
that a folk tune gets the same top class with and without chords, and writes the "classifiers"
section of docs/RESULTS.md. No torch.

    python -m engine.training.classify.evaluate
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.models.classifier import KIND_AUDIO, KIND_MIDI, VIEW_TOP, MelodySpec
from engine.training.classify.datasets import (CACHE_DIR, DEFAULT_CORPUS, INPUT_SCORE,
                                               INPUT_TOP_PART, OOD_INPUTS, load_corpus,
                                               onnx_predictor, piece_sets)
from engine.training.classify.metrics import PieceSet, evaluate, piece_probabilities
from engine.training.classify.texture import OOD_SETS

#: The audio model's timbre-changed test sets (engine.training.classify.audio_data.TIMBRE_SETS:
#: other GM programs, another soundfont), measured with the texture-changed ones.
AUDIO_TIMBRE_INPUTS = ("other GM programs", "other soundfont")

log = logging.getLogger(__name__)

TARGETS = {KIND_MIDI: 0.90, KIND_AUDIO: 0.80}
#: Targets on the texture-changed test sets.
OOD_TARGETS = {KIND_MIDI: 0.85, KIND_AUDIO: 0.75}
#: What each row of the report shows the models: the whole score (the main figure: a file or a
#: recording), then the top part alone (one track / one instrument: secondary).
INPUTS = (INPUT_SCORE, INPUT_TOP_PART)
FOLK = ("irish", "german_folk")


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


def _other_font_name(cards) -> str:
    from engine.synth.soundfont import another_soundfont, soundfont_named

    card = next(c for c in cards if c.kind == KIND_AUDIO)
    other = another_soundfont(soundfont_named(card.training.get("soundfont")))
    return other.name if other else "none installed"


def card_sets(card, pieces, what: str = INPUT_SCORE, split: str = "test",
              cache_dir: Path | None = CACHE_DIR):
    """The PieceSet of `split` as one installed classifier reads it, shown `what` of each piece
    (the whole score, its top part alone, or an OOD_INPUTS texture change)."""
    rep = card.representation
    labels = rep["labels"]
    seed = int(card.training.get("seed", 0))
    if card.kind == KIND_MIDI:
        sets = piece_sets(pieces, labels, MelodySpec.from_dict(rep),
                          int(card.training.get("max_windows_per_piece", 16)), seed,
                          view=str(rep.get("view", VIEW_TOP)), eval_input=what,
                          splits=(split,))
    else:
        from engine.synth.soundfont import soundfont_named
        from engine.training.classify.audio_data import audio_sets

        # test renders depend only on (seed, piece): render the test split alone, through the
        # soundfont the card says its training used (when installed)
        sets = audio_sets(pieces, labels, seconds=_audio_seconds(card.training),
                          window_frames=int(rep["window_frames"]),
                          hop_frames=int(rep["window_hop_frames"]), train_renders=1,
                          eval_render=what, seed=seed, splits=(split,),
                          eval_seconds=_eval_seconds(card.training),
                          soundfont=soundfont_named(card.training.get("soundfont")),
                          cache_dir=cache_dir)
    return sets[split]


def evaluate_card(card, pieces, what: str = INPUT_SCORE) -> dict[str, Any]:
    """Piece-level metrics of one installed classifier on the test pieces, shown `what` of
    each piece."""
    labels = card.representation["labels"]
    test = card_sets(card, pieces, what)
    t0 = time.perf_counter()
    result = evaluate(onnx_predictor(card.component_path("classifier")), test, labels)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result


def _reads(card) -> str:
    """What the model was trained on (a card's view; audio: rendered scores)."""
    if card.kind == KIND_AUDIO:
        return ("rendered scores" + (" + single parts" if card.training.get("single_part")
                                     else "")
                + (" + texture changes" if card.training.get("texture") else ""))
    if card.representation.get("view", VIEW_TOP) == VIEW_TOP:
        return "top voice (skyline)"
    return ("whole scores" + (" + single parts" if card.training.get("single_part") else "")
            + (" + texture changes" if card.training.get("texture") else ""))


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


def _row(card, what: str, res: dict[str, Any]) -> tuple[str, str]:
    """The printed line and the table row of one model on one input."""
    main, ood = what == INPUT_SCORE, what in OOD_SETS or what in AUDIO_TIMBRE_INPUTS
    target = OOD_TARGETS[card.kind] if ood else TARGETS[card.kind]
    has_target = main or ood
    ok = ("yes" if res["balanced_accuracy"] >= target else "no") if has_target else "-"
    line = (f"{card.name} [{what}]: balanced accuracy {res['balanced_accuracy']:.1%} on "
            f"{res['pieces']} test pieces (accuracy {res['accuracy']:.1%}, windows "
            f"{res['window_balanced_accuracy']:.1%}"
            + (f"; target {target:.0%}: {ok})" if has_target else "; secondary)"))
    label = ("**whole score**" if main else "top part alone" if what == INPUT_TOP_PART
             else f"timbre: {what}" if what in AUDIO_TIMBRE_INPUTS else f"texture: {what}")
    row = (f"| {card.name} | {card.kind.split('-')[1]} | {label} | {_reads(card)} | "
           f"{res['pieces']} | {res['balanced_accuracy']:.1%} | {res['accuracy']:.1%} | "
           f"{res['window_balanced_accuracy']:.1%} | "
           f"{f'{target:.0%}' if has_target else '-'} | {ok} |")
    return line, row


def same_top_class(alone, accompanied, p_alone, p_acc, labels) -> dict[str, int]:
    """Over the folk pieces of two aligned PieceSets (each folk tune alone, and with chords):
    how many get the same top class, and how many are called folk (irish or german_folk) in
    each."""
    if alone.names != accompanied.names or len(p_alone) != len(p_acc):
        raise ValueError("the two sets do not hold the same pieces")
    folk_idx = [labels.index(f) for f in FOLK if f in labels]
    sel = [i for i, y in enumerate(alone.labels) if int(y) in folk_idx]
    a, b = p_alone[sel].argmax(1), p_acc[sel].argmax(1)
    return {"tunes": len(sel), "same_top_class": int((a == b).sum()),
            "folk_alone": int(np.isin(a, folk_idx).sum()),
            "folk_with_chords": int(np.isin(b, folk_idx).sum())}


def notated_chord_tunes(out=print) -> list:
    """The corpus's ABC tunes with their own chord symbols (engine.training.data.folk:
    Nottingham tunes, a collection the classifiers never see), as classifier Pieces whose
    `chords` are the notated ones (human chords, realised by texture.accompanied)."""
    from engine.training.classify.corpus import Piece
    from engine.training.data.folk import folk_chord_tunes

    try:
        tunes = folk_chord_tunes()
    except Exception as e:  # noqa: BLE001 - the check is skipped, and says why
        out(f"notated-chord tunes unavailable: {e}")
        return []
    pieces = []
    for t in tunes:
        notes = sorted(n for tr in t.song.tracks if not tr.is_drum for n in tr.notes)
        tpb = float(t.song.ticks_per_beat)
        ch = sorted(t.chords)
        ends = [c[0] for c in ch[1:]] + [max(t.song.end, ch[-1][0] + 1)] if ch else []
        pieces.append(Piece("irish", t.id, t.id,
                            np.array([n.start for n in notes], np.float64) / tpb,
                            np.array([n.end for n in notes], np.float64) / tpb,
                            np.array([n.pitch for n in notes], np.int16),
                            np.zeros(len(notes), np.int16),
                            np.array([(c[0] / tpb, e / tpb, c[1] % 12,
                                       1.0 if str(c[2]).startswith("min") else 0.0)
                                      for c, e in zip(ch, ends)], np.float64)
                            if ch else None))
    return pieces


def _tune_check(card, tunes, out=print) -> list[str]:
    """Top class of each notated-chord tune alone and with its chords (MIDI models)."""
    from engine.models.classifier import view_windows
    from engine.training.classify.texture import accompanied, piece_rng

    rep = card.representation
    spec, view = MelodySpec.from_dict(rep), str(rep.get("view", VIEW_TOP))
    predict = onnx_predictor(card.component_path("classifier"))
    labels = rep["labels"]
    lines = []
    for t in tunes:
        got = []
        for p in (t, accompanied(t, piece_rng(t, "chords"), chord_style="held")):
            w = view_windows(view, p.start, p.end, p.pitch, spec, one_track=False)
            probs = piece_probabilities(predict, PieceSet([w], np.zeros(1, np.int64), [""]))[0]
            got.append(f"{labels[int(probs.argmax())]} {probs.max():.0%}")
        line = f"{card.name}: {t.source}: alone {got[0]}; with its notated chords {got[1]}"
        out(line)
        lines.append(line)
    return lines


def run(corpus_path: Path = DEFAULT_CORPUS, names: list[str] | None = None,
        write: bool = True, out=print, audio_ood: bool = True,
        cache_dir: Path | None = CACHE_DIR) -> int:
    from engine.evaluation.report import provenance, update_section
    from engine.models.runtime import list_cards

    cards = [c for kind in (KIND_MIDI, KIND_AUDIO) for c in list_cards(kind)
             if names is None or c.name in names]
    if not cards:
        out("no classifier models installed")
        return 1
    pieces = load_corpus(corpus_path)
    tunes = notated_chord_tunes(out)
    rows, details, checks, tune_lines, notes = [], [], [], [], []
    for card in cards:
        labels = card.representation["labels"]
        predict = onnx_predictor(card.component_path("classifier"))
        inputs = INPUTS + (OOD_INPUTS if card.kind == KIND_MIDI or audio_ood else ())
        if card.kind == KIND_AUDIO and audio_ood:
            inputs += AUDIO_TIMBRE_INPUTS
        probs, sets = {}, {}
        for what in inputs:
            try:
                test = card_sets(card, pieces, what, cache_dir=cache_dir)
            except ValueError as e:  # another soundfont is needed and none is installed
                line = f"{card.name} [{what}]: not measured: {e}"
                out(line)
                notes.append(line)
                continue
            res = evaluate(predict, test, labels)
            sets[what], probs[what] = test, piece_probabilities(predict, test)
            line, row = _row(card, what, res)
            out(line)
            rows.append(row)
            if what != INPUT_TOP_PART:
                name = ("whole score" if what == INPUT_SCORE else
                        f"timbre: {what}" if what in AUDIO_TIMBRE_INPUTS else f"texture: {what}")
                details.append(f"**{card.name}**, {name} ({res['pieces']} pieces, "
                               f"{res['windows']} windows)\n\n{_confusion_md(res)}")
                out(_confusion_md(res))
        if "folk + chords" in sets:
            c = same_top_class(sets[INPUT_SCORE], sets["folk + chords"], probs[INPUT_SCORE],
                               probs["folk + chords"], labels)
            line = (f"{card.name}: folk test tunes alone and with chords: same top class for "
                    f"{c['same_top_class']}/{c['tunes']}; called folk {c['folk_alone']}/"
                    f"{c['tunes']} alone, {c['folk_with_chords']}/{c['tunes']} with chords")
            out(line)
            checks.append(f"| {card.name} | {c['tunes']} | {c['same_top_class']} | "
                          f"{c['folk_alone']} | {c['folk_with_chords']} |")
        if card.kind == KIND_MIDI and tunes:
            tune_lines += _tune_check(card, tunes, out)
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
    ood_text = "; ".join(f"**{k}**: {v[0]}" for k, v in OOD_SETS.items())
    timbre_text = ""
    if audio and audio_ood:
        from engine.training.classify.audio_data import TIMBRE_SETS

        fonts = sorted({str(c.training.get("soundfont", "?")) for c in cards
                        if c.kind == KIND_AUDIO})
        timbre_text = "; ".join(f"**{k}**: {v}" for k, v in TIMBRE_SETS.items()) + (
            f" (training soundfont: {', '.join(fonts)}; the other: {_other_font_name(cards)})")
    md = "\n".join([
        "## Style classifiers", "", provenance(), "",
        "Command: `popmusicnet eval classifiers`. Held-out **pieces** of the music21 corpus "
        f"({', '.join(labels)}; engine.training.data.styles' pieces), split by group (hymn "
        "tune, mass, work, tune, joined by melody) with a per-class quota. The main figure shows "
        "each model the **whole score** (every part merged into one pianoroll; for audio, the "
        "whole score rendered by FluidSynth with random GM programs, tempo and key), as "
        "`popmusicnet classify FILE` does. In the corpus every folk tune is one line and every "
        "other piece several parts, so the **texture** rows show each test piece with its "
        f"texture changed, read as a whole file (audio: rendered so): {ood_text}. The chords "
        "given to folk tunes are rule-made (one diatonic triad per bar, I IV V vi ii in the "
        "tune's estimated key, the triad covering most of the bar's melody), not a human's; "
        "they are realised as held, repeated or arpeggiated triads below the melody and a bass "
        "on the root. The secondary row shows the **top part "
        "alone** (the melody track, as `classify FILE --track N` reads one track; audio: that "
        "part rendered alone). "
        + (f"The audio model's **timbre** rows render each whole test score otherwise: "
           f"{timbre_text}. " if timbre_text else "") + "Notes are key- and octave-normalised and time is rescaled so "
        "the median inter-onset interval is one beat (half-note-pulse notation cannot give the "
        "label away). Piece prediction = mean of window probabilities (MIDI: 32-beat windows, "
        f"hop 16; audio: {audio_windows} log-spectrogram windows on semitone bands"
        + (f", {audio_lengths}" if audio_lengths else "") + "). "
        "Chance balanced "
        f"accuracy: {1 / len(labels):.1%}. Targets: whole score {TARGETS[KIND_MIDI]:.0%} MIDI, "
        f"{TARGETS[KIND_AUDIO]:.0%} audio; texture rows {OOD_TARGETS[KIND_MIDI]:.0%} MIDI, "
        f"{OOD_TARGETS[KIND_AUDIO]:.0%} audio.", "",
        "| model | kind | input | trained on | test pieces | balanced accuracy | accuracy | "
        "window bal. acc. | target | met |", "|---|---|---|---|---|---|---|---|---|---|",
        *rows, "",
        *([f"- {x}" for x in notes] + [""] if notes else []),
        *(["A folk tune with a chord track and the same tune alone (the test split's irish and "
           "german_folk tunes, alone and in the **folk + chords** set):", "",
           "| model | folk tunes | same top class | called folk alone | called folk with "
           "chords |", "|---|---|---|---|---|", *checks, ""] if checks else []),
        *(["The corpus's only ABC tunes with their own chord symbols (Nottingham, a "
           "collection the classifiers are not trained on), alone and with those chords held "
           "for their length plus a bass:", "", *[f"- {x}" for x in tune_lines], ""]
          if tune_lines else []),
        *[d + "\n" for d in details]])
    if write:
        path = update_section("classifiers", md)
        out(f"wrote the classifiers section of {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=None,
                    help="only this model (repeatable; default every installed classifier)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--no-audio-ood", action="store_true",
                    help="skip the texture-changed renders of the audio model")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return run(names=a.model, write=not a.no_write, audio_ood=not a.no_audio_ood)


if __name__ == "__main__":
    sys.exit(main())
