"""Folk evaluation sets (engine/training/data/folk.py, folk_triads.py): the naive triad baseline and the root
agreement measure on songs built in code (hand counts), text helpers, and the corpus loaders
(slow: they parse the music21 corpus)."""

from __future__ import annotations

import pytest

from engine.music import ROLE_MELODY, Key, MeterChange, Note, Song, Track
from engine.training.data import folk, folk_triads

TPB = 480
Q = TPB  # a quarter note
C_MAJOR = Key(0, "major")
A_MINOR = Key(9, "minor")


def melody_song(notes, meters=None) -> Song:
    """One melody track of (start, end, pitch)."""
    track = Track(name="Melody", role=ROLE_MELODY, notes=[Note(s, e, p) for s, e, p in notes])
    return Song(tracks=[track], ticks_per_beat=TPB, meters=meters or [MeterChange(0, 4, 4)])


def quarters(start, pitches):
    return [(start + i * Q, start + (i + 1) * Q, p) for i, p in enumerate(pitches)]


# -- naive_triad_chords --------------------------------------------------------------------------
def test_naive_bar_of_tonic_triad_then_subdominant():
    # bar 1: C E G (and a rest), bar 2: F A C
    song = melody_song(quarters(0, [60, 64, 67]) + quarters(4 * Q, [65, 69, 72]))
    assert folk_triads.naive_triad_chords(song, per="bar", key=C_MAJOR) == [(0, 0, "maj"),
                                                                     (4 * Q, 5, "maj")]


def test_naive_ties_go_to_the_earlier_triad():
    # Each bar one whole note: C (I, IV, vi tie -> I), D (V, ii -> V), A (IV, vi, ii -> IV),
    # E (I, vi -> I), B (V only), then an empty bar (all zero -> I), then a last note G.
    pitches = [60, 62, 69, 64, 71]
    notes = [(i * 4 * Q, (i + 1) * 4 * Q, p) for i, p in enumerate(pitches)]
    notes.append((6 * 4 * Q, 7 * 4 * Q, 67))
    song = melody_song(notes)
    roots = [r for _, r, _ in folk_triads.naive_triad_chords(song, per="bar", key=C_MAJOR)]
    assert roots == [0, 7, 5, 0, 7, 0, 0]


def test_naive_weights_by_duration():
    # A bar of a half note A and two quarters C, E: vi (A C E) covers all 4 beats, I (C E G) 2,
    # IV (F A C) 3 -> vi, minor.
    song = melody_song([(0, 2 * Q, 69)] + quarters(2 * Q, [72, 76]))
    assert folk_triads.naive_triad_chords(song, per="bar", key=C_MAJOR) == [(0, 9, "min")]


def test_naive_half_bars():
    # 4/4: first half C E, second half G B (V: G B D covers both; I covers only G)
    song = melody_song(quarters(0, [60, 64, 67, 71]))
    assert folk_triads.naive_triad_chords(song, per="half", key=C_MAJOR) == [(0, 0, "maj"),
                                                                      (2 * Q, 7, "maj")]


def test_naive_minor_key_uses_i_iv_V_VI_III():
    assert folk_triads.diatonic_triads(A_MINOR) == [(9, "min"), (2, "min"), (4, "maj"), (5, "maj"),
                                             (0, "maj")]
    # bar 1: E G# B -> V (E major); bar 2: C E -> i (A C E) ties III (C E G): i is earlier;
    # bar 3: F A -> iv (D F A) ties VI (F A C): iv is earlier; bar 4: D F A -> iv
    song = melody_song(quarters(0, [64, 68, 71]) + quarters(4 * Q, [72, 76])
                       + quarters(8 * Q, [65, 69]) + quarters(12 * Q, [62, 65, 69]))
    assert folk_triads.naive_triad_chords(song, per="bar", key=A_MINOR) == [
        (0, 4, "maj"), (4 * Q, 9, "min"), (8 * Q, 2, "min"), (12 * Q, 2, "min")]


def test_naive_in_another_key():
    # G major: a bar of D F# A -> V (root 2), a bar of C E -> IV (C E G), a bar of E G B -> vi
    g = Key(7, "major")
    song = melody_song(quarters(0, [62, 66, 69]) + quarters(4 * Q, [72, 76])
                       + quarters(8 * Q, [64, 67, 71]))
    assert folk_triads.naive_triad_chords(song, per="bar", key=g) == [(0, 2, "maj"), (4 * Q, 0, "maj"),
                                                               (8 * Q, 4, "min")]


