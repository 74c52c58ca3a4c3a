"""Style classifiers: features, class weights, window averaging, a tiny train -> ONNX -> runtime
round trip for each network (with torch vs ONNX Runtime parity), and the `classify` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine import audio_features as af
from engine.models.classifier import (MelodySpec, TooShortError, average_windows, melody_roll,
                                      melody_windows, ranked, time_factor, top_voice)


# -- features ----------------------------------------------------------------------------------
def test_stft_peak_bin_of_a_sine():
    sr, f = af.SAMPLE_RATE, 1000.0
    x = np.sin(2 * np.pi * f * np.arange(sr) / sr).astype(np.float32)
    power = af.stft_power(x)
    assert power.shape[1] == af.N_FFT // 2 + 1
    assert int(np.argmax(power.mean(axis=0))) == round(f * af.N_FFT / sr)


def test_log_mel_peak_band_contains_the_sine():
    sr = af.SAMPLE_RATE
    for f in (220.0, 1000.0, 3000.0):
        x = 0.5 * np.sin(2 * np.pi * f * np.arange(sr) / sr).astype(np.float32)
        spec = af.log_mel(x)
        assert spec.shape[0] == af.N_MELS and spec.min() >= 0 and spec.max() <= 1
        band = int(np.argmax(spec.mean(axis=1)))
        fb = af.mel_filterbank()
        freqs = np.linspace(0, sr / 2, af.N_FFT // 2 + 1)
        centre = freqs[np.argmax(fb[band])]
        assert abs(np.log2(centre / f)) < 0.1, (f, centre)


def test_semitone_bands_peak_at_the_sine_pitch():
    sr = af.SAMPLE_RATE
    for midi in (45, 57, 69, 83, 100):
        f = 440.0 * 2 ** ((midi - 69) / 12)
        x = 0.5 * np.sin(2 * np.pi * f * np.arange(sr // 2) / sr).astype(np.float32)
        spec = af.log_semitone(x)
        assert spec.shape[0] == af.N_BANDS
        assert af.LOW_MIDI + int(np.argmax(spec.mean(axis=1))) == midi
    # a transposition is a shift along the band axis
    a = af.log_semitone(np.sin(2 * np.pi * 440 * np.arange(sr) / sr).astype(np.float32))
    b = af.log_semitone(np.sin(2 * np.pi * 880 * np.arange(sr) / sr).astype(np.float32))
    assert int(np.argmax(b.mean(1))) - int(np.argmax(a.mean(1))) == 12


def test_resample_keeps_frequency():
    x = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100).astype(np.float32)
    y = af.resample(x, 44100, 22050)
    assert y.size == 22050
    spec = np.abs(np.fft.rfft(y))
    assert int(np.argmax(spec)) == 440  # 1 s of signal: bin k is k Hz


def test_spectrogram_windows_pad_and_cover():
    w = af.spectrogram_windows(np.ones((4, 10), np.float32), frames=20, hop=10)
    assert w.shape == (1, 1, 4, 20) and w[0, 0, :, 10:].max() == 0
    w = af.spectrogram_windows(np.ones((4, 100), np.float32), frames=20, hop=10)
    assert w.shape[0] == 9


def test_top_voice_keeps_highest_and_cuts_at_next_onset():
    s, e, p = top_voice(np.array([0.0, 0.0, 1.0, 1.5]), np.array([2.0, 1.0, 2.0, 3.0]),
                        np.array([60, 67, 64, 62]))
    assert s.tolist() == [0.0, 1.0, 1.5]
    assert p.tolist() == [67, 64, 62]
    assert e.tolist() == [1.0, 1.5, 3.0]


def test_half_note_pulse_is_normalised_away():
    """The same tune notated in half notes (Palestrina's pulse) and in quarters gives the same
    roll: notation habits cannot tell the classes apart."""
    rng = np.random.default_rng(0)
    pitches = 60 + rng.choice([0, 2, 4, 5, 7, 9], size=24)
    durs = rng.choice([1.0, 1.0, 2.0, 0.5], size=24)
    s = np.concatenate([[0], np.cumsum(durs)[:-1]])
    a = melody_roll(s, s + durs, pitches)
    b = melody_roll(2 * s, 2 * (s + durs), pitches)
    assert time_factor(2 * s) == time_factor(s) / 2
    assert np.array_equal(a, b)


def test_transposed_melody_gives_the_same_windows():
    s = np.arange(20, dtype=float)
    p = np.array([60, 62, 64, 65, 67, 65, 64, 62] * 2 + [60, 67, 64, 60])
    a = melody_windows(s, s + 1, p)
    b = melody_windows(s, s + 1, p + 5)
    assert np.array_equal(a, b)


def test_too_short_melody_raises():
    with pytest.raises(TooShortError, match="too short"):
        melody_windows(np.arange(3.0), np.arange(3.0) + 1, np.array([60, 62, 64]))


def test_windows_shape_and_hop():
    spec = MelodySpec()
    s = np.arange(200, dtype=float) / 2  # 100 beats of eighths -> factor 2 -> 200 beats
    w = melody_windows(s, s + 0.5, 60 + np.arange(200) % 12, spec)
    assert w.shape[1:] == (2, spec.window_steps, spec.n_pitches)
    assert w.shape[0] == (400 - spec.window_steps) // spec.hop_steps + 1


# -- weights and averaging -----------------------------------------------------------------------
def test_class_weights_are_n_total_over_n_class():
    from engine.training.classify.metrics import class_weights

    w = class_weights(np.array([0, 0, 0, 1, 2, 2]), 4)
    assert w.tolist() == pytest.approx([2.0, 6.0, 3.0, 0.0])


def test_window_averaging_and_ranking():
    probs = np.array([[0.9, 0.1, 0.0], [0.1, 0.3, 0.6], [0.2, 0.2, 0.6]])
    mean = average_windows(probs)
    assert mean == pytest.approx([0.4, 0.2, 0.4])
    assert ranked(("a", "b", "c"), mean)[0][0] == "a"
    assert [lab for lab, _ in ranked(("a", "b", "c"), np.array([0.1, 0.7, 0.2]))] == ["b", "c", "a"]
    with pytest.raises(ValueError):
        average_windows(np.zeros((0, 3)))


def test_balanced_accuracy_and_confusion():
    from engine.training.classify.metrics import balanced_accuracy, confusion

    cm = confusion([0, 0, 0, 0, 1], [0, 0, 0, 0, 0], 2)
    assert cm.tolist() == [[4, 0], [1, 0]]
    assert balanced_accuracy(cm) == 0.5


def test_split_keeps_groups_together_and_every_class_in_test():
    from engine.training.classify.corpus import Piece, assign_splits

    pieces = [Piece(lab, f"{lab}:{g}", "x", np.zeros(1), np.ones(1), np.zeros(1, np.int16))
              for lab in ("a", "b") for g in range(30) for _ in range(2)]
    splits = assign_splits(pieces)
    by_group: dict[str, set] = {}
    for p, s in zip(pieces, splits):
        by_group.setdefault(p.group, set()).add(s)
    assert all(len(v) == 1 for v in by_group.values())
    for lab in ("a", "b"):
        got = {s for p, s in zip(pieces, splits) if p.label == lab}
        assert got == {"train", "valid", "test"}


def test_same_tune_in_two_pieces_lands_in_one_group():
    from engine.training.classify.corpus import Piece, group_keys

    s = np.arange(16, dtype=float)
    tune = np.array([60, 62, 64, 65, 67, 65, 64, 62, 60, 59, 60, 62, 64, 62, 60, 60], np.int16)
    a = Piece("german_folk", "g:a", "x", s, s + 1, tune)
    # the same tune a fourth higher, with a passing note between beats: same signature
    s2 = np.sort(np.concatenate([s, [2.5]]))
    p2 = np.insert(tune + 5, 3, 70).astype(np.int16)  # the passing note after beat 2
    b = Piece("german_folk", "g:b", "y", s2, s2 + 0.5, p2)
    other = Piece("german_folk", "g:c", "z", s, s + 1, tune[::-1].copy())
    keys = group_keys([a, b, other])
    assert keys[0] == keys[1] != keys[2]


def test_pitch_shift_augment_moves_rows_without_wrapping():
    pytest.importorskip("torch")
    from engine.training.classify.trainer import pitch_shift_augment

    x = np.zeros((50, 2, 4, 12), np.float32)
    x[:, :, :, 0] = 1  # lowest row
    x[:, :, :, 11] = 1  # highest row
    y = pitch_shift_augment(2)(x, np.random.default_rng(0))
    assert y.shape == x.shape
    per_sample = y.sum(axis=(1, 2, 3))
    assert set(per_sample.tolist()) <= {8.0, 16.0}  # a shifted-out row is dropped, not wrapped
    assert (per_sample == 8.0).any() and (per_sample == 16.0).any()


def test_spec_augment_masks_one_run_of_frames_and_one_of_bands():
    pytest.importorskip("torch")
    from engine.training.classify.trainer import spec_augment

    x = np.ones((40, 1, 72, 108), np.float32)
    y = spec_augment(max_frames=12, max_bands=6)(x, np.random.default_rng(0))
    assert y.shape == x.shape and (x == 1).all()  # the input is not changed in place
    for w in y[:, 0]:
        silent_frames = int((w == 0).all(axis=0).sum())
        silent_bands = int((w == 0).all(axis=1).sum())
        assert silent_frames <= 12 and silent_bands <= 6
        assert int((w == 0).sum()) == silent_frames * 72 + silent_bands * 108 \
            - silent_frames * silent_bands
    assert (y == 0).any(axis=(1, 2, 3)).mean() > 0.5


def test_renders_per_class_give_small_classes_more_renders():
    from engine.training.classify.audio_data import train_renders_per_class

    pieces = _toy_pieces(n_per_class=6)
    pieces = pieces + [p for p in pieces if p.label == "steps"] * 3  # steps: 24, leaps: 6
    where = ["train"] * len(pieces)
    labels = ("steps", "leaps")
    assert train_renders_per_class(pieces, where, labels, 2, 0, 12) == {"steps": 2, "leaps": 2}
    assert train_renders_per_class(pieces, where, labels, 1, 48, 12) == {"steps": 2, "leaps": 8}
    assert train_renders_per_class(pieces, where, labels, 1, 480, 12) == {"steps": 12,
                                                                          "leaps": 12}
    where[:4] = ["test"] * 4  # held-out pieces do not count
    assert train_renders_per_class(pieces, where, labels, 1, 40, 12)["steps"] == 2


def test_train_audio_cli_rejects_bad_options(capsys):
    pytest.importorskip("torch")
    from engine.training.classify.train_audio import main

    for argv, words in ((["--channels", "16,32"], "--channels"),
                        (["--renders-per-class", "-1"], "--renders-per-class"),
                        (["--window-seconds", "30"], "--window-seconds"),
                        (["--epoch-windows", "0"], "--epoch-windows")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        assert words in capsys.readouterr().err


def test_one_parser_for_every_classifier_entry_point(monkeypatch):
    """`popmusicnet train classifier` and the module entry points reach the trainer with the
    same arguments (the shipped Transformer's --balanced included)."""
    pytest.importorskip("torch")
    from engine.training.classify import train_audio, train_midi
    from studio.cli import main as cli_main

    calls = []
    monkeypatch.setattr(train_midi, "train_midi", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(train_audio, "train_audio", lambda *a, **k: calls.append((a, k)))
    midi = ["--arch", "transformer", "--epochs", "3", "--balanced", "--texture", "0.5"]
    audio = ["--channels", "8,8,16,16", "--spec-augment", "--epochs", "2", "--balanced"]
    assert cli_main(["train", "classifier", *midi]) == 0
    assert train_midi.main(midi) == 0
    assert cli_main(["train", "classifier", "--arch", "audio", *audio]) == 0
    assert train_audio.main(audio) == 0
    (a1, k1), (a2, k2), (_, k3), (_, k4) = calls
    assert a1 == a2 == ("transformer",)
    assert k1.pop("command").startswith("popmusicnet train classifier")
    assert k2.pop("command").startswith("python -m engine.training.classify.train_midi")
    for k in calls:  # both stage --out beside assets/models
        assert k[1].pop("out_dir").parent == Path("assets")
    assert k1 == k2 and k1["balanced"] and k1["epochs"] == 3 and k1["single_part"] == 0.25
    k3.pop("command"), k4.pop("command")
    assert k3 == k4 and k3["channels"] == [8, 8, 16, 16] and k3["spec_augment"]
    assert k3["single_part"] == 0.2 and k3["balanced"]


# -- tiny training round trips ------------------------------------------------------------------
def _toy_pieces(n_per_class: int = 8, seed: int = 0):
    """Two styles a model can tell apart: stepwise tunes in even notes vs leaping dotted tunes."""
    from engine.training.classify.corpus import Piece

    rng = np.random.default_rng(seed)
    pieces = []
    for i in range(n_per_class):
        steps = np.cumsum(rng.choice([-2, -1, 1, 2], size=96))
        p = np.clip(60 + steps, 48, 84).astype(np.int16)
        s = np.arange(96, dtype=float)
        pieces.append(Piece("steps", f"steps:{i}", "toy", s, s + 1, p))
        leaps = np.clip(60 + np.cumsum(rng.choice([-7, -5, 5, 7, 12, -12], size=96)), 40, 90)
        d = np.tile([1.5, 0.5], 48)
        s = np.concatenate([[0], np.cumsum(d)[:-1]])
        pieces.append(Piece("leaps", f"leaps:{i}", "toy", s, s + d, leaps.astype(np.int16)))
    return pieces


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Tiny MIDI CNN, MIDI Transformer and audio CNN trained on toy data into one models dir."""
    import io

    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)  # faster than 2 on a shared 2-core machine
    from engine.training.classify.train_audio import train_audio
    from engine.training.classify.train_midi import train_midi
    from engine.training.common import ProgressLog

    out = tmp_path_factory.mktemp("models")
    pieces = _toy_pieces()
    log = ProgressLog(stream=io.StringIO())
    results = {}
    for arch in ("cnn", "transformer"):
        results[arch] = train_midi(arch, out_dir=out, pieces=pieces, labels=("steps", "leaps"),
                                   epochs=8, lr=3e-3, batch=8, max_windows=8, device="cpu",
                                   progress=log, max_seconds=60)
    results["audio"] = train_audio(out_dir=out, pieces=pieces, labels=("steps", "leaps"),
                                   seconds=4.0, window_seconds=2.0, train_renders=1,
                                   renders_per_class=12, max_renders=2, balanced=True,
                                   epoch_windows=24, spec_augment=True, epochs=3, batch=16,
                                   device="cpu", progress=log, cache_dir=None, max_seconds=60)
    return out, results, log.stream.getvalue()


@pytest.mark.slow
def test_tiny_training_exports_cards_with_parity_and_metrics(tiny_models):
    from engine.models.card import ModelCard

    out, results, log = tiny_models
    for name in ("classifier-midi-cnn", "classifier-midi-transformer", "classifier-audio-cnn"):
        card = ModelCard.read(out / f"{name}.json")
        card.verify()
        assert card.representation["labels"] == ["steps", "leaps"]
        assert card.training["parity_max_abs_diff"] < 1e-3
        assert card.metrics["test"]["pieces"] == 4
        assert np.array(card.metrics["test"]["confusion"]).sum() == 4
    # the toy styles differ in contour and rhythm: the CNN must learn them
    assert results["cnn"]["test"]["balanced_accuracy"] >= 0.75
    assert all(json.loads(line)["event"] for line in log.splitlines())


@pytest.mark.slow
def test_runtime_classifies_song_track_with_tiny_model(tiny_models, monkeypatch):
    from engine.models.classifier import StyleClassifier
    from engine.music import Note, Song, Track

    out, _, _ = tiny_models
    monkeypatch.setenv("POPMUSICNET_MODELS", str(out))
    clf = StyleClassifier.load("classifier-midi-cnn")
    tpb = 480
    melody = [Note(i * tpb, (i + 1) * tpb, 60 + [0, 2, 4, 5, 4, 2] [i % 6]) for i in range(48)]
    drone = [Note(4 * i * tpb, 4 * (i + 1) * tpb, 36) for i in range(12)]
    song = Song([Track("bass", 32, notes=drone),
                 Track("tune", 0, notes=melody)], ticks_per_beat=tpb)
    result = clf.classify_track(song)
    assert [lab for lab, _ in result] and sum(p for _, p in result) == pytest.approx(1.0)
    assert result[0][0] == "steps"
    with pytest.raises(Exception, match="track 6 does not exist"):
        clf.classify_track(song, 5)
    whole = clf.classify_song(song)
    assert sum(p for _, p in whole) == pytest.approx(1.0)
    # the whole song is one pianoroll of both tracks; a track alone is its own notes
    assert clf.view == "score"
    seen = []
    monkeypatch.setattr(clf, "classify_windows", lambda w: seen.append(w) or [("steps", 1.0)])
    clf.classify_song(song)
    clf.classify_track(song, 1)
    clf.classify_track(song, 0)
    assert seen[0][:, 1].sum(axis=2).max() == 2  # bass drone under the tune
    assert seen[1][:, 1].sum(axis=2).max() == 1
    assert seen[0][:, 2].max() == 0 and seen[1][:, 2].min() == 1  # the one-track plane
    assert seen[2][:, 1].sum(axis=(0, 1)).astype(bool).sum() == 1  # the drone's one pitch
    with pytest.raises(TooShortError, match="no notes"):
        clf.classify_song(Song([Track("empty", 0)], ticks_per_beat=tpb))


@pytest.mark.slow
def test_audio_training_can_start_from_an_installed_model(tiny_models, tmp_path):
    """--init: from the checkpoint beside a card, or (none there) from its ONNX graph with the
    BatchNorms folded into the convolutions; either way the model starts as that classifier."""
    import shutil

    import torch

    from engine.errors import UserInputError
    from engine.models.card import ModelCard
    from engine.training.classify.datasets import onnx_predictor
    from engine.training.classify.models import SpectrogramCNN
    from engine.training.classify.train_audio import init_from_model

    out, _, _ = tiny_models
    card = ModelCard.read(out / "classifier-audio-cnn.json")
    rep, labels = card.representation, card.representation["labels"]
    frames, n_bands = int(rep["window_frames"]), int(rep["n_bands"])
    bare = tmp_path / "bare"  # the card and its graph, no checkpoint
    bare.mkdir()
    for f in ("classifier-audio-cnn.json", "classifier-audio-cnn.onnx"):
        shutil.copy(out / f, bare / f)
    x = np.random.default_rng(0).random((3, 1, n_bands, frames), dtype=np.float32)
    want = onnx_predictor(out / "classifier-audio-cnn.onnx")(x)
    for where in (out, bare):
        model = SpectrogramCNN(len(labels), n_bands, frames)
        init_from_model(model, where / "classifier-audio-cnn.json", labels, frames)
        got = model.eval()(torch.from_numpy(x)).detach().numpy()
        assert np.abs(got - want).max() < 1e-4
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with pytest.raises(UserInputError, match="labels"):
        init_from_model(SpectrogramCNN(3, n_bands, frames), bare / "classifier-audio-cnn.json",
                        ["a", "b", "c"], frames)


def _write_tiny_midi(path: Path, n_notes: int = 40) -> Path:
    from engine.midi_io import write_midi
    from engine.music import Note, Song, Track

    tpb = 480
    notes = [Note(i * tpb, (i + 1) * tpb, 60 + [0, 2, 4, 2] [i % 4]) for i in range(n_notes)]
    write_midi(Song([Track("tune", 0, notes=notes)], ticks_per_beat=tpb), path)
    return path


@pytest.mark.slow
def test_cli_classify_midi_and_wav(tiny_models, tmp_path, monkeypatch, capsys):
    import soundfile as sf

    from studio.cli import main

    out, _, _ = tiny_models
    monkeypatch.setenv("POPMUSICNET_MODELS", str(out))
    mid = _write_tiny_midi(tmp_path / "tune.mid")
    assert main(["classify", str(mid), "--top", "2", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["model"] == "classifier-midi-cnn" and len(got["labels"]) == 2
    assert got["input"] == "the whole file"
    assert main(["classify", str(mid), "--track", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input"] == "track 1"
    assert main(["classify", str(mid), "--model", "classifier-midi-transformer"]) == 0
    text = capsys.readouterr().out
    assert "steps" in text and "%" in text

    sr = 22050
    t = np.arange(4 * sr) / sr
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    wav = tmp_path / "tune.wav"
    sf.write(wav, tone.astype(np.float32), sr)
    assert main(["classify", str(wav), "--top", "1"]) == 0
    assert "classifier-audio-cnn" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_classify_bad_inputs_exit_2(tiny_models, tmp_path, monkeypatch, capsys):
    import soundfile as sf

    from studio.cli import main

    out, _, _ = tiny_models
    monkeypatch.setenv("POPMUSICNET_MODELS", str(out))
    short = _write_tiny_midi(tmp_path / "short.mid", n_notes=3)
    assert main(["classify", str(short)]) == 2
    err = capsys.readouterr().err
    assert "too short" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    blip = tmp_path / "blip.wav"
    sf.write(blip, np.zeros(2000, np.float32), 22050)
    assert main(["classify", str(blip)]) == 2
    assert "too short" in capsys.readouterr().err
    assert main(["classify", str(tmp_path / "missing.mid")]) == 2
    mid = _write_tiny_midi(tmp_path / "t.mid")
    assert main(["classify", str(mid), "--track", "9"]) == 2
    assert "track 9 does not exist" in capsys.readouterr().err
    assert main(["classify"]) == 2
    assert main(["classify", str(mid), "--model", "classifier-audio-cnn"]) == 2


# -- whole scores, single parts ----------------------------------------------------------------
def _chorale_like(n_beats: int = 48, seed: int = 0):
    """Four parts in quarter notes: (start, end, pitch, part) arrays sorted by start; another
    `seed` gives another tune."""
    rng = np.random.default_rng(seed)
    rows = []
    for part, base in enumerate((72, 64, 55, 43)):  # voices never meet: 4 pitches per step
        pattern = rng.permutation([0, 2, 4, 5, 4, 2, 0, -1]) if seed else \
            np.array([0, 2, 4, 5, 4, 2, 0, -1])
        line = base + pattern[(np.arange(n_beats) + part) % 8]
        rows += [(float(b), float(b + 1), int(p), part) for b, p in enumerate(line)]
    rows.sort()
    a = np.array(rows)
    return a[:, 0], a[:, 1], a[:, 2].astype(np.int16), a[:, 3].astype(np.int16)


def test_score_windows_keep_every_voice():
    from engine.models.classifier import score_windows
    from engine.training.classify.train_midi import SCORE_SPEC

    s, e, p, _ = _chorale_like()
    w = score_windows(s, e, p, SCORE_SPEC)
    assert w.shape[1:] == (2, SCORE_SPEC.window_steps, 72)
    # four voices in quarter notes: every onset step holds four onsets, each step four pitches
    onsets = w[0, 0].sum(axis=1)
    assert set(onsets[::2].tolist()) == {4.0} and set(onsets[1::2].tolist()) == {0.0}
    assert w[0, 1].sum(axis=1).max() == 4.0
    # the top voice view of the same notes is one line
    m = melody_windows(s, e, p, SCORE_SPEC)
    assert m[0, 1].sum(axis=1).max() == 1.0
    with pytest.raises(TooShortError, match="7 notes"):
        score_windows(s[:7], e[:7], p[:7], SCORE_SPEC)


def test_corpus_piece_from_a_styles_piece_keeps_parts_and_drops_drums():
    from engine.music import Note, Song, Track
    from engine.training.classify.corpus import from_styles_piece
    from engine.training.data.corpus import make_piece

    tpb = 480
    song = Song([Track("S", 52, notes=[Note(i * tpb, (i + 1) * tpb, 72 + i % 3) for i in range(8)]),
                 Track("B", 52, notes=[Note(i * tpb, (i + 2) * tpb, 48) for i in range(0, 8, 2)]),
                 Track("kit", 0, is_drum=True, notes=[Note(0, 100, 36)])], ticks_per_beat=tpb)
    piece = from_styles_piece(make_piece(song, id="x", group="g", label="bach"))
    assert piece.label == "bach" and piece.group == "g" and len(piece.pitch) == 12
    assert piece.parts() == [0, 1] and piece.top_part() == 0
    assert np.all(np.diff(piece.start) >= 0)
    s, e, p = piece.part_notes(1)
    assert p.tolist() == [48] * 4 and e.tolist() == [2.0, 4.0, 6.0, 8.0]
    assert piece.top_line()[2].tolist() == [72, 73, 74, 72, 73, 74, 72, 73]


def test_piece_sets_score_top_part_and_single_part_windows():
    from engine.training.classify.corpus import Piece
    from engine.training.classify.datasets import INPUT_TOP_PART, piece_sets
    from engine.training.classify.train_midi import SCORE_SPEC

    pieces = [Piece("a", f"a:{i}", "x", *_chorale_like(200, seed=i + 1)) for i in range(12)]
    base = piece_sets(pieces, ["a"], SCORE_SPEC, 4, 0)
    more = piece_sets(pieces, ["a"], SCORE_SPEC, 4, 0, single_part=0.5)
    assert [len(w) for w in base["train"].windows] == [4] * len(base["train"].windows)
    assert [len(w) for w in more["train"].windows] == [6] * len(more["train"].windows)
    # the extra windows hold one voice: at most one sounding pitch per step
    extra = more["train"].windows[0][4:].astype(np.float32) / 255
    assert extra[:, 1].sum(axis=2).max() == 1.0
    # the third plane says "one track": 1 on the single-part windows, 0 on the score's
    assert extra[:, 2].min() == 1.0 and more["train"].windows[0][:4, 2].max() == 0
    assert base["test"].windows[0][:, 1].max(axis=0).sum(axis=1).max() > 1
    top = piece_sets(pieces, ["a"], SCORE_SPEC, 4, 0, eval_input=INPUT_TOP_PART,
                     splits=("test",))
    assert not top["train"].windows and len(top["test"].windows) == len(base["test"].windows)
    assert top["test"].windows[0][:, 1].astype(int).sum(axis=2).max() == 255
    assert top["test"].windows[0][:, 2].min() == 255 and base["test"].windows[0][:, 2].max() == 0


def test_audio_events_of_a_score_and_of_one_part():
    from engine.training.classify.audio_data import PROGRAMS, render_rng, score_events
    from engine.training.classify.corpus import Piece

    s, e, p, part = _chorale_like()
    piece = Piece("a", "a:0", "x", s, e, p, part)
    events, programs = score_events(piece, render_rng(0, piece, 0), 30.0, random_start=False)
    assert len(events) == len(p) and len(programs) == 4 and set(programs) <= set(PROGRAMS)
    assert {ev[4] for ev in events} == {0, 1, 2, 3}
    again, _ = score_events(piece, render_rng(0, piece, 0), 30.0, random_start=False)
    assert again == events  # a render depends on (seed, piece, render) only
    one, programs = score_events(piece, render_rng(0, piece, 1), 30.0, False, part=3)
    assert len(one) == 48 and len(programs) == 1 and {ev[4] for ev in one} == {0}


def test_audio_note_offs_follow_their_note_ons_late_in_a_render():
    """Each note is shortened by 3% of its own length, not its off time scaled by 0.97 (that
    put the note-off of a short note far into a render before its note-on: it rang on)."""
    from engine.training.classify.audio_data import render_rng, score_events
    from engine.training.classify.corpus import Piece

    s, e, p, part = _chorale_like(400)
    piece = Piece("a", "a:0", "x", s, e, p, part)
    events, _ = score_events(piece, render_rng(0, piece, 0), 30.0, random_start=False)
    on, off = np.array([ev[0] for ev in events]), np.array([ev[1] for ev in events])
    assert on.max() > 60.0 and (off > on).all()
    assert np.ptp(off - on) < 1e-9  # quarter notes all: one length wherever they are


def test_audio_eval_renders_run_to_the_end_of_the_piece_up_to_eval_seconds():
    pytest.importorskip("fluidsynth")
    from engine.training.classify.audio_data import audio_sets

    pieces = _toy_pieces()
    common = dict(seconds=4.0, window_frames=43, hop_frames=21, train_renders=1,
                  splits=("test",), cache_dir=None)
    short = audio_sets(pieces, ("steps", "leaps"), **common)["test"]
    whole = audio_sets(pieces, ("steps", "leaps"), eval_seconds=60.0, **common)["test"]
    capped = audio_sets(pieces, ("steps", "leaps"), eval_seconds=8.0, **common)["test"]
    assert all(len(w) == 3 for w in short.windows)  # 4 s: 3 windows of 2 s, hop 1 s
    assert all(len(c) == 7 for c in capped.windows)  # 8 s
    assert all(7 < len(w) < 59 for w in whole.windows)  # to the end of the music, not 60 s
    for a, b in zip(short.windows, whole.windows):  # the same audio at the start
        assert np.abs(a[:2].astype(int) - b[:2].astype(int)).mean() < 40


def test_transformer_reads_the_one_track_plane_as_one_vector():
    """The constant plane must not go through the token embedding (its offset swamped the
    notes: every single-track window got one class); it adds one learned vector instead."""
    torch = pytest.importorskip("torch")
    from engine.training.classify.models import MelodyTransformer

    torch.manual_seed(0)
    m = MelodyTransformer(3, 16, 24, d_model=16, layers=1, heads=2, ff=16,
                          in_planes=3).eval()
    assert m.embed.in_features == 2 * 24
    x = (torch.rand(2, 3, 16, 24) > 0.8).float()
    x[:, 2] = 0
    with torch.no_grad():
        m.track.copy_(torch.randn(1, 1, 16))  # (a constant vector would vanish in LayerNorm)
        score = m(x)
        x[:, 2] = 1
        one = m(x)
        m.track.zero_()
        same = m(x)
    assert not torch.allclose(score, one) and torch.allclose(score, same)


@pytest.mark.slow
def test_classify_says_what_it_judged_and_unsure_below_the_cards_threshold(
        tiny_models, tmp_path, monkeypatch, capsys):
    import shutil

    from engine.models.card import ModelCard
    from engine.models.classifier import Judgement
    from studio.cli import main

    out, _, _ = tiny_models
    card = ModelCard.read(out / "classifier-midi-cnn.json")
    # training chose the threshold on valid and wrote it into the card
    assert 0 < card.representation["unsure_below"] < 1
    assert card.training["unsure"]["valid_pieces"] > 0
    models = tmp_path / "models"
    models.mkdir()
    for f in out.glob("classifier-midi-cnn.*"):
        shutil.copy(f, models / f.name)
    card = ModelCard.read(models / "classifier-midi-cnn.json")
    card.representation["unsure_below"] = 0.999  # no answer is that sure
    card.write(card.path)
    monkeypatch.setenv("POPMUSICNET_MODELS", str(models))
    mid = _write_tiny_midi(tmp_path / "tune.mid")
    assert main(["classify", str(mid), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["verdict"] == "unsure" and got["unsure_below"] == 0.999
    assert got["judged"] == "the whole file: 1 pitched track (tune)"
    assert main(["classify", str(mid), "--track", "1"]) == 0
    text = capsys.readouterr().out
    assert "judged track 1 (tune) alone" in text and "unsure" in text
    j = Judgement("m", "cpu", "the whole file", "x", [("a", 0.6), ("b", 0.4)], 0.5)
    assert j.verdict == "a" and not j.unsure
    assert Judgement("m", "cpu", "x", "x", [("a", 0.4), ("b", 0.3)], 0.5).verdict == "unsure"
    assert Judgement("m", "cpu", "x", "x", [("a", 0.4)], None).verdict == "a"
