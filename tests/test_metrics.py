"""engine.evaluation.metrics on hand-counted examples (and against music21 where installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.evaluation import metrics
from engine.music import Key, Note

Q = 480


def line(pitches, beats=1, start=0):
    return [Note(start + i * beats * Q, start + (i + 1) * beats * Q, p)
            for i, p in enumerate(pitches)]


C_MAJOR_CADENCE = line([60, 64, 67, 65, 64, 62, 59, 60])  # ends on the tonic after the leading tone
A_MINOR = line([69, 71, 72, 76, 74, 72, 71, 68, 69, 64, 69])


def test_analyse_key_finds_the_tonic_and_the_mode():
    assert (metrics.analyse_key(C_MAJOR_CADENCE).tonic, metrics.analyse_key(C_MAJOR_CADENCE).mode) \
        == (0, "major")
    k = metrics.analyse_key(A_MINOR)
    assert (k.tonic, k.mode) == (9, "minor")
    assert metrics.analyse_key([Note(0, Q, 60)]) is None  # one pitch class: no key


def test_analyse_key_matches_music21():
    m21 = pytest.importorskip("music21")  # the train extra has it; the runtime does not
    rng = np.random.default_rng(3)
    for _ in range(12):
        notes = line(rng.integers(55, 80, 24).tolist(), start=0)
        s = m21.stream.Stream()
        for n in notes:
            x = m21.note.Note(n.pitch)
            x.quarterLength = n.duration / Q
            s.insert(n.start / Q, x)
        want = s.analyze("key")
        got = metrics.analyse_key(notes)
        assert (got.tonic, got.mode) == (want.tonic.pitchClass, want.mode)


def test_signatures_of_major_and_minor_keys():
    assert metrics.signature(Key(0, "major")) == 0
    assert metrics.signature(Key(9, "minor")) == 0  # A minor: C major's signature
    assert metrics.signature(Key(2, "major")) == 2  # D major: two sharps
    assert metrics.signature(Key(7, "minor")) == -2  # G minor: two flats
    assert metrics.signature(Key(6, "major")) == 6


def test_key_agreement_of_an_accompaniment_alone():
    c = Key(0, "major")
    bass_in_c = line([48, 52, 43, 48, 53, 55, 48], beats=2)
    bass_in_g = line([43, 50, 54, 43, 47, 43], beats=2)
    assert metrics.key_agreement(c, bass_in_c) == {"same_tonic": 1.0, "same_signature": 1.0}
    assert metrics.key_agreement(c, bass_in_g) == {"same_tonic": 0.0, "same_signature": 0.0}
    assert metrics.key_agreement(Key(9, "minor"), bass_in_c)["same_signature"] == 1.0


def test_cadence_last_bass_on_the_tonic_and_a_final_tonic_triad():
    c = Key(0, "major")
    bass = line([48, 43, 48])
    tenor = line([55, 55, 55])
    alto = line([64, 62, 64])
    got = metrics.cadence(c, bass, bass + tenor + alto)
    assert got == {"bass_tonic": 1.0, "final_tonic_triad": 1.0}
    half = line([48, 48, 43])  # ends on the dominant
    got = metrics.cadence(c, half, half + tenor + line([64, 64, 62]))
    assert got == {"bass_tonic": 0.0, "final_tonic_triad": 0.0}


def test_harmony_agreement_per_beat():
    ref = line([48, 53]) + line([64, 65])  # C E, then F F
    acc = line([48, 50]) + line([64, 65])  # C E, then D F
    got = metrics.harmony_agreement(acc, ref, 0, 2 * Q, Q)
    assert got["pc_jaccard"] == pytest.approx((1.0 + 1 / 2) / 2)  # {0,4}={0,4}; {2,5} vs {5}
    assert got["bass_agreement"] == 0.5
    assert math.isnan(metrics.harmony_agreement([], ref, 0, 2 * Q, Q)["pc_jaccard"])


def test_above_melody_counts_the_melody_time_with_a_voice_over_it():
    melody = line([72, 72, 72, 72])
    acc = line([60, 74, 60, 60])  # the second beat crosses above
    assert metrics.above_melody(melody, acc, Q) == 0.25
    assert metrics.above_melody(melody, line([60, 60, 60, 60]), Q) == 0.0


def test_parallels_count_fifths_and_octaves_per_100_moves():
    upper = line([67, 69, 71, 72])
    fifths = line([60, 62, 64, 67])  # 7, 7, 7 semitones: two parallel fifths, then a fourth
    got = metrics.parallels([upper, fifths], Q, 0, 4 * Q)
    assert got["parallel_fifths"] == pytest.approx(100 * 2 / 3)
    assert got["parallel_octaves"] == 0.0
    contrary = line([60, 59, 57, 55])  # moving against the upper line: none
    assert metrics.parallels([upper, contrary], Q, 0, 4 * Q)["parallel_fifths"] == 0.0


def test_chord_of_picks_the_triad_holding_the_notes():
    w = np.zeros(12)
    w[[0, 4, 7]] = 1.0
    assert metrics.chord_of(w) == (0, "maj")
    w = np.zeros(12)
    w[[9, 0, 4]] = 1.0
    assert metrics.chord_of(w) == (9, "min")
    assert metrics.chord_of(np.zeros(12)) is None
    spans = metrics.chords_per_span(line([53, 57, 60, 55, 59, 62]), [(0, 3 * Q), (3 * Q, 6 * Q)])
    assert spans == [(5, "maj"), (7, "maj")]


def test_roc_auc_as_mann_whitney():
    assert metrics.roc_auc([3, 4], [1, 2]) == 1.0
    assert metrics.roc_auc([1, 2], [3, 4]) == 0.0
    assert metrics.roc_auc([1, 1], [1, 1]) == 0.5
    assert metrics.roc_auc([2, 4], [1, 3]) == 0.75


def test_onset_f1_counts_by_hand_whole_and_per_row():
    pred = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]], bool)
    true = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]], bool)
    assert metrics.onset_f1(pred, true) == pytest.approx(2 * 1 / (3 + 3))
    assert metrics.onset_f1(pred[1], true[1]) == 0.0  # nothing on either side: `empty`
    assert metrics.onset_f1(pred[1], true[1], empty=1.0) == 1.0
    rows = metrics.onset_f1(pred, true, empty=1.0, axis=1)
    assert rows.tolist() == pytest.approx([0.5, 1.0, 0.0])


def test_bernoulli_nll_is_minus_log_the_probability_of_the_target():
    p = np.array([0.9, 0.9, 0.0, 1.0])
    y = np.array([1.0, 0.0, 0.0, 0.0])
    nll = metrics.bernoulli_nll(p, y)
    assert nll[:2] == pytest.approx([-math.log(0.9), -math.log(0.1)])
    assert nll[2] == pytest.approx(0.0, abs=1e-5)
    assert nll[3] == pytest.approx(-math.log(1e-6))  # a confident miss is clipped, not infinite