def pickup_waltz() -> Song:
    # 3/4 with a one-beat pickup G; bar 1: C E G; bar 2: G B D (dotted half G, then B D eighths)
    meters = [MeterChange(0, 1, 4), MeterChange(Q, 3, 4)]
    notes = [(0, Q, 67)] + quarters(Q, [60, 64, 67])
    notes += [(4 * Q, 6 * Q, 67), (6 * Q, 6 * Q + Q // 2, 71), (6 * Q + Q // 2, 7 * Q, 74)]
    return melody_song(notes, meters)


def test_spans_of_a_waltz_with_a_pickup():
    song = pickup_waltz()
    assert song.pickup_ticks == Q
    assert folk_triads.spans(song, "bar") == [(0, Q), (Q, 4 * Q), (4 * Q, 7 * Q)]
    assert folk_triads.spans(song, "half") == [(0, Q // 2), (Q // 2, Q), (Q, Q + 3 * Q // 2),
                                        (Q + 3 * Q // 2, 4 * Q), (4 * Q, 4 * Q + 3 * Q // 2),
                                        (4 * Q + 3 * Q // 2, 7 * Q)]
    with pytest.raises(ValueError):
        folk_triads.spans(song, "beat")


def test_naive_waltz_with_a_pickup():
    song = pickup_waltz()
    # pickup G: I (C E G) and V (G B D) tie -> I; bar 1 C E G -> I; bar 2 G B D -> V
    assert folk_triads.naive_triad_chords(song, per="bar", key=C_MAJOR) == [
        (0, 0, "maj"), (Q, 0, "maj"), (4 * Q, 7, "maj")]
    half = folk_triads.naive_triad_chords(song, per="half", key=C_MAJOR)
    assert [t for t, _, _ in half] == [s for s, _ in folk_triads.spans(song, "half")]
    # bar 1 halves: C + half of E (I, IV... C: I/IV/vi, E: I/vi -> I), then rest of E + G -> I
    # bar 2 halves: G alone (I/V tie -> I), then the rest of G (I/V) and B D (V only) -> V
    assert [r for _, r, _ in half] == [0, 0, 0, 0, 0, 7]


# -- chord_root_agreement -----------------------------------------------------------------------
def test_agreement_counts_half_bars_with_a_truth_chord():
    song = pickup_waltz()
    truth = [(Q, 0, "maj"), (4 * Q, 7, "dom7")]  # no chord over the pickup
    # 4 half bars have a truth chord: C, C, G, G
    assert folk_triads.chord_root_agreement(truth, truth, song) == (4, 4)
    pred = [(0, 0, "maj"), (4 * Q, 5, "maj")]  # C all through bar 1, F in bar 2
    assert folk_triads.chord_root_agreement(pred, truth, song) == (2, 4)
    # nothing predicted at bar 1's start, then C minor (root matches, quality ignored)
    # from its second half on: agrees at half 2 only
    pred = [(Q + 3 * Q // 2, 0, "min")]
    assert folk_triads.chord_root_agreement(pred, truth, song) == (1, 4)
    # per bar: bar 1 and bar 2 have truth chords
    assert folk_triads.chord_root_agreement([(0, 7, "maj")], truth, song, per="bar") == (1, 2)
    assert folk_triads.chord_root_agreement([], [], song) == (0, 0)


def test_agreement_truth_chord_holds_until_the_next():
    song = melody_song(quarters(0, [60] * 16))  # 4 bars of 4/4, 8 half bars
    truth = [(0, 0, "maj"), (5 * Q, 7, "maj")]  # G from mid-bar 2's second beat
    # half-bar starts 0,2,4,6,8,10,12,14 (quarters): truth C C C G G G G G
    pred = folk_triads.naive_triad_chords(song, per="half", key=C_MAJOR)  # all C
    assert folk_triads.chord_root_agreement(pred, truth, song) == (3, 8)


def test_naive_agrees_with_itself_and_with_a_hand_harmony():
    # bar 1 C E G C, bar 2 F A C A, bar 3 G B D B, bar 4 C G E C: I IV V I
    pitches = [60, 64, 67, 72, 65, 69, 72, 69, 67, 71, 74, 71, 72, 67, 64, 60]
    song = melody_song(quarters(0, pitches))
    truth = [(0, 0, "maj"), (4 * Q, 5, "maj"), (8 * Q, 7, "dom7"), (12 * Q, 0, "maj")]
    pred = folk_triads.naive_triad_chords(song, per="bar", key=C_MAJOR)
    assert [r for _, r, _ in pred] == [0, 5, 7, 0]
    assert folk_triads.chord_root_agreement(pred, truth, song) == (8, 8)


# -- helpers -------------------------------------------------------------------------------------
def test_chord_like_strings_skip_headers_annotations_and_lowercase():
    body = ('T:"Am" in a title\n% "G" in a comment\n'
            '"^Slow"A2 "D"d2 "(Em)"e "_f" "f" "D.C." "Am/c"c|\nw: "C" lyric line\n')
    assert folk.chord_like_strings(body) == ["D", "Em", "D.C.", "Am/c"]


def test_meter_buckets_and_source_quotas():
    assert folk.meter_bucket("C") == "4/4"
    assert folk.meter_bucket("C|") == "other"
    assert folk.meter_bucket("6/8") == "6/8"
    assert folk.meter_bucket("9/8 % comment") == "other"
    assert folk.meter_bucket("none") is None
    for n in (1, 7, 10, 120, 121):
        q = folk._source_quotas(n)
        assert sum(q) == n and len(q) == len(folk.SOURCE_SHARES)
    assert folk._source_quotas(120) == [30, 20, 30, 20, 20]


def test_skyline_keeps_the_top_note_of_each_onset():
    notes = [Note(0, 960, 60), Note(0, 960, 64), Note(480, 960, 62), Note(960, 1440, 65)]
    assert folk._skyline(notes) == [Note(0, 480, 64), Note(480, 960, 62), Note(960, 1440, 65)]


def test_selection_order_is_by_id_md5_round_robin_over_meters():
    tunes = [folk.AbcTune("f.abc", i, "", m) for i, m in
             enumerate(["2/4", "3/4", "2/4", "6/8", "none", "C", "3/4", "5/4"])]
    order = folk.selection_order(tunes, seed=0)
    assert {t.number for t in order} == {0, 1, 2, 3, 5, 6, 7}  # "none" has no meter
    assert [folk.meter_bucket(t.meter) for t in order[:5]] == ["2/4", "3/4", "4/4", "6/8",
                                                               "other"]
    assert order == folk.selection_order(list(reversed(tunes)), seed=0)


def test_notated_key_modes():
    pytest.importorskip("music21")
    from music21 import key, stream

    def part_with(k):
        p = stream.Part()
        m = stream.Measure()
        m.insert(0, k)
        p.append(m)
        return p

    assert folk.notated_key(part_with(key.Key("A", "dorian")))[0] == Key(9, "minor", 1.0)
    assert folk.notated_key(part_with(key.Key("D", "mixolydian")))[0] == Key(2, "major", 1.0)
    assert folk.notated_key(part_with(key.Key("e", "minor")))[0] == Key(4, "minor", 1.0)
    k, src = folk.notated_key(part_with(key.KeySignature(-2)))
    assert k == Key(10, "major", 1.0) and src.startswith("signature")
    assert folk.notated_key(stream.Part())[0] == Key(0, "major", 1.0)


# -- the corpus (slow) ---------------------------------------------------------------------------
@pytest.mark.slow
def test_folk_chord_tunes_from_the_corpus(tmp_path):
    pytest.importorskip("music21")
    tunes = folk.folk_chord_tunes(tmp_path)
    # music21 10.5.1: only nottingham-dataset/reelsa-c.abc carries chord symbols (2 tunes).
    assert len(tunes) >= 2
    ids = {t.id for t in tunes}
    assert {"nottingham-dataset/reelsa-c.abc#80", "nottingham-dataset/reelsa-c.abc#81"} <= ids
    for t in tunes:
        assert len(t.chords) >= folk.MIN_CHORDS
        assert len(t.song.tracks) == 1 and t.song.tracks[0].role == ROLE_MELODY
        assert t.song.tracks[0].name == "Melody" and t.melody
        assert all(0 <= tick < t.song.end for tick, _, _ in t.chords)
        assert all(0 <= r < 12 and q in folk.QUALITIES for _, r, q in t.chords)
        assert [c[0] for c in t.chords] == sorted({c[0] for c in t.chords})
        assert t.key is not None and t.key.mode in ("major", "minor") and t.key_source
    cuckoo = next(t for t in tunes if t.id.endswith("#80"))
    assert cuckoo.key == Key(2, "major", 1.0)
    assert cuckoo.song.pickup_ticks == TPB  # "A|" before the first bar
    assert cuckoo.chords[0] == (TPB, 2, "maj")  # "D" on the first full bar's downbeat
    czech = next(t for t in tunes if t.id.endswith("#81"))
    assert czech.key == Key(9, "minor", 1.0) and (1920, 4, "dom7") in czech.chords
    again = folk.folk_chord_tunes(tmp_path)  # from the cache
    assert [(t.id, t.chords, t.key, t.melody) for t in again] == \
        [(t.id, t.chords, t.key, t.melody) for t in tunes]
    assert folk.cache_stats(folk.CHORDS_CACHE_NAME, tmp_path)["kept"] == len(tunes)
    agree = total = 0
    for t in tunes:
        a, n = folk_triads.chord_root_agreement(folk_triads.naive_triad_chords(t.song, per="half", key=t.key),
                                         t.chords, t.song)
        agree, total = agree + a, total + n
    print(f"naive triads: root agreement per half bar {agree}/{total} = {agree / total:.3f}")
    assert 0 < agree < total


@pytest.mark.slow
def test_folk_melodies_from_the_corpus(tmp_path):
    pytest.importorskip("music21")
    tunes = folk.folk_melodies(20, seed=0, cache_dir=tmp_path)
    assert len(tunes) == 20
    assert len({t.id for t in tunes}) == 20
    assert {"2/4", "3/4", "4/4", "6/8"} <= {t.meter for t in tunes}
    assert {t.source for t in tunes} == {s[0] for s in folk.SOURCE_SHARES}
    for t in tunes:
        assert t.chords == [] and len(t.melody) >= folk.MIN_NOTES and t.key is not None
    again = folk.folk_melodies(20, seed=0, cache_dir=tmp_path)
    assert [(t.id, t.melody, t.key) for t in again] == [(t.id, t.melody, t.key) for t in tunes]
