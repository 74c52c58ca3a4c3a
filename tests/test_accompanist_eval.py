"""The musical checks of `popmusicnet eval accompanist`, against hand counts."""

from __future__ import annotations

import math

import pytest

from engine.evaluation.metrics import consonance_share, coverage, in_scale_share
from engine.music import MeterChange, Note, Song, Track

Q = 480
C_MAJOR_TUNE = [Note(i * Q, (i + 1) * Q, p) for i, p in
                enumerate([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60, 62, 64, 62, 60, 60])]


def test_in_scale_share_weights_by_duration():
    acc = [Note(0, 3 * Q, 48), Note(3 * Q, 4 * Q, 49)]  # C (in C major) 3 beats, C# 1 beat
    assert in_scale_share(C_MAJOR_TUNE, acc) == 0.75
    assert math.isnan(in_scale_share(C_MAJOR_TUNE, []))


def test_consonance_counts_pairs_at_melody_onsets():
    melody = [Note(0, Q, 64), Note(Q, 2 * Q, 65)]
    acc = [Note(0, 2 * Q, 60)]  # E over C: major third; F over C: fourth (counted consonant)
    assert consonance_share(melody, acc) == 1.0
    assert consonance_share(melody, [Note(0, 2 * Q, 63)]) == 0.0  # 1 and 2 semitones
    # E over A: fifth (consonant); F over B: tritone (dissonant)
    assert consonance_share(melody, [Note(0, Q, 57), Note(Q, 2 * Q, 59)]) == 0.5


def test_coverage_and_downbeats_skip_the_pickup():
    song = Song([Track("m", notes=[Note(0, Q, 67), Note(Q, 7 * Q, 72)])], Q,
                meters=[MeterChange(0, 1, 4), MeterChange(Q, 3, 4)])
    melody = song.tracks[0].notes
    # accompaniment in bar 1 (from its downbeat), silent in bar 2, no pickup note
    acc = [Note(Q, 3 * Q, 48)]
    bars, downbeats = coverage(song, melody, acc)
    assert bars == 1 / 3  # pickup, bar 1, bar 2
    assert downbeats == 1 / 2  # bars 1 and 2 (the pickup has no downbeat)


def test_how_much_is_played_notes_per_bar_and_length():
    from engine.evaluation.accompanist_checks import musical_checks

    song = Song([Track("m", notes=C_MAJOR_TUNE)], Q)  # 16 beats of 4/4: 4 bars
    acc = [Note(0, 2 * Q, 48), Note(2 * Q, 3 * Q, 50), Note(4 * Q, 7 * Q, 52)]
    got = musical_checks(song, C_MAJOR_TUNE, acc)
    assert got["notes_per_bar"] == 3 / 4
    assert got["note_beats"] == 2.0  # (2 + 1 + 3) / 3
    assert math.isnan(musical_checks(song, C_MAJOR_TUNE, [])["note_beats"])


def test_closeness_gap_counts_the_checks_and_how_busy_the_voices_are():
    from engine.evaluation.accompanist import closeness_gap

    bach = {"in_scale": 0.92, "consonance": 0.90, "bars_covered": 1.0, "downbeats": 0.98,
            "notes_per_bar": 12.0}
    model = {"in_scale": 0.95, "consonance": 0.91, "bars_covered": 1.0, "downbeats": 0.99,
             "notes_per_bar": 12.0}
    assert closeness_gap({"bach": bach, "model": model}) == pytest.approx(0.03)
    busy = {**model, "notes_per_bar": 15.0}  # 25% more notes outweighs a 3-point gap
    assert closeness_gap({"bach": bach, "model": busy}) == pytest.approx(0.25)


