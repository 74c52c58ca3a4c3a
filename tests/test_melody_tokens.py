"""Melody tokens (engine.models.melody_tokens): round trips with the pianoroll features, the
skyline of polyphony, repeated notes, transposition and the onset F1 against hand counts."""

from __future__ import annotations

import numpy as np
import pytest

from engine.models import melody_tokens as mt
from engine.models.genroll import GridSpec, song_bars
from engine.music import Note, Song, Track

SPEC = GridSpec()
P = SPEC.n_pitches
R, H = mt.REST, mt.HOLD


def note(pitch: int) -> int:
    """The note-on token of MIDI `pitch`."""
    return mt.NOTE0 + pitch - SPEC.low


def test_tokens_features_tokens_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        tokens = rng.integers(0, mt.vocab_size(P), 32)
        canon = mt.canonical(tokens, P)
        feats = mt.to_features(tokens, P)
        assert feats.shape == (32, 2 * P)
        assert np.array_equal(mt.from_features(feats, P), canon)
        assert np.array_equal(mt.to_features(canon, P), feats)  # same sound


def test_hand_made_melody_decodes_to_its_notes():
    tokens = np.array([note(60), H, H, H, note(62), H, R, R, note(64), note(64), H, H])
    feats = mt.to_features(tokens, P)
    onset, active = feats[:, :P], feats[:, P:]
    assert [(t, p + SPEC.low) for t, p in zip(*np.nonzero(onset))] == [
        (0, 60), (4, 62), (8, 64), (9, 64)]  # a repeated note stays two notes
    assert active[:, 60 - SPEC.low].sum() == 4 and active[6:8].sum() == 0
    assert mt.canonical(np.array([H, H, note(60), R, H]), P).tolist() == [R, R, note(60), R, R]


def test_a_song_melody_and_the_skyline_of_chords():
    tpb = 480
    tune = [Note(0, 480, 67), Note(480, 720, 69), Note(720, 960, 69), Note(1440, 1920, 72)]
    chords = [Note(0, 1920, p) for p in (48, 52, 55)]
    song = Song(tracks=[Track("tune", notes=tune), Track("chords", notes=chords)],
                ticks_per_beat=tpb)
    feats, _ = song_bars(song, SPEC, normalise_key=False)
    tok = mt.from_features(feats[0], P)
    want = [note(67), H, H, H, note(69), H, note(69), H,
            note(55), H, H, H,  # the tune rests: the chord's top note sounds on
            note(72), H, H, H]
    assert tok.tolist() == want
    assert mt.from_features(feats, P).shape == (1, 16)


def test_transpose_stays_in_the_window():
    tok = np.array([note(60), H, R, note(67)])
    assert mt.transpose(tok, 2, P).tolist() == [note(62), H, R, note(69)]
    assert mt.transpose(tok, SPEC.high - 67 + 1, P) is None
    assert mt.transpose(tok, SPEC.low - 60 - 1, P) is None
    assert mt.transpose(np.array([R, R]), 5, P).tolist() == [R, R]
    assert mt.pitch_range(tok) == (60 - SPEC.low, 67 - SPEC.low)


def test_onset_f1_hand_count():
    true = np.array([note(60), H, note(62), H, note(64), R])
    pred = np.array([note(60), H, note(63), H, R, note(64)])
    prec, rec, f1 = mt.onset_f1(pred, true)
    assert (prec, rec) == (pytest.approx(1 / 3), pytest.approx(1 / 3))
    assert f1 == pytest.approx(1 / 3)
    assert mt.onset_f1(np.array([R, H]), np.array([R, R])) == (1.0, 1.0, 1.0)
    assert mt.onset_f1(true, true)[2] == 1.0


def test_transposition_augmentation_keeps_notes_inside():
    torch = pytest.importorskip("torch")
    from engine.training.morph.train import TRANSPOSE, transpose_batch

    x = torch.tensor([[note(SPEC.high), H, R, note(SPEC.high - 3)],
                      [note(SPEC.low), R, R, note(SPEC.low + 2)],
                      [note(60), H, note(64), R],
                      [R, R, R, R]])
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(100):
        y = transpose_batch(x, P, gen)
        assert torch.equal(y < mt.NOTE0, x < mt.NOTE0)  # rests and holds stay
        assert int(y.max()) < mt.NOTE0 + P and torch.equal(y[3], x[3])
        assert int(y[0, 0]) <= note(SPEC.high) and int(y[1, 0]) >= note(SPEC.low)
        seen.add(int((y - x)[2, 0]))
    assert seen == set(range(TRANSPOSE[0], TRANSPOSE[1] + 1))
