"""The band accompanist: chord labels, decoding, the arranger in 3/4 with a pickup and in 6/8,
the live session and the live engine, the CLI, and a tiny model exported and checked against
torch. Every file is built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import UserInputError
from engine.midi_io import read_midi, write_midi
from engine.models.band import BandAccompanist, is_band_model
from engine.models.band_arranger import Arranger
from engine.models.band_chords import (N_CHORDS, N_FEATURES, beat_features, chord_index,
                                       chord_label, decode_spans, harmonic_spans, song_beats)
from engine.music import MeterChange, Note, Song, Track

ROOT = Path(__file__).resolve().parents[1]
Q = 480


def waltz_with_pickup() -> Song:
    """A 3/4 tune in G with a one-beat pickup, 8 bars."""
    notes = [Note(0, Q, 62)]
    bars = [(67, 71, 74), (72, 71, 69), (67, 66, 64), (62, 66, 69), (71, 74, 72), (69, 67, 66),
            (64, 66, 69), (67, 67, 67)]
    t = Q
    for b in bars[:-1]:
        for p in b:
            notes.append(Note(t, t + Q, p))
            t += Q
    notes.append(Note(t, t + 3 * Q, 67))
    return Song([Track("Melody", 73, role="melody", notes=notes)], Q,
                meters=[MeterChange(0, 1, 4), MeterChange(Q, 3, 4)])


def jig() -> Song:
    """A 6/8 jig in D: eighth-note triplets, 8 bars, ending on a dotted half."""
    e = Q // 2
    figures = [(62, 66, 69, 74, 69, 66), (67, 71, 74, 71, 67, 64), (62, 66, 69, 66, 62, 66),
               (69, 67, 66, 64, 62, 61), (62, 66, 69, 74, 69, 66), (67, 71, 74, 71, 67, 64),
               (66, 64, 62, 61, 64, 69)]
    notes, t = [], 0
    for f in figures:
        for p in f:
            notes.append(Note(t, t + e, p))
            t += e
    notes.append(Note(t, t + 6 * e, 62))
    return Song([Track("Melody", 73, role="melody", notes=notes)], Q,
                meters=[MeterChange(0, 6, 8)])


@pytest.fixture(scope="module")
def band():
    return BandAccompanist.load("band", providers="cpu")


# -- labels and decoding ------------------------------------------------------------------------
def test_chordify_names_triads_sevenths_and_diminished():
    from engine.training.band.data import name_sonority

    assert name_sonority({0, 4, 7}, 0) == (0, "maj")
    assert name_sonority({9, 0, 4}, 9) == (9, "min")
    assert name_sonority({7, 11, 2, 5}, 7) == (7, "dom7")
    assert name_sonority({11, 2, 5}, 2) == (11, "dim")
    assert name_sonority({0, 4}, 0) == (0, "maj")  # fifth omitted
    assert name_sonority({0, 1, 2}, 0) is None
    assert chord_label(chord_index(7, "dom7")) == (7, "dom7")
    assert chord_label(0) is None


def test_chordify_labels_a_four_part_cadence_per_beat():
    from engine.training.band.data import chordify

    voices = [[72, 72, 71, 72], [67, 69, 67, 67], [64, 65, 62, 64], [48, 53, 55, 48]]
    tracks = [Track(f"v{i}", notes=[Note(k * Q, (k + 1) * Q, p) for k, p in enumerate(v)])
              for i, v in enumerate(voices)]
    beats, labels, basses = chordify(Song(tracks, Q))
    assert [chord_label(int(c)) for c in labels] == [(0, "maj"), (5, "maj"), (7, "maj"),
                                                     (0, "maj")]
    assert basses.tolist() == [0, 5, 7, 0]


def test_decode_spans_change_penalty_and_final_tonic():
    T = 6
    logp = np.full((T, N_CHORDS), -10.0)
    C, G = chord_index(0, "maj"), chord_index(7, "maj")
    logp[:, C] = -1.0
    logp[2, G] = -0.5  # G is a little likelier on one beat only
    logp[5, G] = -0.2
    spans = [(i, i + 1) for i in range(T)]
    free = decode_spans(logp, spans, change_penalty=0.0, final_bonus=0.0)
    assert free[2] == G and free[5] == G
    held = decode_spans(logp, spans, change_penalty=2.0, final_bonus=0.0)
    assert held[2] == C  # not worth two changes
    home = decode_spans(logp, spans, change_penalty=0.0, final_bonus=3.0)
    assert home[-1] == C


def test_the_tonic_prior_pulls_toward_the_chords_of_the_key():
    from engine.models.band_chords import key_fit

    C, Am, G, Cm, Eb = (chord_index(0, "maj"), chord_index(9, "min"), chord_index(7, "maj"),
                        chord_index(0, "min"), chord_index(3, "maj"))
    major, minor = key_fit(False), key_fit(True)
    assert major[1:].argmax() + 1 == C and minor[1:].argmax() + 1 == Cm
    assert major[C] > major[G] > major[chord_index(1, "maj")]
    logp = np.full((4, N_CHORDS), -10.0)
    logp[:, Am], logp[:, C] = -1.0, -1.1  # the relative minor a little likelier throughout
    spans = [(0, 2), (2, 4)]
    assert decode_spans(logp, spans, change_penalty=1.0, final_bonus=0.0) == [Am, Am]
    assert decode_spans(logp, spans, change_penalty=1.0, final_bonus=0.0,
                        tonic_prior=1.0) == [C, C]
    logp[:, Eb], logp[:, Cm] = -1.0, -1.1  # in C minor: its relative major
    assert decode_spans(logp, spans, change_penalty=1.0, final_bonus=0.0, minor=True,
                        tonic_prior=1.0) == [Cm, Cm]


def test_beats_and_harmonic_spans_follow_the_meter():
    w = waltz_with_pickup()
    beats = song_beats(w, w.tracks[0].end)
    assert beats[0].pickup and beats[0].n_beats == 1
    assert [b.index for b in beats[1:4]] == [0, 1, 2]
    assert all(b - a in (1, 3) for a, b in harmonic_spans(w, w.end, beats))  # a chord a bar
    j = jig()
    jb = song_beats(j, j.end)
    assert len(jb) == 8 * 2  # felt in two dotted quarters a bar
    assert {b.end - b.start for b in jb} == {3 * Q // 2} and [b.index for b in jb[:3]] == [0, 1, 0]
    assert harmonic_spans(j, j.end, jb) == [(i, i + 2) for i in range(0, 16, 2)]  # a chord a bar
    four = Song([Track(notes=[Note(0, 8 * Q, 60)])], Q)
    fb = song_beats(four, four.end)
    assert harmonic_spans(four, four.end, fb) == [(0, 2), (2, 4), (4, 6), (6, 8)]
    x = beat_features(sorted(j.tracks[0].notes), jb, shift=-2, minor=False)
    assert x.shape == (len(jb), N_FEATURES)
    # D F# A in the first dotted quarter (moved to C: C E G), a third each; F# (E) at its middle
    assert x[0, [0, 4, 7]] == pytest.approx([1 / 3] * 3) and x[0, 12] == 1.0
    assert x[0, 24 + 4] == 1.0


# -- the arranger -------------------------------------------------------------------------------
def test_voice_leading_moves_little_between_chords():
    arr = Arranger("pop", Q)
    c = arr.voice(0, "maj")
    f = arr.voice(5, "maj")
    g7 = arr.voice(7, "dom7")
    assert {p % 12 for p in c} == {0, 4, 7} and {p % 12 for p in g7} == {7, 11, 2, 5}
    assert sum(abs(a - b) for a, b in zip(sorted(c), sorted(f))) <= 6


def _check_band(song: Song, out: Song) -> dict:
    added = {t.name: t for t in out.tracks[len(song.tracks):]}
    assert set(added) == {"Chords", "Bass", "Drums"}
    assert all(t.notes for t in added.values())
    assert added["Drums"].is_drum and not added["Bass"].is_drum
    assert out.meters == song.meters
    mel_end = song.tracks[0].end
    assert max(n.end for t in added.values() for n in t.notes) == mel_end
    return added


def test_a_34_tune_with_a_pickup_gets_a_waltz_band(band):
    song = waltz_with_pickup()
    out = band.accompany(song)
    added = _check_band(song, out)
    # the pickup: the drums lead in, chords and bass wait for the first full bar
    assert all(n.start >= Q for n in added["Chords"].notes + added["Bass"].notes)
    assert any(n.start < Q for n in added["Drums"].notes)
    # waltz: the bass on every downbeat of the full bars, the piano on beats 2 and 3
    downbeats = {Q + 3 * Q * k for k in range(7)}
    assert downbeats <= {n.start for n in added["Bass"].notes}
    comp_beats = {(n.start - Q) % (3 * Q) for n in added["Chords"].notes
                  if n.start < Q + 7 * 3 * Q}
    assert comp_beats <= {Q, 2 * Q}
    names = band.chord_names(song, song.tracks[0].notes)
    assert len(names) == 9 and names[-1] == ["G"]  # ends on the tonic of G major


def test_a_68_jig_gets_two_beats_a_bar_and_its_own_styles(band):
    song = jig()
    out = band.accompany(song)
    added = _check_band(song, out)
    kicks = sorted(n.start for n in added["Drums"].notes if n.pitch == 36)
    snares = {n.start % (3 * Q) for n in added["Drums"].notes if n.pitch == 38}
    assert kicks[:2] == [0, 3 * Q] and snares == {int(1.5 * Q)}
    ballad = band.accompany(song, style="ballad")
    assert ballad.tracks[1].program == 4 and len(ballad.tracks[1].notes) < len(added["Chords"]
                                                                                .notes)
    with pytest.raises(UserInputError):
        band.accompany(song, style="polka")


def test_velocities_breathe(band):
    out = band.accompany(jig(), style="pop")
    vels = [n.velocity for n in out.tracks[-1].notes]
    assert len(set(vels)) > 8 and 1 <= min(vels) and max(vels) <= 127


def _digest(parts) -> str:
    import hashlib

    h = hashlib.sha256()
    for notes in parts:
        h.update(repr([(n.start, n.end, n.pitch, n.velocity) for n in notes]).encode())
    return h.hexdigest()[:16]


def test_the_band_plays_the_same_notes_as_before_its_plans_were_cached(band):
    """The arranger lays out each bar length and meter once and keeps its voicings; the notes
    of a waltz and a jig with fixed chords, and of a live session over the waltz, are the ones
    the band played (digests recorded) before the arranger, the chord decoding and the model
    were three modules and the plans were cached."""
    from engine.models.band_arranger import arrange

    w, j = waltz_with_pickup(), jig()
    wc = [(Q, 7, "maj"), (4 * Q, 0, "maj"), (7 * Q, 7, "maj"), (10 * Q, 2, "dom7"),
          (13 * Q, 7, "maj"), (16 * Q, 0, "maj"), (19 * Q, 2, "dom7"), (22 * Q, 7, "maj")]
    jc = [(0, 2, "maj"), (3 * Q, 7, "maj"), (6 * Q, 2, "maj"), (9 * Q, 9, "dom7"),
          (10 * Q + Q // 2, 11, "min"), (12 * Q, 2, "maj"), (15 * Q, 4, "min"),
          (18 * Q, 9, "dom7"), (21 * Q, 2, "maj")]
    assert _digest(t.notes for t in arrange(w, w.tracks[0].notes, wc, seed=3)) \
        == "591256161d55b533"
    assert _digest(t.notes for t in arrange(j, j.tracks[0].notes, jc, style="folk")) \
        == "6a142ce3357007a6"
    sess = band.session(seed=1)
    notes = sorted(w.tracks[0].notes)
    played, prev = [], []
    for s, e, _ in w.bars(w.end)[1:]:
        played += sess.accompany_next(3 * Q, Q, pending=prev)
        prev = [n.shifted(-s) for n in notes if s <= n.start < e]
        sess.observe(prev, 3 * Q, Q)
    # the live session's chords come from the bundled model and the live key finder: recorded
    # again when either changed (last: the key from the Aarden-Essen profiles and the first
    # note instead of the Krumhansl-Kessler profiles; bar 6 was E minor, now G)
    assert sess.chord_names == ["-", "C", "G", "D", "G", "G", "G", "G"]
    assert _digest(played) == "afce3e99a7feef47"


# -- live ---------------------------------------------------------------------------------------
def test_session_waits_for_the_melody_then_plays_chords(band):
    sess = band.session()
    first = sess.accompany_next(3 * Q, Q, pending=[])
    assert not first[0] and not first[1] and first[2]  # drums only before any note is heard
    bar = [Note(0, Q, 67), Note(Q, 2 * Q, 71), Note(2 * Q, 3 * Q, 74)]
    second = sess.accompany_next(3 * Q, Q, pending=bar[:2])
    sess.observe(bar, 3 * Q, Q)
    assert second[0] and second[1] and second[2]
    assert all(0 <= n.start < n.end <= 3 * Q for part in second for n in part)
    third = sess.accompany_next(3 * Q, Q, pending=[Note(0, Q, 72)])
    assert third[0] and sess.chord_names[-1] != "-"


def test_live_session_plays_the_bars_meter_not_the_one_its_length_suggests(band):
    # a 6/8 bar and a 3/4 bar are both three quarters long: the engine names the meter
    bar = [Note(0, Q // 2, 62), Note(Q // 2, Q, 66), Note(Q, 3 * Q // 2, 69)]
    grooves = {}
    for meter in ((6, 8), (3, 4)):
        sess = band.session(seed=0)
        sess.accompany_next(3 * Q, Q, pending=[], meter=meter)
        sess.observe(bar, 3 * Q, Q, meter=meter)
        drums = sess.accompany_next(3 * Q, Q, pending=bar, meter=meter)[2]
        grooves[meter] = sorted((n.start, n.pitch) for n in drums)
    assert grooves[(6, 8)] != grooves[(3, 4)]
    # the jig's groove: kick on the first dotted-quarter beat, snare on the second
    hits = {(t, p) for t, p in grooves[(6, 8)] if p in (36, 38)}
    assert hits == {(0, 36), (3 * Q // 2, 38)}


def test_live_engine_plans_every_bar_with_the_band_on_time(band):
    from engine.evaluation.band import live_replay

    song = waltz_with_pickup()
    r = live_replay(band, song, sorted(song.tracks[0].notes))
    assert r["late"] == 0 and r["skipped"] == 0
    assert all(n > 0 for n in r["parts"][:3])
    assert len(r["ms"]) >= 8


def test_the_live_engine_loads_the_band_by_name():
    from engine.realtime.engine import load_accompanist

    acc = load_accompanist("band:waltz", "cpu")
    assert acc.roles == ("chords", "bass", "drums") and acc.style == "waltz"
    assert acc.drums == (False, False, True)  # the drum roles, read by the live engine
    with pytest.raises(AttributeError):
        acc.drums = (True, True, True)
    assert is_band_model("band") and not is_band_model(None)
    assert not is_band_model("accompanist-bach")


# -- command line -------------------------------------------------------------------------------
def test_cli_accompany_band_writes_midi_and_names_the_chords(tmp_path, capsys):
    from studio.cli import main

    src = tmp_path / "jig.mid"
    write_midi(jig(), src)
    out = tmp_path / "out.mid"
    assert main(["accompany", str(src), "--model", "band", "--style", "folk", "-o",
                 str(out)]) == 0
    text = capsys.readouterr().out
    assert "Drums" in text and "chords: " in text
    back = read_midi(out)
    assert [t.name for t in back.tracks[1:]] == ["Chords", "Bass", "Drums"]
    assert back.tracks[3].is_drum and back.tracks[1].program == 25


def test_cli_style_without_the_band_is_refused(tmp_path, capsys):
    from studio.cli import main

    src = tmp_path / "w.mid"
    write_midi(waltz_with_pickup(), src)
    assert main(["accompany", str(src), "--style", "folk", "-o", str(tmp_path / "o.mid")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--style needs --model band" in err[0]


# -- training -------------------------------------------------------------------------------------
def test_tiny_networks_export_and_run_as_torch_does(tmp_path):
    torch = pytest.importorskip("torch")
    from engine.training.band.export import export
    from engine.training.band.train import CausalChords, OfflineChords

    torch.manual_seed(0)
    off, cau = OfflineChords(8), CausalChords(8)
    card = export(off, cau, tmp_path, name="band-tiny", hidden=8,
                  decoding={"change_penalty": 1.0, "final_bonus": 2.0}, training={},
                  metrics={})
    model = BandAccompanist.load(str(card), providers="cpu")
    song = waltz_with_pickup()
    notes = sorted(song.tracks[0].notes)
    x = beat_features(notes, song_beats(song, song.end), 5, False)
    with torch.no_grad():
        ref = off(torch.from_numpy(x[None]))[0].numpy()
    assert np.allclose(model.beat_logp(x), ref, atol=1e-4)
    out = model.accompany(song)
    _check_band(song, out)


def test_baselines_fit_and_predict_a_chord_per_beat():
    from engine.training.band.baselines import FrequencyBaseline, HmmBaseline
    from engine.training.band.data import ChordPiece

    rng = np.random.default_rng(0)
    pieces = []
    for k in range(6):
        song = waltz_with_pickup().transposed(0)
        beats = song_beats(song, song.end)
        x = beat_features(sorted(song.tracks[0].notes), beats, 5, False)
        y = rng.integers(1, N_CHORDS, len(beats))
        pieces.append(ChordPiece(str(k), "train", x, y, 7, False))
    for b in (FrequencyBaseline().fit(pieces), HmmBaseline().fit(pieces)):
        pred = b.predict(pieces[0].x)
        assert pred.shape == pieces[0].y.shape and (pred > 0).all()