def test_closeness_gap_counts_harmony_that_falls_short_of_bach_and_voices_above_the_tune():
    from engine.evaluation.accompanist import closeness_gap

    bach = {"in_scale": 0.92, "consonance": 0.90, "bars_covered": 1.0, "downbeats": 0.98,
            "notes_per_bar": 12.0, "same_tonic": 0.65, "same_signature": 0.8, "bass_tonic": 0.7,
            "above_melody": 0.001}
    model = {**bach, "in_scale": 0.93}
    assert closeness_gap({"bach": bach, "model": model}) == pytest.approx(0.01)
    better = {**model, "same_tonic": 0.9}  # more often in the tune's key than Bach: no cost
    assert closeness_gap({"bach": bach, "model": better}) == pytest.approx(0.01)
    off_key = {**model, "same_tonic": 0.35}
    assert closeness_gap({"bach": bach, "model": off_key}) == pytest.approx(0.30)
    crossing = {**model, "above_melody": 0.10}
    assert closeness_gap({"bach": bach, "model": crossing}) == pytest.approx(0.08)


def test_chord_notes_and_root_agreement_per_half_bar():
    from engine.evaluation.accompanist_checks import _roots_agree, chord_notes

    song = Song([Track("m", notes=C_MAJOR_TUNE)], Q)  # 4 bars of 4/4
    chords = [(0, 0, "maj"), (4 * Q, 7, "dom7"), (8 * Q, 0, "maj")]
    notes = chord_notes(chords, 16 * Q)
    assert sorted({n.pitch for n in notes if n.start == 4 * Q}) == [50, 53, 55, 59]  # G7
    # our "accompaniment" plays the human chords exactly: every half bar agrees
    assert _roots_agree(song, notes, chords, 16 * Q) == (8, 8)
    # a bass that stays on C agrees where the human chord is C (6 of 8 half bars)
    assert _roots_agree(song, [Note(0, 16 * Q, 48)], chords, 16 * Q) == (6, 8)


def test_the_report_shows_key_cadence_voicing_live_and_folk():
    from engine.evaluation.accompanist import EvalResult
    from engine.evaluation.accompanist_report import report_markdown

    fig = {"in_scale": 0.9, "consonance": 0.9, "bars_covered": 1.0, "downbeats": 1.0,
           "notes_per_bar": 12.0, "note_beats": 1.0, "same_tonic": 0.7, "same_signature": 0.8,
           "bass_tonic": 0.7, "final_tonic_triad": 0.5, "above_melody": 0.0,
           "parallel_fifths": 0.1, "parallel_octaves": 0.0, "voice0_low": 57.0,
           "voice0_high": 70.0}
    res = EvalResult({"vae_rnn": 8.0, "frequency": 10.0, "lstm": 8.5},
                     {"bach": fig, "model": {**fig, "pc_jaccard": 0.5, "bass_agreement": 0.4}},
                     {"offline_p50_ms": 1.0, "offline_p99_ms": 1.5, "live_p50_ms": 1.2,
                      "live_p99_ms": 1.8}, 72, 15000, "CPUExecutionProvider", 100.0,
                     live={**fig, "same_tonic": 0.5}, discriminator_auc=0.81,
                     folk={"model": {"same_tonic": 0.85, "tunes": 122.0,
                                     "tunes_with_chords": 2.0, "root_agreement": 0.4},
                           "model_live": {"same_tonic": 0.8}, "naive": {"root_agreement": 0.7},
                           "human": {"same_tonic": 1.0}})
    text = report_markdown(res, "acc", "popmusicnet eval accompanist")
    assert "| key of the accompaniment alone: the chorale's tonic | 70.0% | 70.0% | 50.0% |" in text
    assert "AUC **0.810**" in text
    assert "| voice 1 from the top (under the melody): lowest-highest note, mean per piece | " \
           "A3-A#4" in text or "A3-Bb4" in text
    assert "| chord root = the human chord's, per half bar | 40.0% | - | 70.0% | - |" in text
    assert res.metrics()["folk"]["model"]["same_tonic"] == 0.85


