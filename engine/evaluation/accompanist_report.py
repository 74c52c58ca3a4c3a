"""The accompanist's report in docs/RESULTS.md (`popmusicnet eval accompanist`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from engine.evaluation.accompanist_checks import Decoding
from engine.music import pitch_name

if TYPE_CHECKING:
    from engine.evaluation.accompanist import EvalResult

def live_decoding_line(res: EvalResult) -> str:
    """How the live path's decoding was chosen, for the report ("" when not separately)."""
    if not res.live_tried:
        return ""
    live = res.chosen_live()
    tried = ", ".join(f"{d.label()}: {100 * g:+.1f}" for d, g in res.live_tried.items())
    return (f", at T / key / onset / tonal / chord {live.label()}: the decoding whose live "
            "figures on the valid split fall least short of the offline key figures (the "
            "lowest temperature within 3 points of the least: a steadier key from take to "
            "take), among three temperatures with the offline priors and, the offline chord "
            "prior not being 0, with the priors chosen among the decodings without one (live a "
            "bar's chord is guessed before it is heard) (largest shortfall of same tonic and "
            f"same signature, points; {tried})")


def harmony_markdown(res: EvalResult) -> list[str]:
    """The key, cadence and voicing tables of the report."""
    bach, model, live = res.musical["bach"], res.musical["model"], res.live or {}
    named = res.live_key_named or {}

    def pct(d, k):
        v = d.get(k, float("nan"))
        return "-" if np.isnan(v) else f"{100 * v:.1f}%"

    def num(d, k):
        v = d.get(k, float("nan"))
        return "-" if np.isnan(v) else f"{v:.2f}"

    rows = [("same_tonic", "key of the accompaniment alone: the chorale's tonic", pct),
            ("same_signature", "... the chorale's key signature", pct),
            ("same_tonic_melody_alone", "... the tonic of the melody analysed alone", pct),
            ("bass_tonic", "last bass note on the tonic", pct),
            ("final_tonic_triad", "final sonority a tonic triad", pct),
            ("pc_jaccard", "pitch classes per beat shared with Bach's (Jaccard)", pct),
            ("bass_agreement", "bass pitch class per beat = Bach's", pct),
            ("above_melody", "time with a voice above the melody", pct),
            ("parallel_fifths", "parallel fifths per 100 moves of a voice pair", num),
            ("parallel_octaves", "parallel octaves / unisons per 100 moves", num)]
    out = ["", "Key, cadence and voicing, on the same test melodies. The key is analysed from the "
           "accompaniment alone (melody notes removed) and compared with the key the chorale is "
           "heard in (Bach's whole score: melody and voices), each with the "
           "Krumhansl-Schmuckler method on Aarden-Essen profiles (the default of music21's "
           "`analyze('key')`); the melody analysed alone names that tonic in only about three "
           "chorales of four, so the row against it is shown apart; live: the same model as a "
           "live session plays, replayed through "
           "the live engine on a virtual clock (each bar planned one beat before it sounds, "
           "from the bars before it)" + live_decoding_line(res) + "; the key either "
           "estimated from the bars heard so far (the default) or named by the player "
           "(`live --key`, the studio's Live key; here the chorale's own).", "",
           "| check | Bach's lower voices | VAE-RNN (accompany) | VAE-RNN (live) | VAE-RNN "
           "(live, key named) |", "|---|---|---|---|---|"]
    for k, label, f in rows:
        out.append(f"| {label} | {f(bach, k)} | {f(model, k)} | {f(live, k)} | "
                   f"{f(named, k)} |")
    for i in range(3):
        if f"voice{i}_low" not in bach:
            continue

        def rng(d, i=i):
            lo, hi = d.get(f"voice{i}_low"), d.get(f"voice{i}_high")
            return "-" if lo is None or hi is None else f"{pitch_name(round(lo))}-" \
                f"{pitch_name(round(hi))}"

        out.append(f"| voice {i + 1} from the top (under the melody): lowest-highest note, mean "
                   f"per piece | {rng(bach)} | {rng(model)} | {rng(live)} | {rng(named)} |")
    out += ["", f"A small classifier (L2 logistic regression on 2-bar windows of the lower "
            f"voices: pitch classes from the tonic, melodic steps, intervals to the melody, "
            f"density; cross-validated by piece) tells Bach's voices from the model's with ROC "
            f"AUC **{res.discriminator_auc:.3f}** (0.5: it cannot; 1.0: always)."]
    folk = res.folk or {}
    if folk:
        fm = folk.get("model", {})
        out += ["", f"Folk melodies the model never saw ({int(fm.get('tunes', 0))} tunes from the "
                f"music21 corpus's folk collections, {int(fm.get('tunes_with_chords', 0))} of them "
                "with chord symbols; engine.training.data.folk). Key against the tune's notated "
                "key; chord root per half bar against the tune's own chord symbols (our "
                "accompaniment's chord: the best of 24 triads on what sounds in the half bar).",
                "", "| on folk melodies | VAE-RNN (accompany) | VAE-RNN (live) | naive triad rule "
                "| human chords |", "|---|---|---|---|---|"]
        for k, label in (("same_tonic", "accompaniment alone in the tune's tonic"),
                         ("same_signature", "... its key signature"),
                         ("root_agreement", "chord root = the human chord's, per half bar")):
            out.append(f"| {label} | " + " | ".join(pct(folk.get(w, {}), k) for w in
                                                    ("model", "model_live", "naive", "human"))
                       + " |")
        out += ["", "The naive triad rule puts under each bar the I, IV, V, vi or ii triad "
                "(minor keys: i, iv, V, VI, III) covering most of the bar's melody."]
    return out


