"""Choose the band model's decoding on the valid chorales and store it in its card (numpy only):

    python -m engine.training.band.decoding CARD.json

(`popmusicnet train band` runs it at the end.) Two decodings are chosen:
- per beat: the weight of the chord bigrams of the train labels in a Viterbi pass over the
  network's per-beat log-probabilities (engine.models.band_chords.decode_beats), best valid
  accuracy;
- per harmonic span, as the band plays (engine.models.band_chords.decode_spans): the change
  penalty, the tonic bonus on the final span and the diatonic prior (the tonic prior is chosen
  afterwards, by `popmusicnet eval band --update-card`, with these fixed). A band's chords must be
  in the melody's key, so the setting kept is the one with the best valid per-beat accuracy (each
  beat given its span's chord) among those whose chords have the melody's tonic (the key of the
  block chords alone, engine.evaluation.metrics.analyse_key, against the key of the whole melody,
  engine.music.melody_key) in at least KEY_TARGET of the valid chorales; if none does, the one with
  the most. (Against analyse_key of the soprano alone, Bach's own chords agree in only 76% of the
  valid chorales, against melody_key in 92%: `popmusicnet eval band` prints both.)
Every setting's valid figures are printed (one JSON line) and kept in the card's training notes.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from engine.models.band import BandAccompanist
from engine.models.band_chords import (N_CHORDS, chord_label, decode_beats, decode_spans,
                                       song_beats, spans_from_features, transpose_index)

PENALTIES = (0.5, 1.0, 2.0, 3.0, 5.0)
BONUSES = (0.0, 2.0, 5.0)
DIATONIC = (0.0, 0.5, 1.0, 2.0)
BIGRAM_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
KEY_TARGET = 0.9


def log_bigrams(pieces) -> np.ndarray:
    """(C, C) log P(next chord | chord) of the labels, add-one smoothed."""
    counts = np.ones((N_CHORDS, N_CHORDS))
    for p in pieces:
        np.add.at(counts, (p.y[:-1], p.y[1:]), 1)
    return np.log(counts / counts.sum(axis=1, keepdims=True))


def _accuracy(pred: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    m = y > 0
    return int((pred[m] == y[m]).sum()), int(m.sum())


def choose(card_path: str | Path, *, write: bool = True, cache_dir=None) -> dict:
    from engine.evaluation import metrics
    from engine.evaluation.band import chord_notes
    from engine.music import melody_key
    from engine.training.band.data import load_chord_pieces
    from engine.training.data.chorales import load_chorales

    model = BandAccompanist.load(str(card_path), providers="cpu")
    pieces = load_chord_pieces(cache_dir)
    tr = [p for p in pieces if p.split == "train"]
    va = [p for p in pieces if p.split == "valid"]
    songs = {p.id: p.song for p in load_chorales(cache_dir) if p.split == "valid"}
    trans = log_bigrams(tr)
    rows = []
    for p in va:
        lp = model.beat_logp(p.x)
        lp[:, 0] = -1e9
        mel = sorted(songs[p.id].melody_track().notes)
        end = max(n.end for n in mel)
        rows.append((p, lp, melody_key(mel), melody_key(mel).tonic_shift(),
                     song_beats(songs[p.id], end), end))
    beat_scores = {}
    for w in BIGRAM_WEIGHTS:
        r = n = 0
        for p, lp, *_ in rows:
            a, b = _accuracy(np.array(decode_beats(lp, trans, w)), p.y)
            r, n = r + a, n + b
        beat_scores[w] = r / max(n, 1)
    weight = max(beat_scores, key=lambda w: (beat_scores[w], -w))
    grid = {}
    for pen, bon, dia in itertools.product(PENALTIES, BONUSES, DIATONIC):
        r = n = 0
        tonic = []
        for p, lp, key, shift, beats, end in rows:
            minor = bool(p.x[0, -1] > 0.5)
            spans = spans_from_features(p.x)
            idx = decode_spans(lp, spans, change_penalty=pen, final_bonus=bon, minor=minor,
                               diatonic_prior=dia)
            pred = np.zeros(len(p.y), np.int64)
            chords = []
            for (a, b), c in zip(spans, idx):
                pred[a:b] = c
                lab = chord_label(transpose_index(c, -shift))
                if lab is not None and a < len(beats):
                    chords.append((beats[a].start, lab[0], lab[1]))
            a_, b_ = _accuracy(pred, p.y)
            r, n = r + a_, n + b_
            tonic.append(metrics.key_agreement(key, chord_notes(chords, end))["same_tonic"])
        grid[(pen, bon, dia)] = (r / max(n, 1), float(np.mean(tonic)))
    ok = [k for k, v in grid.items() if v[1] >= KEY_TARGET]
    best = (max(ok, key=lambda k: (grid[k][0], grid[k][1])) if ok
            else max(grid, key=lambda k: (grid[k][1], grid[k][0])))
    decoding = {"change_penalty": best[0], "final_bonus": best[1], "diatonic_prior": best[2],
                "bigram_weight": weight, "log_bigrams": np.round(trans, 3).ravel().tolist()}
    result = {"chosen": {k: v for k, v in decoding.items() if k != "log_bigrams"},
              "valid_span_accuracy": round(grid[best][0], 4),
              "valid_same_tonic": round(grid[best][1], 4),
              "valid_beat_accuracy_bigrams": round(beat_scores[weight], 4),
              "grid": {f"{k[0]}/{k[1]}/{k[2]}": [round(v[0], 4), round(v[1], 4)]
                       for k, v in grid.items()},
              "bigram_grid": {str(k): round(v, 4) for k, v in beat_scores.items()}}
    if write:
        card = model.card
        card.representation["decoding"] = decoding
        card.training["decoding_chosen_on_valid"] = {
            "command": f"python -m engine.training.band.decoding {Path(card_path).name}",
            "span_grid (accuracy, same tonic) by penalty/bonus/diatonic": result["grid"],
            "bigram_grid": result["bigram_grid"]}
        card.metrics.update({"valid_span_accuracy": result["valid_span_accuracy"],
                             "valid_same_tonic": result["valid_same_tonic"],
                             "valid_beat_accuracy_bigrams": result["valid_beat_accuracy_bigrams"]})
        card.write(card.path)
    return result


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="choose the band model's decoding on valid")
    ap.add_argument("card")
    ap.add_argument("--dry-run", action="store_true", help="print, do not write the card")
    a = ap.parse_args()
    res = choose(a.card, write=not a.dry_run)
    print(json.dumps({"event": "decoding", **{k: v for k, v in res.items() if k != "grid"}}))
