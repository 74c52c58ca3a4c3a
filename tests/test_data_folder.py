"""The folder-of-MIDI loader, on files the test writes."""

from __future__ import annotations

import logging

import pytest

from engine.errors import UserInputError
from engine.midi_io import write_midi
from engine.music import MeterChange, Note, Song, Track
from engine.training.data import corpus
from engine.training.data.folder import choose_melody, find_midi_files, load_folder, read_folder


def _song(high: int = 72, low: int = 48, drums: bool = True, meter=(4, 4)) -> Song:
    mel = [Note(i * 480, (i + 1) * 480, high + (i % 3)) for i in range(8)]
    acc = [Note(i * 960, (i + 1) * 960, low + (i % 2) * 4) for i in range(4)]
    tracks = [Track("Bass", program=32, notes=acc), Track("Lead", program=73, notes=mel),
              Track("Pad", program=48, notes=[])]
    if drums:
        tracks.append(Track("Drums", is_drum=True, notes=[Note(0, 60, 36), Note(960, 1020, 38)]))
    return Song(tracks=tracks, meters=[MeterChange(0, *meter)])


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "songs"
    (root / "sub" / "deeper").mkdir(parents=True)
    write_midi(_song(), root / "a.mid")
    write_midi(_song(meter=(3, 4)), root / "sub" / "b.MIDI")
    write_midi(_song(high=50, low=70, drums=False), root / "sub" / "deeper" / "c.midi")
    write_midi(Song(tracks=[Track("Solo", notes=[Note(0, 480, 60)])]), root / "solo.mid")
    (root / "broken.mid").write_bytes(b"this is not a MIDI file")
    (root / "notes.txt").write_text("ignored")
    return root


def test_finds_midi_recursively(folder):
    names = [p.name for p in find_midi_files(folder)]
    assert names == ["a.mid", "broken.mid", "solo.mid", "b.MIDI", "c.midi"]


def test_roles_by_pitch_and_skips_bad_files(folder, caplog):
    with caplog.at_level(logging.WARNING):
        pieces = load_folder(folder)
    ids = sorted(p.id for p in pieces)
    assert ids == ["a.mid", "sub/b.MIDI", "sub/deeper/c.midi"]
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "broken.mid" in warning and "solo.mid" in warning
    by_id = {p.id: p for p in pieces}
    a = by_id["a.mid"].song
    assert [t.name for t in a.tracks] == ["Lead", "Bass", "Drums"]  # empty Pad dropped
    assert [t.role for t in a.tracks] == ["melody", "accompaniment", "accompaniment"]
    assert a.tracks[2].is_drum
    c = by_id["sub/deeper/c.midi"].song  # the "Bass" track is the higher one here
    assert c.tracks[0].name == "Bass" and c.tracks[0].role == "melody"
    assert by_id["sub/b.MIDI"].meter == "3/4"


def test_melody_by_name_and_index(folder):
    pieces = load_folder(folder, melody_name="bass")
    for p in pieces:
        assert p.song.tracks[0].name == "Bass" and p.song.tracks[0].role == "melody"
    data = read_folder(folder, melody_track=1)
    assert all(p.song.tracks[0].name == "Lead" for p in data.pieces)
    reasons = dict(data.skipped)
    assert "no track 1" in reasons["solo.mid"]
    song = _song()
    assert choose_melody(song, melody_name="LEA") == 1  # prefix, case-insensitive
    with pytest.raises(ValueError, match="named"):
        choose_melody(song, melody_name="violin")
    with pytest.raises(ValueError, match="no notes"):
        choose_melody(song, melody_track=2)
    with pytest.raises(ValueError, match="drum"):
        choose_melody(song, melody_track=3)
    with pytest.raises(ValueError, match="named"):
        choose_melody(song, melody_name="drums")


def test_split_by_relative_path(folder):
    pieces = load_folder(folder)
    splits = {p.id: p.split for p in pieces}
    # three usable files: the quota fallback puts one in each split
    assert sorted(splits.values()) == ["test", "train", "valid"]
    assert splits == {p.id: p.split for p in load_folder(folder)}  # deterministic


def test_md5_split_for_larger_folders(tmp_path):
    for i in range(30):
        write_midi(_song(high=70 + i % 5), tmp_path / f"song{i:02d}.mid")
    pieces = load_folder(tmp_path)
    assert len(pieces) == 30
    for p in pieces:
        assert p.group == p.id and p.split == corpus.split_of(p.id)


def test_errors(tmp_path):
    with pytest.raises(UserInputError, match="not a folder"):
        load_folder(tmp_path / "missing")
    with pytest.raises(UserInputError, match="no .mid"):
        load_folder(tmp_path)
    (tmp_path / "x.mid").write_bytes(b"junk")
    with pytest.raises(UserInputError, match="none of 1 MIDI files"):
        load_folder(tmp_path)
