"""`popmusicnet eval classifiers` over several installed models (no torch: hand-made ONNX graphs),
and the audio classifier's renders (soundfonts, program sets)."""

from __future__ import annotations

import json

import numpy as np
import pytest

LABELS = ("bach", "irish")


def _constant_classifier(path, logits) -> None:
    """An ONNX classifier that answers `logits` whatever window it is given."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "a", "b", "c"])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(logits)])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Unsqueeze", ["s"], ["s1"], axes=[1]),
             helper.make_node("Mul", ["s1", "zero"], ["z"]),
             helper.make_node("Add", ["z", "bias"], ["logits"])]
    inits = [helper.make_tensor("zero", TensorProto.FLOAT, [1, 1], [0.0]),
             helper.make_tensor("bias", TensorProto.FLOAT, [1, len(logits)],
                                [float(v) for v in logits])]
    model = helper.make_model(helper.make_graph(nodes, "constant", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.save(model, str(path))


def _models_dir(tmp_path):
    """Two MIDI classifiers: one always says bach, the other always irish."""
    from engine.models.card import ModelCard, sha256_file
    from engine.models.classifier import KIND_MIDI
    from engine.models.runtime import MODELS_DIR

    bundled = json.loads((MODELS_DIR / "classifier-midi-cnn.json").read_text())
    rep = dict(bundled["representation"], labels=list(LABELS))
    out = tmp_path / "models"
    out.mkdir()
    for name, logits in (("clf-says-bach", [5.0, 0.0]), ("clf-says-irish", [0.0, 5.0])):
        onnx_path = out / f"{name}.onnx"
        _constant_classifier(onnx_path, logits)
        ModelCard(name=name, kind=KIND_MIDI, version="1", files={"classifier": onnx_path.name},
                  sha256={"classifier": sha256_file(onnx_path)}, representation=rep,
                  training={"seed": 0}, metrics={}).write(out / f"{name}.json")
    return out


def _corpus(tmp_path):
    from engine.training.classify import corpus

    rng = np.random.default_rng(0)
    pieces = []
    for label in LABELS:
        for i in range(8):
            p = np.clip(60 + np.cumsum(rng.choice([-2, -1, 1, 2], size=96)), 48, 84)
            s = np.arange(96, dtype=float)
            pieces.append(corpus.Piece(label, f"{label}:{i}", "toy", s, s + 1,
                                       p.astype(np.int16)))
    return corpus.save(pieces, tmp_path / "scores.npz")


def _confusion_after(lines: list[str], header: str) -> dict[str, list[int]]:
    """The confusion table printed after the line that starts with `header`."""
    i = next(k for k, line in enumerate(lines) if line.startswith(header))
    table = lines[i + 1].splitlines()
    rows = {}
    for row in table[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        rows[cells[0]] = [int(c) for c in cells[1:-1]]
    return rows


def test_eval_classifiers_measures_every_model_with_its_own_graph(tmp_path, monkeypatch):
    from engine.training.classify import evaluate

    monkeypatch.setenv("POPMUSICNET_MODELS", str(_models_dir(tmp_path)))
    monkeypatch.setattr(evaluate, "notated_chord_tunes", lambda out=print: [])
    lines: list[str] = []
    rc = evaluate.run(corpus_path=_corpus(tmp_path), names=["clf-says-bach", "clf-says-irish"],
                      write=False, out=lines.append, audio_ood=False, cache_dir=None)
    assert rc == 0
    says_bach = _confusion_after(lines, "clf-says-bach [score]")
    says_irish = _confusion_after(lines, "clf-says-irish [score]")
    n_bach, n_irish = sum(says_bach["bach"]), sum(says_bach["irish"])
    assert n_bach > 0 and n_irish > 0
    # each model's table is its own answers: all "bach" for one, all "irish" for the other
    assert says_bach == {"bach": [n_bach, 0], "irish": [n_irish, 0]}
    assert says_irish == {"bach": [0, n_bach], "irish": [0, n_irish]}
    # and every input of each model was measured (whole score, top part, texture sets)
    for name in ("clf-says-bach", "clf-says-irish"):
        measured = [line for line in lines if line.startswith(f"{name} [")]
        assert len(measured) == 2 + len(evaluate.OOD_INPUTS)


def test_other_gm_programs_are_melodic_and_never_the_training_ones():
    from engine.training.classify.audio_data import OTHER_PROGRAMS, PROGRAMS, WIDE_PROGRAMS

    assert set(OTHER_PROGRAMS).isdisjoint(PROGRAMS)
    assert set(OTHER_PROGRAMS) | set(PROGRAMS) == set(WIDE_PROGRAMS)
    assert max(WIDE_PROGRAMS) == 111  # no percussive programs or sound effects


def test_score_events_draw_programs_from_the_given_set():
    from engine.training.classify.audio_data import OTHER_PROGRAMS, render_rng, score_events
    from engine.training.classify.corpus import Piece

    s = np.arange(32, dtype=float)
    piece = Piece("bach", "g", "toy", np.tile(s, 2), np.tile(s + 1, 2),
                  np.r_[np.full(32, 72), np.full(32, 48)].astype(np.int16),
                  np.r_[np.zeros(32), np.ones(32)].astype(np.int16))
    for r in range(20):
        _, programs = score_events(piece, render_rng(0, piece, r), 10.0, False,
                                   programs_from=OTHER_PROGRAMS)
        assert len(programs) == 2 and set(programs) <= set(OTHER_PROGRAMS)


def test_another_soundfont_is_a_different_file(tmp_path, monkeypatch):
    from engine.synth import soundfont as sf

    def fake_sf2(path, size=64):
        path.write_bytes(b"RIFF" + (size - 8).to_bytes(4, "little") + b"sfbk"
                         + b"\0" * (size - 12))
        return path

    folder = tmp_path / "sf2"
    folder.mkdir()
    a = fake_sf2(folder / "FluidR3_GM.sf2")
    (folder / "default-GM.sf2").symlink_to(a)  # the same file under another name
    monkeypatch.setattr(sf, "SYSTEM_DIRS", [folder])
    monkeypatch.setattr(sf, "bundled_soundfont", lambda: None)
    assert sf.another_soundfont(a) is None
    assert sf.another_soundfont("FluidR3_GM.sf2") is None
    b = fake_sf2(folder / "TimGM6mb.sf2")
    assert sf.another_soundfont(a) == b
    assert sf.another_soundfont(folder / "default-GM.sf2") == b
    assert sf.another_soundfont(b) == a
    assert sf.soundfont_named("TimGM6mb.sf2") == b


def test_audio_test_renders_through_another_soundfont_need_one(tmp_path, monkeypatch):
    from engine.training.classify import audio_data

    monkeypatch.setattr(audio_data, "another_soundfont", lambda than: None)
    with pytest.raises(ValueError, match="only one soundfont"):
        audio_data.audio_sets([], ["bach"], eval_render=audio_data.RENDER_OTHER_SOUNDFONT,
                              splits=("test",), soundfont=tmp_path / "x.sf2")
