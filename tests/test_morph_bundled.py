"""The bundled morph model (assets/models/morph-lstmvae): `popmusicnet morph A A --alpha 0`
gives A back on a tune made here (not in its training data)."""

from __future__ import annotations

import numpy as np

from engine.models import melody_tokens as mt
from engine.models.runtime import MODELS_DIR
from engine.music import MeterChange, Note, Song, TempoChange, Track

CARD = MODELS_DIR / "morph-lstmvae.json"


def tune() -> Song:
    """Four bars of a folk-like tune in D major: quarters, eighths, a dotted rhythm and a
    repeated note."""
    tpb = 480
    # (start in eighths, length in eighths, pitch)
    line = [(0, 2, 66), (2, 1, 69), (3, 1, 69), (4, 2, 71), (6, 2, 69),
            (8, 3, 74), (11, 1, 73), (12, 2, 71), (14, 2, 69),
            (16, 1, 67), (17, 1, 66), (18, 2, 64), (20, 2, 62), (22, 2, 64),
            (24, 4, 66), (28, 4, 62)]
    notes = [Note(s * tpb // 2, (s + n) * tpb // 2, p, 90) for s, n, p in line]
    return Song(tracks=[Track("tune", 73, role="melody", notes=notes)], ticks_per_beat=tpb,
                tempos=[TempoChange(0, 110.0)], meters=[MeterChange(0, 4, 4)], title="tune")


def onset_f1(a: list[Note], b: list[Note]) -> float:
    sa, sb = {(n.start, n.pitch) for n in a}, {(n.start, n.pitch) for n in b}
    return 2 * len(sa & sb) / (len(sa) + len(sb))


def test_morph_a_a_at_alpha_0_returns_a(tmp_path, capsys):
    from engine.midi_io import read_midi, write_midi
    from studio.cli import main

    song = tune()
    path = tmp_path / "a.mid"
    write_midi(song, path)
    out = tmp_path / "out.mid"
    assert main(["morph", str(path), str(path), "--alpha", "0", "--model", str(CARD),
                 "-o", str(out)]) == 0
    got = read_midi(out).tracks[0].notes
    want = [n for n in song.tracks[0].notes if n.start < 2 * 1920]  # its first two bars
    assert len(got) > 1
    assert onset_f1(got, want) >= 0.8, (got, want)


def test_the_bundled_model_reads_and_writes_melody_tokens():
    from engine.models.morph import Morpher

    m = Morpher.load(str(CARD), providers="cpu")
    assert m.vocab == mt.vocab_size(m.spec.n_pitches) and m.window_steps == 32
    wins, shift = m.song_windows(tune())
    assert wins.shape == (2, 32)
    dec = m.decode(m.encode_tokens(wins))
    assert np.mean(dec == mt.canonical(wins, m.spec.n_pitches)) >= 0.8
    assert set(m.styles) == {"bach", "chinese_folk", "german_folk", "irish"}
