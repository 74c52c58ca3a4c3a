"""Texture changes of classifier training pieces, the texture-changed test sets, the "unsure"
threshold and what `classify` says it judged. Small data built here."""

from __future__ import annotations


import numpy as np
import pytest


def _folk_piece(label: str = "irish", n_bars: int = 16, seed: int = 0):
    """A one-track C major tune in 4/4 (quarter notes), through the corpus path."""
    from engine.music import MeterChange, Note, Song, Track
    from engine.training.classify.corpus import from_styles_piece
    from engine.training.data.corpus import make_piece

    rng = np.random.default_rng(seed)
    tpb = 480
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    notes = [Note(i * tpb, (i + 1) * tpb, int(scale[rng.integers(0, 8)]))
             for i in range(4 * n_bars - 1)]
    notes.append(Note((4 * n_bars - 1) * tpb, 4 * n_bars * tpb, 60))
    song = Song([Track("tune", 73, notes=notes)], ticks_per_beat=tpb,
                meters=[MeterChange(0, 4, 4)])
    return from_styles_piece(make_piece(song, id=f"t{seed}", group=f"{label}:{seed}",
                                        label=label))


def _quartet_piece(seed: int = 0):
    from engine.training.classify.corpus import Piece

    from tests.test_classifiers import _chorale_like

    return Piece("classical", f"q:{seed}", "x", *_chorale_like(96, seed=seed + 1))


def test_a_one_part_piece_gets_one_triad_per_bar_in_its_key():
    piece = _folk_piece()
    assert piece.chords is not None and len(piece.chords) == 16
    assert np.allclose(piece.chords[:, 1] - piece.chords[:, 0], 4.0)
    # C major: the triads are on C, F, G, A or D; minor only on A and D
    assert set(piece.chords[:, 2].astype(int)) <= {0, 5, 7, 9, 2}
    assert all(m == (r in (9, 2)) for r, m in piece.chords[:, 2:].astype(int))


def test_chords_survive_the_corpus_cache(tmp_path):
    from engine.training.classify import corpus

    pieces = [_folk_piece(), _quartet_piece()]
    back = corpus.load(corpus.save(pieces, tmp_path / "c.npz"))
    assert np.array_equal(back[0].chords, pieces[0].chords) and back[1].chords is None


@pytest.mark.parametrize("style", ["held", "beats", "arpeggio"])
def test_accompanied_adds_chords_below_the_melody_and_a_bass(style):
    from engine.training.classify.texture import accompanied

    piece = _folk_piece()
    out = accompanied(piece, np.random.default_rng(0), chord_style=style)
    assert out.parts() == [0, 1, 2] and out.label == piece.label
    mel, chords, bass = (out.pitch[out.part == k] for k in (0, 1, 2))
    assert np.array_equal(np.sort(mel), np.sort(piece.pitch))
    assert chords.max() < np.median(mel) and bass.max() < chords.min()
    assert np.all(np.diff(out.start) >= 0) and out.top_part() == 0
    # every chord tone belongs to its bar's triad
    for s, p in zip(out.start[out.part == 1], chords):
        row = piece.chords[np.searchsorted(piece.chords[:, 0], s, side="right") - 1]
        third = 3 if row[3] else 4
        assert (p - int(row[2])) % 12 in (0, third, 7)
    if style == "arpeggio":  # one chord tone at a time
        starts = out.start[out.part == 1]
        assert len(np.unique(starts)) == len(starts)
    # a piece of several parts has no chords to realise
    quartet = _quartet_piece()
    assert accompanied(quartet, np.random.default_rng(0)) is quartet


def test_reductions_keep_the_top_part_and_the_bass():
    from engine.training.classify.texture import dropped_parts, melody_bass, top_line

    q = _quartet_piece()
    one = top_line(q)
    assert one.parts() == [0] and np.array_equal(one.pitch, q.part_notes(0)[2])
    mb = melody_bass(q)
    assert mb.parts() == [0, 3]
    for seed in range(10):
        d = dropped_parts(q, np.random.default_rng(seed))
        assert 1 <= len(d.parts()) <= 4 and set(d.parts()) <= {0, 1, 2, 3}