def test_the_chorale_key_is_the_whole_scores_not_the_melodys_alone():
    from engine.evaluation.accompanist_checks import harmony_checks, score_key

    # a soprano that dwells on G, D and B (heard alone: G major) over voices in C major
    soprano = [Note(i * 2 * Q, (i + 1) * 2 * Q, p) for i, p in
               enumerate([67, 71, 74, 71, 67, 62, 67, 71, 74, 67, 72])]
    bass = [Note(i * 2 * Q, (i + 1) * 2 * Q, p) for i, p in
            enumerate([48, 52, 55, 53, 48, 53, 48, 52, 55, 55, 48])]
    tenor = [Note(i * 2 * Q, (i + 1) * 2 * Q, p) for i, p in
             enumerate([55, 55, 59, 57, 52, 57, 55, 55, 53, 53, 52])]
    song = Song([Track("S", notes=soprano), Track("T", notes=tenor), Track("B", notes=bass)], Q)
    heard = score_key(song)
    assert heard.tonic == 0  # C: the voices make the key
    got = harmony_checks(song, soprano, [tenor, bass], key=heard)
    assert got["same_tonic"] == 1.0 and got["bass_tonic"] == 1.0
    assert got["same_tonic_melody_alone"] == 0.0  # the soprano alone says G
    assert harmony_checks(song, soprano, [tenor, bass])["same_tonic"] == 0.0


def test_the_decoding_is_chosen_for_its_key_among_those_close_to_bach():
    from engine.evaluation.accompanist import choose_decoding
    from engine.evaluation.accompanist_checks import Decoding

    bach = {"in_scale": 0.92, "consonance": 0.90, "bars_covered": 1.0, "downbeats": 0.98,
            "notes_per_bar": 12.0, "same_tonic": 0.9, "same_signature": 0.9, "bass_tonic": 0.9}
    closest = {**bach, "in_scale": 0.93, "same_tonic": 0.88}  # 2 points short on the tonic
    in_key = {**bach, "in_scale": 0.96, "same_tonic": 0.95}  # 4 points off in scale
    off = {**bach, "in_scale": 0.99, "same_tonic": 1.0}  # 7 points off: not a candidate
    figures = {Decoding(0.5, 1.0): {"bach": bach, "model": closest},
               Decoding(0.5, 2.0): {"bach": bach, "model": in_key},
               Decoding(0.25, 1.0): {"bach": bach, "model": off}}
    assert choose_decoding(figures) == Decoding(0.5, 2.0)
    # none within 5 points: the closest
    far = {d: {"bach": bach, "model": {**f["model"], "in_scale": 0.99 - 0.001 * i}}
           for i, (d, f) in enumerate(figures.items())}
    assert choose_decoding(far) == Decoding(0.25, 1.0)


def test_the_live_decoding_is_the_lowest_temperature_of_those_as_good_as_the_best():
    from engine.evaluation.accompanist import steadiest
    from engine.evaluation.accompanist_checks import Decoding

    def tried(shortfalls, priors=Decoding(0.0, 1.0, 0.0, 0.0, 2.0)):
        return {priors._replace(temperature=t): g for t, g in shortfalls.items()}

    with_chords = tried({0.0: 0.245, 0.25: 0.224, 0.5: 0.204})
    assert steadiest(with_chords).temperature == 0.25  # 2 points: a tie
    assert steadiest(tried({0.0: 0.30, 0.25: 0.25, 0.5: 0.10})).temperature == 0.5
    # the priors chosen without the chord prior, tried after: kept only where they do better
    plain = tried({0.0: 0.10, 0.25: 0.12, 0.5: 0.15}, Decoding(0.0, 1.0, 0.0, 1.0, 0.0))
    assert steadiest({**with_chords, **plain}) == Decoding(0.0, 1.0, 0.0, 1.0, 0.0)
    close = tried({0.0: 0.23, 0.25: 0.25, 0.5: 0.25}, Decoding(0.0, 1.0, 0.0, 1.0, 0.0))
    # within 3 points of the least: the lowest temperature, then the first tried
    assert steadiest({**tried({0.0: 0.22}), **close}) == Decoding(0.0, 1.0, 0.0, 0.0, 2.0)
