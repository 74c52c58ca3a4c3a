"""The LPD-5 loader on npz files the test writes with pypianoroll (no LPD data exists offline)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from engine.errors import UserInputError
from engine.music import MeterChange, Note

pypianoroll = pytest.importorskip("pypianoroll")

from engine.training.data.lpd5 import (  # noqa: E402
    LPD5_TRACKS,
    load_lpd5,
    read_lpd5,
    roll_to_notes,
)

RES = 24


def _multitrack(n_bars: int = 4, pickup_beats: int = 1):
    n = (pickup_beats + 4 * n_bars) * RES
    piano = np.zeros((n, 128), np.uint8)
    piano[0:RES, 67] = 90  # the pickup: one beat of G4
    piano[RES:3 * RES, 72] = 100  # C5 for two beats from the first downbeat
    piano[3 * RES:3 * RES + 12, 74] = 70  # an eighth note
    bass = np.zeros((n, 128), np.uint8)
    bass[RES:5 * RES, 36] = 80
    drums = np.zeros((n, 128), bool)
    for beat in range(pickup_beats, n // RES):
        drums[beat * RES:beat * RES + 2, 42] = True
    guitar = np.zeros((n, 128), np.uint8)
    downbeat = np.zeros(n, bool)
    downbeat[pickup_beats * RES::4 * RES] = True
    tempo = np.full(n, 100.0)
    tempo[(pickup_beats + 8) * RES:] = 140.0
    tracks = [
        pypianoroll.BinaryTrack(name="Drums", program=0, is_drum=True, pianoroll=drums),
        pypianoroll.StandardTrack(name="Piano", program=0, is_drum=False, pianoroll=piano),
        pypianoroll.StandardTrack(name="Guitar", program=24, is_drum=False, pianoroll=guitar),
        pypianoroll.StandardTrack(name="Bass", program=32, is_drum=False, pianoroll=bass),
        pypianoroll.StandardTrack(name="Strings", program=48, is_drum=False,
                                  pianoroll=np.zeros((n, 128), np.uint8)),
    ]
    return pypianoroll.Multitrack(name="test song", resolution=RES, tempo=tempo,
                                  downbeat=downbeat, tracks=tracks)


def test_read_lpd5_file(tmp_path):
    path = tmp_path / "song.npz"
    pypianoroll.save(path, _multitrack())
    song = read_lpd5(path)
    assert [t.name for t in song.tracks] == list(LPD5_TRACKS)
    assert [t.role for t in song.tracks] == ["accompaniment", "melody", "accompaniment",
                                             "accompaniment", "accompaniment"]
    assert song.tracks[0].is_drum and not song.tracks[1].is_drum
    assert [t.program for t in song.tracks] == [0, 0, 24, 32, 48]
    assert song.ticks_per_beat == 480
    piano = song.tracks[1].notes
    assert piano == [Note(0, 480, 67, 90), Note(480, 1440, 72, 100), Note(1440, 1680, 74, 70)]
    assert song.tracks[3].notes == [Note(480, 2400, 36, 80)]
    assert all(n.velocity == 100 and n.duration == 40 for n in song.tracks[0].notes)
    assert song.meters[:2] == [MeterChange(0, 1, 4), MeterChange(480, 4, 4)]
    assert song.pickup_ticks == 480
    assert [(t.tick, t.bpm) for t in song.tempos] == [(0, 100.0), (9 * 480, 140.0)]
    # round trip: the notes back on pypianoroll's grid give the same roll
    again = np.zeros((17 * RES, 128), np.uint8)
    for n in piano:
        again[n.start // 20:n.end // 20, n.pitch] = n.velocity
    assert np.array_equal(again, _multitrack().tracks[1].pianoroll)


def _write_old_style(path, n_steps: int) -> None:
    """An LPD file as pypianoroll 0.x wrote it: `beat_resolution`, empty tracks (0, 128)."""
    arrays = {}
    info = {"beat_resolution": RES, "name": "old"}
    piano = np.zeros((n_steps, 128), bool)
    piano[0:RES * 2, 60] = True
    for i, name in enumerate(LPD5_TRACKS):
        roll = piano if name == "Piano" else np.zeros((0, 128), bool)
        from scipy.sparse import csc_matrix

        m = csc_matrix(roll)
        arrays.update({f"pianoroll_{i}_csc_data": m.data, f"pianoroll_{i}_csc_indices": m.indices,
                       f"pianoroll_{i}_csc_indptr": m.indptr,
                       f"pianoroll_{i}_csc_shape": np.array(m.shape)})
        info[str(i)] = {"program": 0, "is_drum": name == "Drums", "name": name}
    arrays["downbeat"] = np.zeros(n_steps, bool)
    arrays["downbeat"][::3 * RES] = True  # 3/4
    np.savez_compressed(path, **arrays)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("info.json", json.dumps(info))


def test_old_format_and_empty_tracks(tmp_path):
    path = tmp_path / "old.npz"
    _write_old_style(path, 6 * RES)
    song = read_lpd5(path)
    assert song.meters == [MeterChange(0, 3, 4)]
    assert song.tracks[1].notes == [Note(0, 960, 60, 100)]
    assert all(not t.notes for i, t in enumerate(song.tracks) if i != 1)


def test_load_folder_groups_by_msd_id(tmp_path):
    root = tmp_path / "lpd_5_cleansed"
    for sub, name in [("A/B/C/TRABCDE1234567890A", "v1.npz"), ("A/B/C/TRABCDE1234567890A", "v2.npz"),
                      ("X/Y/Z/TRXYZAB1234567890B", "v1.npz")]:
        (root / sub).mkdir(parents=True, exist_ok=True)
        pypianoroll.save(root / sub / name, _multitrack(n_bars=2))
    (root / "broken.npz").write_bytes(b"not a zip")
    cache = tmp_path / "cache"
    pieces = load_lpd5(root, cache_dir=cache)
    assert len(pieces) == 3
    groups = {p.id: p.group for p in pieces}
    assert groups["A/B/C/TRABCDE1234567890A/v1.npz"] == "TRABCDE1234567890A"
    assert len({p.split for p in pieces if p.group == "TRABCDE1234567890A"}) == 1
    assert load_lpd5(root, limit=1, use_cache=False)[0].id == pieces[0].id
    with pytest.raises(UserInputError):
        load_lpd5(root / "broken.npz", cache_dir=cache)
    with pytest.raises(UserInputError):
        load_lpd5(tmp_path / "nothing", cache_dir=cache)


def test_lpd5_cache(tmp_path, monkeypatch):
    from engine.training.data import lpd5

    root = tmp_path / "lpd"
    root.mkdir()
    pypianoroll.save(root / "a.npz", _multitrack(n_bars=2))
    cache = tmp_path / "cache"
    first = load_lpd5(root, cache_dir=cache)
    assert list(cache.glob("lpd5-*.npz"))
    real = lpd5.read_lpd5
    monkeypatch.setattr(lpd5, "read_lpd5", lambda f: pytest.fail("read despite the cache"))
    again = load_lpd5(root, cache_dir=cache)
    assert [p.song for p in again] == [p.song for p in first]
    pypianoroll.save(root / "b.npz", _multitrack(n_bars=3))  # a new file: the cache is stale
    monkeypatch.setattr(lpd5, "read_lpd5", real)
    assert len(load_lpd5(root, cache_dir=cache)) == 2


def test_roll_to_notes_runs():
    roll = np.zeros((10, 128), np.uint8)
    roll[2:5, 60] = 50
    roll[7:10, 60] = 60  # runs to the end
    roll[0:1, 61] = 1
    assert roll_to_notes(roll, 20) == [Note(0, 20, 61, 1), Note(40, 100, 60, 50),
                                       Note(140, 200, 60, 60)]
    assert roll_to_notes(np.zeros((0, 128), bool), 20) == []