def test_ood_sets_change_texture_the_same_way_every_time():
    from engine.training.classify.texture import OOD_SETS

    folk, q = _folk_piece(), _quartet_piece()
    assert len(OOD_SETS["folk + chords"][1](folk).parts()) == 3
    assert OOD_SETS["folk + chords"][1](q) is q
    assert OOD_SETS["one line"][1](q).parts() == [0] and OOD_SETS["one line"][1](folk) is folk
    assert OOD_SETS["swapped"][1](q).parts() == [0]
    a, b = OOD_SETS["swapped"][1](folk), OOD_SETS["swapped"][1](folk)
    assert np.array_equal(a.pitch, b.pitch) and np.array_equal(a.start, b.start)


def test_piece_sets_texture_windows_for_training_and_ood_inputs():
    from engine.training.classify.datasets import piece_sets
    from engine.training.classify.train_midi import SCORE_SPEC

    pieces = ([_folk_piece(seed=i) for i in range(12)]
              + [_quartet_piece(seed=i) for i in range(12)])
    labels = ["classical", "irish"]
    base = piece_sets(pieces, labels, SCORE_SPEC, 4, 0)
    more = piece_sets(pieces, labels, SCORE_SPEC, 4, 0, texture=0.5)
    assert sum(map(len, more["train"].windows)) > sum(map(len, base["train"].windows))
    folk_i = [i for i, y in enumerate(more["train"].labels) if labels[y] == "irish"]
    w = more["train"].windows[folk_i[0]].astype(np.float32) / 255
    # the base windows are one line, the texture windows hold the tune with chords, read as a
    # whole file (the one-track plane 0)
    assert w[:-2, 1].sum(axis=2).max() == 1 and w[-2:, 1].sum(axis=2).max() >= 3
    assert w[:, 2].max() == 0
    ood = piece_sets(pieces, labels, SCORE_SPEC, 4, 0, eval_input="swapped", splits=("test",))
    plain = piece_sets(pieces, labels, SCORE_SPEC, 4, 0, splits=("test",))
    assert ood["test"].names == plain["test"].names
    for wo, wp, y in zip(ood["test"].windows, plain["test"].windows, ood["test"].labels):
        most_o, most_p = wo[:, 1].astype(bool).sum(axis=2).max(), \
            wp[:, 1].astype(bool).sum(axis=2).max()
        if labels[y] == "irish":
            assert most_p == 1 and most_o >= 3
        else:
            assert most_p == 4 and most_o == 1


def test_unsure_threshold_answers_only_where_the_model_is_mostly_right():
    from engine.training.classify.metrics import choose_unsure_threshold

    # confident pieces are right, unconfident ones are mostly wrong
    probs = np.array([[0.9, 0.1]] * 20 + [[0.45, 0.55]] * 10 + [[0.6, 0.4]] * 4)
    labels = np.array([0] * 20 + [0] * 10 + [0] * 4)
    got = choose_unsure_threshold(probs, labels)
    assert got["threshold"] == 0.6  # above the wrong 0.55s, at the right 0.6s
    assert got["valid_right_when_answered"] == 1.0
    all_right = choose_unsure_threshold(probs, probs.argmax(1))
    assert all_right["threshold"] == 0.2 and all_right["valid_answered"] == 1.0


def test_same_top_class_counts_folk_pieces_only():
    from engine.training.classify.evaluate import same_top_class
    from engine.training.classify.metrics import PieceSet

    labels = ["bach", "irish", "german_folk"]
    ys = np.array([0, 1, 2, 1])
    a = PieceSet([np.zeros(1)] * 4, ys, ["a", "b", "c", "d"])
    b = PieceSet([np.zeros(1)] * 4, ys, ["a", "b", "c", "d"])
    pa = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]], float)
    pb = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 0, 1]], float)
    got = same_top_class(a, b, pa, pb, labels)
    assert got == {"tunes": 3, "same_top_class": 1, "folk_alone": 3, "folk_with_chords": 2}
