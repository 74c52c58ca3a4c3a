"""Generators (morph LSTM-VAE, GAN bars, LSTM continuation): metric functions against hand counts,
tiny train -> export (torch vs ORT parity) -> runtime round trips, and the CLI on tiny MIDI files
made here with tiny models written to a temporary POPMUSICNET_MODELS folder."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from engine.errors import UserInputError
from engine.models.gan import (
    empty_bar_rate,
    note_lengths,
    qualified_note_rate,
    table1_row,
    used_pitch_classes,
)
from engine.models.genroll import (
    GridSpec,
    bars_to_song,
    features_to_notes,
    fold_pitch,
    note_f1,
    slerp,
    song_bars,
)
from engine.music import MeterChange, Note, Song, Track

SPEC = GridSpec()
P = SPEC.n_pitches


# -- helpers -----------------------------------------------------------------------------------
def scale_song(kind: int, n_bars: int = 6, tonic: int = 60) -> Song:
    """Two toy 'styles': 0 = quarter-note triads, 1 = eighth-note scale runs."""
    notes = []
    tpb = 480
    for bar in range(n_bars):
        base = bar * 4 * tpb
        if kind == 0:
            for beat in range(4):
                root = tonic + (0, 5, 7, 0)[beat]
                for d in (0, 4, 7):
                    notes.append(Note(base + beat * tpb, base + (beat + 1) * tpb, root + d - 12))
        else:
            for i in range(8):
                notes.append(Note(base + i * 240, base + (i + 1) * 240,
                                  tonic + (0, 2, 4, 5, 7, 9, 11, 12)[(i + bar) % 8]))
    return Song(tracks=[Track(name="t", notes=notes)])


def toy_barsets():
    from engine.training.morph.data import piece_bars

    out = []
    splits = ["train"] * 6 + ["valid"] * 2 + ["test"] * 2
    for k in range(2):
        for i, sp in enumerate(splits):
            out.append(piece_bars(scale_song(k, tonic=55 + i), SPEC, style=f"style{k}", split=sp,
                                  id=f"{k}-{i}"))
    return out


def parse(add_arguments, argv):
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(argv)


# -- representation and metrics against hand counts --------------------------------------------
def test_fold_and_song_bars_roundtrip():
    assert fold_pitch(20, SPEC) == 44 and fold_pitch(100, SPEC) == 76 and fold_pitch(60, SPEC) == 60
    song = Song(tracks=[Track(notes=[Note(0, 480, 60), Note(480, 960, 60), Note(960, 1920, 64)])])
    bars, shift = song_bars(song, SPEC, normalise_key=False)
    assert bars.shape == (1, 16, 2 * P) and shift == 0
    notes = features_to_notes(bars[0], SPEC, 480)
    assert [(n.start, n.end, n.pitch) for n in notes] == [(0, 480, 60), (480, 960, 60),
                                                          (960, 1920, 64)]


def test_bars_to_song_undoes_key_shift():
    feats = np.zeros((1, 16, 2 * P), np.float32)
    feats[0, 0, 60 - SPEC.low] = feats[0, 0:4, P + 60 - SPEC.low] = 1
    song = bars_to_song(feats, SPEC, shift=-2)
    assert [(n.start, n.end, n.pitch) for n in song.tracks[0].notes] == [(0, 480, 62)]


def test_note_f1_hand_count():
    true = np.zeros((4, 2 * P))
    pred = np.zeros((4, 2 * P))
    true[0, 1] = true[1, 2] = true[2, 3] = 1  # three onsets
    pred[0, 1] = pred[1, 2] = pred[3, 5] = 1  # two right, one wrong
    prec, rec, f1 = note_f1(pred, true, P)
    assert prec == pytest.approx(2 / 3) and rec == pytest.approx(2 / 3)
    assert f1 == pytest.approx(2 / 3)
    assert note_f1(np.zeros((2, 2 * P)), np.zeros((2, 2 * P)), P) == (1.0, 1.0, 1.0)


def test_slerp_endpoints_and_norm():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert np.allclose(slerp(a, b, 0.0), a) and np.allclose(slerp(a, b, 1.0), b)
    assert np.linalg.norm(slerp(a, b, 0.3)) == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(slerp(a, 2 * a, 0.5), 1.5 * a)  # parallel: linear


def test_table1_metrics_hand_counts():
    bars = np.zeros((4, 16, 24), bool)  # low = 48: column 0 is C3
    bars[0, 0:4, 0] = True      # C3, 4 steps (qualified)
    bars[0, 4:6, 12] = True     # C4, 2 steps (not): same pitch class as C3
    bars[0, 8:11, 4] = True     # E3, 3 steps (qualified)
    bars[1, :, 7] = True        # G3, 16 steps
    bars[1, 0, 19] = True       # G4, 1 step
    bars[1, 2, 19] = True       # G4 again, 1 step
    # bars 2 and 3 empty
    assert empty_bar_rate(bars) == 0.5
    assert used_pitch_classes(bars, 48) == pytest.approx((2 + 1) / 2)  # {C, E}, {G}
    assert sorted(note_lengths(bars).tolist()) == [1, 1, 2, 3, 4, 16]
    assert qualified_note_rate(bars) == pytest.approx(3 / 6)
    row = table1_row(bars, 48)
    assert row == {"EB": 50.0, "UPC": 1.5, "QN": 50.0}


@pytest.mark.slow  # importing muspy takes 5-20 s here
def test_used_pitch_classes_matches_muspy():
    muspy = pytest.importorskip("muspy")
    rng = np.random.default_rng(3)
    bar = rng.random((16, SPEC.n_pitches)) < 0.08
    full = np.zeros((16, 128), np.uint8)
    full[:, SPEC.low:SPEC.low + SPEC.n_pitches] = bar * 64
    music = muspy.from_pianoroll_representation(full, resolution=4)
    assert used_pitch_classes(bar[None], SPEC.low) == muspy.n_pitch_classes_used(music)


def test_hamming_accuracy_hand_count():
    from engine.models.continuation import hamming_accuracy

    true = np.zeros((2, 8))
    pred = np.zeros((2, 8))
    true[0, [1, 2]] = 1
    pred[0, [1, 3]] = 0.9   # one right (+1), one false (-1), one missed (0)
    true[1, 4] = 1
    pred[1, 4] = 0.7        # right (+1)
    assert hamming_accuracy(pred, true, n_keys=128) == pytest.approx(((1 - 1) + 1) / 128 / 2)


def test_jsb_frames_sound_at_beats():
    from engine.training.continuation.train import JSB_LOW, jsb_frames

    song = Song(tracks=[Track(notes=[Note(0, 960, 60), Note(240, 720, 64), Note(960, 1440, 67)])])
    f = jsb_frames(song, None)  # C major already: no shift
    assert f.shape == (3, 88)
    on = {(int(t), int(k) + JSB_LOW) for t, k in zip(*np.nonzero(f))}
    assert on == {(0, 60), (1, 60), (1, 64), (2, 67)}


def test_lookback_inputs_hand_count():
    from engine.models.continuation import model_inputs, n_model_inputs

    F, S = 2 * P, SPEC.bar_steps
    frames = np.zeros((1, 2 * S, F), np.float32)
    for t in range(2 * S):
        frames[0, t, t % F] = 1  # frame t marks column t
    x = model_inputs(frames, np.arange(2 * S - 1), S)
    assert x.shape == (1, 2 * S - 1, n_model_inputs(F, S, True)) == (1, 31, 2 * F + S + 1)
    for t in (0, 14, 15, 20):
        assert np.array_equal(x[0, t, :F], frames[0, t])  # the frame itself
        back = t + 1 - S  # one bar before the predicted frame t + 1
        assert np.array_equal(x[0, t, F:2 * F], frames[0, back] if back >= 0 else np.zeros(F))
        assert x[0, t, 2 * F + (t + 1) % S] == 1 and x[0, t, 2 * F:2 * F + S].sum() == 1
        assert x[0, t, -1] == (back >= 0)
    # one step at a time (the runtime) = the whole window at once (training)
    assert np.array_equal(model_inputs(frames, [20], S)[:, 0], x[:, 20])
    assert np.array_equal(model_inputs(frames, [3], S, lookback=False)[:, 0], frames[:, 3])


def test_threshold_frame_holds_only_sounding_notes_and_caps_onsets():
    from engine.models.continuation import threshold_frame

    probs = np.zeros((1, 2 * P), np.float32)
    probs[0, [1, 2, 3]] = [0.9, 0.5, 0.3]        # onset probabilities
    probs[0, P + 7] = probs[0, P + 8] = 0.8      # held probabilities, 7 sounding before, 8 not
    prev = np.zeros((1, P), np.float32)
    prev[0, 7] = 1
    x = threshold_frame(probs, prev, thr_onset=0.25, thr_active=0.5, max_notes=2)
    assert set(np.flatnonzero(x[0, :P])) == {1, 2}            # 0.3 cut by the cap of 2
    assert set(np.flatnonzero(x[0, P:])) == {1, 2, 7}         # onsets sound; 8 was silent
    x = threshold_frame(probs, prev, thr_onset=0.25, thr_active=0.5, max_notes=0)
    assert set(np.flatnonzero(x[0, :P])) == {1, 2, 3}
    # expected number of onsets 0.9 + 0.5 + 0.3 = 1.7: x 1 -> 2 notes, x 0.5 -> 1 note, x 0.2 -> 0
    for scale, want in ((1.0, {1, 2}), (0.5, {1}), (0.2, set())):
        x = threshold_frame(probs, prev, thr_onset=0.0, thr_active=0.5, count_scale=scale)
        assert set(np.flatnonzero(x[0, :P])) == want
    two = np.stack([probs[0], probs[0] * 0.1])  # per row: the second expects 0.17 onsets
    x = threshold_frame(two, np.zeros((2, P)), thr_onset=0.0, thr_active=0.5, count_scale=1.0)
    assert x[0, :P].sum() == 2 and x[1, :P].sum() == 0
    # fill: the expected number (round 1.7 = 2) even where no onset passes the threshold
    x = threshold_frame(probs, prev, thr_onset=0.95, thr_active=0.5, fill_expected=True)
    assert set(np.flatnonzero(x[0, :P])) == {1, 2}


def test_window_note_f1_matches_note_f1():
    from engine.training.continuation.evaluate import window_note_f1

    rng = np.random.default_rng(0)
    pred = (rng.random((6, 16, 2 * P)) < 0.03).astype(np.float32)
    true = (rng.random((6, 16, 2 * P)) < 0.03).astype(np.float32)
    pred[4] = true[4] = 0          # empty vs empty = 1.0
    pred[5] = 0                    # nothing predicted = 0.0
    want = [note_f1(pred[i], true[i], P)[2] for i in range(6)]
    assert np.allclose(window_note_f1(pred, true, P), want)


def _tiny_continuer(tmp_path, decoding=None, seed=0):
    """A tiny untrained lookback FrameLSTM exported with a card: (torch model, Continuer)."""
    import torch

    from engine.models.continuation import Continuer, n_model_inputs
    from engine.models.runtime import load_card
    from engine.training.continuation.model import FrameLSTM, export_step
    from engine.training.onnx_export import write_card

    torch.manual_seed(seed)
    F = 2 * P
    model = FrameLSTM(F, 12, 2, 0.5, n_inputs=n_model_inputs(F, SPEC.bar_steps, True)).eval()
    path = tmp_path / "cont-lb.step.onnx"
    parity = export_step(model, path)
    rep = {"grid": SPEC.to_dict(), "features": "onset+active", "hidden": 12, "layers": 2,
           "context_bars": 1, "lookback": True}
    if decoding is not None:
        rep["decoding"] = decoding
    card = write_card(tmp_path, "cont-lb", "continuation", {"step": path}, rep,
                      {"parity_max_abs": parity}, {})
    return model, Continuer(load_card(card), providers="cpu")


@pytest.mark.slow
def test_lookback_runtime_matches_torch(tmp_path):
    """The runtime builds the lookback inputs step by step and runs the ONNX step graph; torch
    reads the same windows teacher-forced with the training inputs: same probabilities."""
    import torch

    from engine.models.continuation import model_inputs

    model, cont = _tiny_continuer(tmp_path)
    assert cont.lookback and cont.n_inputs == 2 * 2 * P + SPEC.bar_steps + 1
    rng = np.random.default_rng(1)
    frames = (rng.random((3, 40, 2 * P)) < 0.1).astype(np.float32)
    with torch.no_grad():
        want = torch.sigmoid(model(torch.from_numpy(
            model_inputs(frames, np.arange(39), SPEC.bar_steps)))).numpy()
    for n_ctx in (5, 16, 23, 39):  # before, at and after a whole bar of context
        probs = cont.read_context(frames[:, :n_ctx], 0)[1]
        assert np.abs(probs - want[:, n_ctx - 1]).max() < 1e-5


@pytest.mark.slow
def test_continuation_default_decoding_comes_from_the_card(tmp_path):
    dec = {"thr_onset": 0.0, "thr_active": 1.0, "max_notes": 2, "valid_note_f1": 0.5}
    _, cont = _tiny_continuer(tmp_path, decoding=dec)
    assert cont.decoding == {"thr_onset": 0.0, "thr_active": 1.0, "max_notes": 2,
                             "count_scale": 0.0, "fill_expected": False}
    ctx = np.zeros((2, 16, 2 * P), np.float32)
    ctx[:, ::4, 5] = ctx[:, :, P + 5] = 1
    out = cont.continue_features(ctx, 8)
    # every onset probability is > 0: exactly the 2 most likely onsets each step, nothing held
    assert (out[:, :, :P].sum(axis=2) == 2).all()
    assert np.array_equal(out[:, :, P:], out[:, :, :P])
    assert np.array_equal(out, cont.continue_features(ctx, 8, seed=7))  # deterministic
    sampled = cont.continue_features(ctx, 8, temperature=1.0, seed=7)
    assert not np.array_equal(out, sampled)
    # the same card asking for silence: decoding read from it, not fixed in the code
    cont.card.representation["decoding"] = {**dec, "thr_onset": 1.0}
    from engine.models.continuation import Continuer

    silent = Continuer(cont.card, providers="cpu")
    assert not silent.continue_features(ctx, 8).any()
    assert "at most 2 onsets" in cont.decoding_text()


# -- tiny training -> export -> runtime --------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """One tiny model of each kind, trained for an epoch on toy bars (exports check parity)."""
    from engine.training.continuation import train as ctrain
    from engine.training.gan import train as gtrain
    from engine.training.morph import train as mtrain

    out = tmp_path_factory.mktemp("models")
    bs = toy_barsets()
    common = ["--epochs", "1", "--minutes", "1", "--batch", "8", "--device", "cpu",
              "--out", str(out)]
    cards = {
        "morph": mtrain.train(parse(mtrain.add_arguments, common + [
            "--hidden", "16", "--enc-hidden", "8", "--embed", "8", "--latent", "4",
            "--name", "morph-tiny"]), bs),
        "gan": gtrain.train(parse(gtrain.add_arguments, common + [
            "--arch", "cnn", "--width", "8", "--noise", "8", "--conditional",
            "--name", "gan-tiny"]), bs),
        "gan-bilstm": gtrain.train(parse(gtrain.add_arguments, common + [
            "--arch", "bilstm", "--width", "8", "--noise", "8", "--name", "gan-bilstm-tiny"]), bs),
        "continuation": ctrain.train(parse(ctrain.add_arguments, common + [
            "--hidden", "16", "--name", "continuation-tiny"]), bs),
    }
    return out, cards


@pytest.mark.slow
def test_morph_roundtrip(tiny_models):
    from engine.models import melody_tokens as mt
    from engine.models.morph import Morpher
    from engine.models.runtime import load_card

    card = load_card(tiny_models[1]["morph"])
    assert card.kind == "morph" and set(card.files) == {"encoder", "decode"}
    assert card.training["parity"]["encoder"] < 1e-4 and card.training["parity"]["decode"] == 0
    assert {"step_accuracy", "onset_f1", "onset_f1_shuffled_latent"} <= set(card.metrics)
    m = Morpher(card, providers="cpu")
    assert m.styles == ("style0", "style1")
    a, b = scale_song(0), scale_song(1)
    one = m.morph(a, b, 0.3, seed=5, temperature=1.0)
    assert one.tracks[0].notes == m.morph(a, b, 0.3, seed=5, temperature=1.0).tracks[0].notes
    tok = m.decode(np.stack([m.encode_song(a)[0]] * 2), seed=1, temperature=1.0)
    assert tok.shape == (2, m.window_steps) and np.array_equal(tok[0], tok[1])  # one draw
    assert tok.min() >= 0 and tok.max() < mt.vocab_size(P)
    trans = m.morph("style0", "style1", 0.0, steps=3, seed=0)
    assert trans.end <= 3 * m.n_bars * 4 * trans.ticks_per_beat
    # the melody the model reads from a chord-and-run song is its skyline
    wins, _ = m.song_windows(b)
    assert wins.shape[1] == m.window_steps and (wins >= mt.NOTE0).any(axis=1).all()


def test_morph_card_needs_its_melody_section(tmp_path):
    import json

    from engine.errors import ModelError
    from engine.models.card import ModelCard

    rep = {"grid": SPEC.to_dict(), "n_bars": 2, "latent": 4, "hidden": 8}
    card = {"name": "m", "kind": "morph", "files": {"decode": "m.onnx"},
            "sha256": {"decode": "0" * 64}, "representation": rep}
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="melody"):
        ModelCard.read(tmp_path / "m.json")
    rep["melody"] = {"vocab": 54, "rest": 0, "hold": 1, "note0": 2}
    (tmp_path / "m.json").write_text(json.dumps(card))
    assert ModelCard.read(tmp_path / "m.json").representation["melody"]["vocab"] == 54


@pytest.mark.slow
def test_gan_roundtrip(tiny_models):
    from engine.models.gan import BarGenerator
    from engine.models.runtime import load_card

    for key in ("gan", "gan-bilstm"):
        card = load_card(tiny_models[1][key])
        assert card.training["parity_max_abs"] < 1e-4
        assert set(card.metrics["table1_generated_2000"]) == {"EB", "UPC", "QN"}
        g = BarGenerator(card, providers="cpu")
        bars = g.bars(5, seed=2)
        assert bars.shape == (5, 16, P) and bars.dtype == bool
        assert np.array_equal(bars, g.bars(5, seed=2))
    g = BarGenerator(load_card(tiny_models[1]["gan"]), providers="cpu")
    assert g.conditional and g.styles == ("style0", "style1")
    central = g.probabilities(3, temperature=0.0, style="style0")  # z = 0: one bar per style
    assert np.array_equal(central[0], central[2])
    assert np.array_equal(central, g.probabilities(3, temperature=0.0, style="style0", seed=9))
    song = g.generate(4, style="style1", seed=1)
    assert song.end <= 4 * 4 * song.ticks_per_beat


@pytest.mark.slow
def test_continuation_roundtrip(tiny_models):
    from engine.models.continuation import Continuer
    from engine.models.runtime import load_card

    from engine.training.continuation.evaluate import (COUNT_SCALE, FILL_EXPECTED, MAX_NOTES,
                                                       THR_ACTIVE, THR_ONSET)

    card = load_card(tiny_models[1]["continuation"])
    assert card.training["parity_max_abs"] < 1e-4
    assert {"hamming_likely", "note_f1_repeat", "note_f1_chosen"} <= set(card.metrics)
    dec = card.representation["decoding"]  # chosen on the validation windows
    best = card.representation["decoding_max_f1"]
    for d in (dec, best):
        assert d["thr_onset"] in THR_ONSET and d["thr_active"] in THR_ACTIVE
        assert d["max_notes"] in MAX_NOTES and d["count_scale"] in COUNT_SCALE
        assert d["fill_expected"] in FILL_EXPECTED
        assert 0 <= d["valid_note_f1"] <= 1
    assert dec["valid_note_f1"] <= best["valid_note_f1"]
    assert (dec["valid_onsets_per_bar"] <= 1.25 * dec["valid_true_onsets_per_bar"]
            or dec == best)
    assert "note_f1_max_f1" in card.metrics
    c = Continuer(card, providers="cpu")
    assert c.lookback and c.decoding["thr_onset"] == dec["thr_onset"]
    song = scale_song(1, n_bars=3)
    out = c.continue_song(song, 2, seed=3)
    assert len(out.tracks) == 2 and out.tracks[0].notes == song.tracks[0].notes
    assert all(3 * 1920 <= n.start < 5 * 1920 for n in out.tracks[1].notes)
    assert out.tracks[1].notes == c.continue_song(song, 2, seed=3).tracks[1].notes


@pytest.mark.slow
def test_jsb_training_tiny(tmp_path):
    from engine.training.continuation import train as ctrain

    songs = [(scale_song(k % 2, n_bars=2, tonic=60 + k), sp)
             for k, sp in enumerate(["train"] * 4 + ["valid", "test"])]
    args = parse(ctrain.add_arguments, ["--task", "jsb", "--epochs", "1", "--hidden", "8",
                                        "--device", "cpu", "--out", str(tmp_path)])
    path = ctrain.train(args, chorales=songs)
    import json

    result = json.loads(path.read_text())
    assert result["test_frames"] == 8 and result["test_nll_per_frame"] > 0
    assert not list(tmp_path.glob("*.json"))  # not mistaken for a model card


# -- CLI ---------------------------------------------------------------------------------------
@pytest.fixture
def cli_env(tiny_models, monkeypatch, tmp_path):
    from engine.midi_io import write_midi

    monkeypatch.setenv("POPMUSICNET_MODELS", str(tiny_models[0]))
    monkeypatch.setenv("POPMUSICNET_PROVIDER", "cpu")
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    song_a = scale_song(0, n_bars=4)
    song_a.meters = [MeterChange(0, 4, 4)]
    write_midi(song_a, a)
    write_midi(scale_song(1, n_bars=4), b)
    return tmp_path, a, b


def _main(argv):
    from studio.cli import main

    return main(argv)


@pytest.mark.slow
def test_cli_morph_generate_continue(cli_env):
    from engine.midi_io import read_midi

    tmp, a, b = cli_env
    out = tmp / "m.mid"
    assert _main(["morph", str(a), str(b), "--alpha", "0.3", "--model", "morph-tiny",
                  "-o", str(out)]) == 0
    assert out.exists() and read_midi(out, lenient=True).end <= 2 * 1920
    assert _main(["morph", "--style-a", "style0", "--style-b", "style1", "--steps", "3",
                  "--model", "morph-tiny", "-o", str(tmp / "t.mid")]) == 0
    assert _main(["generate", "--bars", "2", "--variations", "3", "--model", "gan-tiny",
                  "--style", "style0", "-o", str(tmp / "g.mid")]) == 0
    assert sorted(p.name for p in tmp.glob("g-*.mid")) == ["g-1.mid", "g-2.mid", "g-3.mid"]
    assert _main(["continue", str(a), "--bars", "2", "--model", "continuation-tiny",
                  "-o", str(tmp / "c.mid")]) == 0
    cont = read_midi(tmp / "c.mid")
    assert cont.n_notes >= read_midi(a).n_notes
    # a 3/4 tune: the new bars are 3/4 bars after its last bar line, in a track of their own
    from engine.midi_io import write_midi

    write_midi(waltz_song(), tmp / "w.mid")
    assert _main(["continue", str(tmp / "w.mid"), "--bars", "4", "--model",
                  "continuation-tiny", "--temperature", "1", "-o", str(tmp / "wc.mid")]) == 0
    wc = read_midi(tmp / "wc.mid")
    new = [n for t in wc.tracks if t.name == "continuation" for n in t.notes]
    end = 480 + 4 * 3 * 480
    assert new and min(n.start for n in new) >= end and max(n.end for n in new) <= end + 12 * 480
    assert str(wc.meter_at(end)) == "3/4"
    assert _main(["generate", "--bars", "4", "--meter", "3/4", "--model", "gan-tiny",
                  "--temperature", "2", "-o", str(tmp / "g34.mid")]) == 0
    g34 = read_midi(tmp / "g34.mid", lenient=True)
    assert [str(m) for m in g34.meters] == ["3/4"] and g34.end <= 4 * 3 * 480


@pytest.mark.slow
@pytest.mark.parametrize("argv", [
    ["morph", "A", "B", "--alpha", "1.5", "-o", "X"],
    ["morph", "--style-a", "nope", "--style-b", "style1", "-o", "X"],
    ["morph", "A", "-o", "X"],
    ["generate", "--variations", "17", "-o", "X"],
    ["generate", "--temperature", "3", "-o", "X"],
    ["generate", "--style", "nope", "-o", "X"],
    ["generate", "--meter", "3/5", "-o", "X"],
    ["continue", "A", "--meter", "three", "-o", "X"],
    ["continue", "missing.mid", "-o", "X"],
    ["continue", "A", "--bars", "0", "-o", "X"],
])
def test_cli_bad_input_exits_2(cli_env, argv, capsys):
    tmp, a, b = cli_env
    model = {"morph": "morph-tiny", "generate": "gan-tiny", "continue": "continuation-tiny"}
    argv = [str(a) if x == "A" else str(b) if x == "B" else str(tmp / "x.mid") if x == "X"
            else str(tmp / x) if x.endswith(".mid") else x for x in argv]
    assert _main(argv + ["--model", model[argv[0]]]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err
    assert not (tmp / "x.mid").exists()


def test_table1_target_and_naive_model():
    from engine.training.gan.evaluate import naive_bars, target_met

    ours = {"EB": 1.0, "UPC": 5.0, "QN": 50.0}
    # MuseGAN's gaps to their data: EB 2.2, UPC 0.85, QN 26.2
    assert target_met({"EB": 3.0, "UPC": 5.5, "QN": 30.0}, ours) == {
        "EB": True, "UPC": True, "QN": True}
    assert target_met({"EB": 4.0, "UPC": 4.0, "QN": 80.0}, ours) == {
        "EB": False, "UPC": False, "QN": False}
    bars = naive_bars(500, 0.05, 16, 52, seed=1)
    assert bars.shape == (500, 16, 52) and abs(bars.mean() - 0.05) < 0.005


def test_train_and_eval_kinds_registered():
    from studio.cli import build_parser

    parser = build_parser()
    for cmd in ("train", "eval"):
        args = None
        for kind in ("morph", "gan", "continuation"):
            argv = [cmd, kind] + (["--minutes", "1"] if cmd == "train" else ["--no-report"])
            args = parser.parse_args(argv)
            assert args.kind == kind
        del args


@pytest.mark.slow
def test_gan_default_is_cnn(tiny_models, monkeypatch):
    import shutil

    from engine.models.gan import BarGenerator

    d, cards = tiny_models
    for suffix in (".json", ".onnx"):
        shutil.copy(cards["gan"].with_suffix(suffix), d / f"gan-cnn{suffix}")
    # the card names itself: rewrite the copy's name
    from engine.models.card import ModelCard

    card = ModelCard.read(d / "gan-cnn.json")
    card.name, card.files = "gan-cnn", {"generator": "gan-cnn.onnx"}
    card.write(d / "gan-cnn.json")
    monkeypatch.setenv("POPMUSICNET_MODELS", str(d))
    assert BarGenerator.load(providers="cpu").name == "gan-cnn"


# -- meters and degenerate repetition ----------------------------------------------------------
def waltz_song(n_bars: int = 4, pickup: bool = True) -> Song:
    """A 3/4 tune: a one-beat pickup (a 1/4 bar) then `n_bars` bars of three quarter notes."""
    tpb = 480
    notes, t = [], 0
    if pickup:
        notes.append(Note(0, tpb, 67))
        t = tpb
    for bar in range(n_bars):
        for beat, pitch in enumerate((72, 76, 79) if bar % 2 == 0 else (74, 77, 71)):
            notes.append(Note(t + beat * tpb, t + (beat + 1) * tpb, pitch))
        t += 3 * tpb
    meters = [MeterChange(0, 1, 4), MeterChange(tpb, 3, 4)] if pickup else [MeterChange(0, 3, 4)]
    return Song(tracks=[Track(name="melody", notes=notes)], meters=meters)


@pytest.mark.slow
def test_continuation_writes_whole_bars_of_the_songs_meter(tmp_path):
    dec = {"thr_onset": 0.0, "thr_active": 1.0, "max_notes": 1}
    _, cont = _tiny_continuer(tmp_path, decoding=dec)
    tpb = 480
    for pickup in (True, False):
        song = waltz_song(pickup=pickup)
        end = song.end  # the last note ends on the bar line
        out = cont.continue_song(song, 4)
        assert len(out.tracks) == 2 and out.tracks[-1].name == "continuation"
        assert out.tracks[0].notes == song.tracks[0].notes
        new = out.tracks[-1].notes
        # one onset a step (max_notes 1, threshold 0): 4 bars of 3/4 = 48 steps, 12 beats
        assert len(new) == 48
        assert min(n.start for n in new) == end
        assert max(n.end for n in new) == end + 12 * tpb
        assert [(m.numerator, m.denominator) for m in out.meters][-1] == (3, 4)
    # a last note ending inside a bar: the continuation starts at the next bar line
    song = waltz_song(pickup=False)
    song.tracks[0].notes[-1] = Note(song.end - 3 * tpb, song.end - 2 * tpb, 71)
    new = cont.continue_song(song, 2).tracks[-1].notes
    assert min(n.start for n in new) == 4 * 3 * tpb
    assert max(n.end for n in new) == (4 + 2) * 3 * tpb
    # another meter asked for: 6/8 bars (12 steps) after a 4/4 song, the meter written there
    four = scale_song(1, n_bars=2)
    out = cont.continue_song(four, 2, meter=(6, 8))
    assert out.meter_at(out.end - 1).numerator == 6 and out.meter_at(0).numerator == 4
    assert max(n.end for n in out.tracks[-1].notes) == 2 * 4 * tpb + 2 * 3 * tpb
    with pytest.raises(UserInputError):
        cont.continue_song(four, 2, meter=(5, 3))


@pytest.mark.slow
def test_continuation_forbids_one_pitch_repeated(tmp_path):
    """One onset a step, the most likely: an untrained net settles on one pitch; the decoder lets
    a pitch start in at most MAX_REPEAT onset steps in a row."""
    from engine.models.continuation import MAX_REPEAT

    dec = {"thr_onset": 0.0, "thr_active": 1.0, "max_notes": 1}
    _, cont = _tiny_continuer(tmp_path, decoding=dec)
    ctx = np.zeros((1, 16, 2 * P), np.float32)
    ctx[:, ::4, 5] = ctx[:, :, P + 5] = 1
    state = cont.read_context(ctx, 32)
    free = cont.generate_from(state, 16, max_repeat=0)[0]
    kept = cont.generate_from(state, 16)[0]
    pitches = lambda f: [int(np.flatnonzero(r[:P])[0]) for r in f if r[:P].any()]  # noqa: E731
    assert len(set(pitches(free))) == 1  # the degenerate continuation the rule is for
    runs, last, n = [], None, 0
    for p in pitches(kept):
        n = n + 1 if p == last else 1
        last = p
        runs.append(n)
    assert len(pitches(kept)) == 32 and max(runs) == MAX_REPEAT
    assert len(set(pitches(kept))) >= 3
    # at temperature 0 a melody still gets its notes (at least the expected number a step)
    assert cont.generate_from(state, 16, temperature=0.0)[0, :, :P].any()


@pytest.mark.slow
def test_gan_writes_bars_of_the_meter():
    from engine.models.gan import BarGenerator

    g = BarGenerator.load(providers="cpu")  # the bundled generator
    tpb = 480
    for meter, beats in (((3, 4), 3), ((6, 8), 3), ((2, 4), 2), ((6, 4), 6), ((4, 4), 4)):
        song = g.generate(4, seed=3, meter=meter)
        assert [(m.numerator, m.denominator) for m in song.meters] == [meter]
        assert song.tracks[0].name == "generated" and song.n_notes > 0
        bar = beats * tpb
        for n in song.tracks[0].notes:  # every note inside one bar of the meter
            assert n.start // bar == (n.end - 1) // bar < 4
    with pytest.raises(UserInputError):
        g.generate(2, meter=(3, 5))