def tonal_line(profile: dict) -> str:
    """The tonal profile's shares, e.g. "major 1 21%, 2 13%, ...; minor ..." (scale degrees
    as semitones above the tonic where a share is at least 5%)."""
    parts = []
    for mode, shares in profile.items():
        shares = np.asarray(shares)
        parts.append(f"{mode} " + ", ".join(f"+{d} {100 * v:.0f}%" for d, v in enumerate(shares)
                                             if v >= 0.05))
    return "; ".join(parts)


def report_markdown(res: EvalResult, model_name: str, command: str) -> str:
    from engine.evaluation.report import provenance

    n = res.nll
    beats = all(n["vae_rnn"] < n[b] for b in ("frequency", "lstm"))
    lines = [
        "## Accompanist (VAE-RNN)", "", provenance(), "",
        f"Command: `{command}`. Model `{model_name}`; test split: {res.n_pieces} chorales, "
        f"{res.n_frames} frames (16th-note steps), key-normalised.", "",
        "| frame-level NLL of the accompaniment given the melody (nats/frame, lower is better) | "
        "value |", "|---|---|",
        f"| VAE-RNN (decoder at the predicted latent mean, teacher-forced) | {n['vae_rnn']:.3f} |",
        f"| baseline: per-pitch frequency | {n['frequency']:.3f} |",
        f"| baseline: LSTM melody frames -> accompaniment frames | {n['lstm']:.3f} |", "",
        f"The VAE-RNN {'beats' if beats else 'does NOT beat'} both baselines. The LSTM baseline "
        "stops early on the valid split (patience 4, at most `--baseline-epochs`), so its figure "
        "moves between runs with where it stops.", "",
        f"Musical checks at temperature {res.temperature:g}, key prior {res.key_prior:g} "
        "(nats taken off the log-odds of pitches outside the melody's key when a voice is "
        f"decided), onset prior {res.onset_prior:g} (nats taken off every onset's log-odds) "
        f"tonal prior {res.tonal_prior:g} (nats per unit of a scale degree's penalty, "
        "log(share of the commonest degree / its share) in the train split's accompaniments"
        + (f": {tonal_line(res.tonal_profile)}" if res.tonal_profile else "") + ") "
        f"and chord prior {res.chord_prior:g} (nats taken off the log-odds of pitches outside "
        "the chord the band's chord model plans at that step over the whole melody, and added "
        "to the chord tones')"
        + (", chosen on the valid split: among the settings within 5 points of Bach's figures "
           "there (the largest gap over the four checks and the key and cadence checks in "
           "points, and the notes per bar in percent), the one with the best key and cadence "
           "(mean of same tonic, same signature and last bass on the tonic); T / key / onset / "
           "tonal / chord: gap, key and cadence: "
           + ", ".join(f"{Decoding(*d).label()}: {100 * g:.1f}, "
                       f"{100 * (res.harmony_tried or {}).get(d, float('nan')):.1f}%"
                       for d, g in res.temperatures_tried.items())
           + ")" if res.temperatures_tried else "") + ".", "",
        "| musical check on the test melodies | Bach's lower voices | VAE-RNN | difference "
        "(points) |", "|---|---|---|---|"]
    names = {"in_scale": "note duration in the melody's key scale",
             "consonance": "consonant intervals at melody onsets",
             "bars_covered": "bars with accompaniment", "downbeats": "downbeats sounded"}
    for k, label in names.items():
        b, m = res.musical["bach"].get(k, float("nan")), res.musical["model"].get(k, float("nan"))
        lines.append(f"| {label} | {100 * b:.1f}% | {100 * m:.1f}% | {100 * (m - b):+.1f} |")
    for k, label in (("notes_per_bar", "notes per bar (all accompaniment voices)"),
                     ("note_beats", "mean note length (beats)")):
        b, m = res.musical["bach"].get(k, float("nan")), res.musical["model"].get(k, float("nan"))
        lines.append(f"| {label} | {b:.2f} | {m:.2f} | {100 * (m / b - 1):+.0f}% |")
    lines += harmony_markdown(res)
    lat = res.latency
    lines += ["", f"Latency of one bar on CPU ({res.provider}, one thread): offline (melody "
              f"known) p50 {lat['offline_p50_ms']:.2f} ms, p99 {lat['offline_p99_ms']:.2f} ms; "
              f"live (the bar before as the melody, replayed when observed) p50 {lat['live_p50_ms']:.2f} ms, "
              f"p99 {lat['live_p99_ms']:.2f} ms (1,000 bars; target p99 < 2 ms; machine load "
              f"average {lat.get('load_average', float('nan')):.1f} on {os.cpu_count()} cores "
              "while measuring, this evaluation included). `popmusicnet bench accompanist` "
              "measures the same alone, in several runs.",
              f"Evaluation took {res.seconds:.0f} s."]
    return "\n".join(lines)
