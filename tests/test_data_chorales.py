"""Chorale parsing (a handful of real corpus files), the cache, the splits, key augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.music import MeterChange, Note, Song, Track, estimate_key
from engine.training.data import augment, corpus
from engine.training.data.corpus import split, split_counts, split_of

pytest.importorskip("music21")

from engine.training.data import chorales  # noqa: E402

FEW = ["bach/bwv1.6.mxl", "bach/bwv11.6.mxl", "bach/bwv112.5.mxl", "bach/bwv112.5-sc.mxl",
       "bach/bwv846.mxl"]


@pytest.fixture(scope="module")
def few(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return cache, chorales.load_chorales(cache, paths=FEW)


def test_satb_extraction(few):
    _, pieces = few
    ids = [p.id for p in pieces]
    assert "bach/bwv846.mxl" not in ids  # a keyboard prelude, no S/A/T/B
    assert "bach/bwv112.5-sc.mxl" in ids  # instruments added: the four voices are taken
    for p in pieces:
        song = p.song
        assert [t.name for t in song.tracks] == list(chorales.VOICES)
        assert [t.role for t in song.tracks] == ["melody", "accompaniment", "accompaniment",
                                                  "accompaniment"]
        assert all(t.program == 52 and t.notes for t in song.tracks)
        means = [np.mean([n.pitch for n in t.notes]) for t in song.tracks]
        assert means == sorted(means, reverse=True)  # soprano above alto above tenor above bass
        assert song.melody_track() is song.tracks[0]


def test_pickup_and_meters(few):
    _, pieces = few
    by_id = {p.id: p for p in pieces}
    p = by_id["bach/bwv1.6.mxl"]
    song = p.song
    assert song.meters[:2] == [MeterChange(0, 1, 4), MeterChange(480, 4, 4)]
    assert song.pickup_ticks == 480 and p.meter == "4/4" and p.meta["pickup_ticks"] == 480
    assert min(n.start for n in song.tracks[0].notes) == 0
    # every later bar line falls on a bar start: notes of the first full bar start at >= 480
    assert song.bar_starts()[:3] == [0, 480, 480 + 1920]
    assert by_id["bach/bwv11.6.mxl"].meter == "3/4"
    key = by_id["bach/bwv1.6.mxl"].key
    assert str(key) == "F major"  # "Wie schön leuchtet der Morgenstern" in F


def test_cache_roundtrip_and_rebuild(few, monkeypatch):
    cache, pieces = few
    again = chorales.load_chorales(cache, paths=FEW)
    assert [p.id for p in again] == [p.id for p in pieces]
    for a, b in zip(again, pieces):
        assert a.song == b.song and a.group == b.group and a.split == b.split
        assert a.key == b.key or (a.key.tonic, a.key.mode) == (b.key.tonic, b.key.mode)
    manifest = json.loads((cache / "chorales.json").read_text())
    assert manifest["parser_version"] == chorales.PARSER_VERSION
    entry = manifest["pieces"][0]
    assert {"id", "group", "split", "key", "meter", "meta"} <= set(entry)
    assert "pitch_ranges" in entry["meta"] and "n_bars" in entry["meta"]

    calls = []
    real = chorales.build_chorales
    monkeypatch.setattr(chorales, "build_chorales", lambda paths: calls.append(1) or real(paths))
    chorales.load_chorales(cache, paths=FEW)
    assert calls == []  # current cache: no parsing
    monkeypatch.setattr(chorales, "PARSER_VERSION", chorales.PARSER_VERSION + 100)
    chorales.load_chorales(cache, paths=FEW[:2])
    assert calls == [1]  # parser version changed: rebuilt


def test_groups_never_straddle_splits(few):
    _, pieces = few
    by_group: dict[str, set[str]] = {}
    for p in pieces:
        by_group.setdefault(p.group, set()).add(p.split)
    assert all(len(s) == 1 for s in by_group.values())
    # the two versions of BWV 112.5 share a tune, hence a group
    groups = {p.id: p.group for p in pieces}
    assert groups["bach/bwv112.5.mxl"] == groups["bach/bwv112.5-sc.mxl"]
    assert sum(split_counts(pieces).values()) == len(pieces)
    assert all(p in pieces for name in corpus.SPLITS for p in split(pieces, name))
    with pytest.raises(ValueError):
        split(pieces, "training")


def test_split_is_deterministic_md5():
    import hashlib

    for g in ["tune:jesu meine freude", "melody:1,2,3", "x"]:
        bucket = int(hashlib.md5(g.encode()).hexdigest(), 16) % 100
        expected = "train" if bucket < 60 else "valid" if bucket < 80 else "test"
        assert split_of(g) == expected
    shares = np.array([corpus.group_bucket(f"g{i}") for i in range(3000)])
    assert 0.55 < np.mean(shares < 60) < 0.65


def _melody_song(pitches, offset=0, pickup=False):
    tpb = 480
    start = 480 if pickup else 0
    notes = [Note(start + i * tpb, start + (i + 1) * tpb, p + offset) for i, p in enumerate(pitches)]
    meters = [MeterChange(0, 1, 4), MeterChange(480, 4, 4)] if pickup else [MeterChange(0, 4, 4)]
    tracks = [Track("soprano", notes=notes)] + [Track(v, notes=[Note(0, 480, 40)])
                                                 for v in ("alto", "tenor", "bass")]
    return Song(tracks=tracks, meters=meters)


def test_group_keys_join_titles_and_tunes():
    tune = [67, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60]
    other = [60, 64, 67, 72, 71, 69, 67, 65, 64, 62, 60, 59]
    songs = [_melody_song(tune), _melody_song(tune, offset=-3),  # same tune, other key
             _melody_song(other), _melody_song(other[::-1]), _melody_song([60, 62])]
    paths = ["bwv1.mxl", "bwv2.mxl", "bwv3.mxl", "bwv4.mxl", "bwv5.mxl"]
    titles = {"1": "a", "3": "b", "4": "b"}
    keys = chorales.group_keys(paths, songs, titles)
    assert keys[0] == keys[1] == "tune:a"  # joined by melody, named by title
    assert keys[2] == keys[3] == "tune:b"  # joined by title
    assert keys[4] == "piece:bwv5.mxl"  # too short for a signature, no title
    sig = chorales.melody_signature(songs[0])
    assert sig == chorales.melody_signature(songs[1])  # transposition-invariant
    # repeated pitches merge: the signature starts with the step up, not a 0
    assert sig.split(",")[0] == "2"


def test_ql_to_meter():
    from engine.training.data.m21 import ql_to_meter

    assert ql_to_meter(1.0) == (1, 4)
    assert ql_to_meter(1.5) == (3, 8)
    assert ql_to_meter(0.25) == (1, 16)
    assert ql_to_meter(3.0) == (3, 4)
    assert ql_to_meter(0) is None


def _part(lengths):
    from music21 import meter, note, stream

    part = stream.Part()
    for i, ql in enumerate(lengths):
        m = stream.Measure(number=i)
        if i == 0:
            m.timeSignature = meter.TimeSignature("4/4")
        m.append(note.Note("C4", quarterLength=ql))
        part.append(m)
    return part


@pytest.mark.parametrize("lengths,starts,pickup", [
    # pickup, full, a bar split around a repeat (3 + 1 beats: one bar as heard), full
    ([1.0, 4.0, 3.0, 1.0, 4.0], [0, 480, 2400, 4320], 480),
    # a lone short bar: its own meter, then 4/4 again
    ([1.0, 4.0, 2.0, 4.0, 4.0], [0, 480, 2400, 3360, 5280], 480),
    # no pickup; a short last bar changes nothing
    ([4.0, 4.0, 3.0], [0, 1920, 3840], 0),
])
def test_part_meters_short_measures(lengths, starts, pickup):
    from engine.training.data.m21 import part_meters, part_notes

    part = _part(lengths)
    song = Song(tracks=[Track(notes=part_notes(part))], meters=part_meters(part))
    assert song.bar_starts() == starts
    assert song.pickup_ticks == pickup


# -- augmentation ------------------------------------------------------------------------------
def _scale_song(tonic: int, minor: bool = False) -> Song:
    steps = [0, 2, 3, 5, 7, 8, 11, 12] if minor else [0, 2, 4, 5, 7, 9, 11, 12]
    mel = [Note(i * 480, (i + 1) * 480, 60 + tonic + s) for i, s in enumerate(steps)]
    bass = [Note(0, 1920, 48 + tonic), Note(1920, 3840, 43 + tonic)]
    return Song(tracks=[Track("soprano", role="melody", notes=mel),
                        Track("bass", role="accompaniment", notes=bass)])


@pytest.mark.parametrize("tonic,minor", [(1, False), (7, False), (2, True), (11, True)])
def test_normalise_key(tonic, minor):
    song = _scale_song(tonic, minor)
    key = estimate_key(song)
    out, shift = augment.normalise_key(song)
    assert shift == key.normalising_shift() and -6 <= shift <= 5
    k2 = estimate_key(out)
    assert (k2.tonic, k2.mode) == ((0, "major") if key.mode == "major" else (9, "minor"))
    assert out.tracks[0].notes[0].pitch == song.tracks[0].notes[0].pitch + shift
    assert song.tracks[0].notes[0].pitch == 60 + tonic  # the input is untouched


def test_allowed_shifts_and_transpositions():
    song = _scale_song(0)  # melody 60..72, bass 43..48
    assert augment.allowed_shifts(song) == list(augment.DEFAULT_SHIFTS)
    assert augment.allowed_shifts(song, windows=(40, 74)) == [-3, -2, -1, 0, 1, 2]
    per_voice = {"soprano": (57, 81), "bass": (36, 64)}
    assert augment.allowed_shifts(song, windows=per_voice) == [-3, -2, -1, 0, 1, 2, 3, 4, 5, 6]
    assert augment.allowed_shifts(song, windows=[(60, 72), None]) == [0]
    got = dict(augment.transpositions(song, shifts=[-2, 0, 9], windows=(40, 74)))
    assert sorted(got) == [-2, 0]
    assert got[-2].tracks[1].notes[0].pitch == 46
    rng = np.random.default_rng(0)
    assert augment.random_shift(song, rng, windows=(60, 72)) == 0


def test_transpose_notes_array():
    song = _scale_song(0)
    song.tracks.append(Track("drums", is_drum=True, notes=[Note(0, 10, 36)]))
    notes = corpus.pack_song(song)["notes"]
    out = augment.transpose_notes(notes, 3, drum_tracks=[2])
    assert (out[notes[:, 0] < 2, 3] == notes[notes[:, 0] < 2, 3] + 3).all()
    assert (out[notes[:, 0] == 2, 3] == 36).all()
    with pytest.raises(ValueError):
        augment.transpose_notes(notes, 100)


def test_tie_merging_matches_music21_strip_ties():
    """Our one-pass tie merge gives music21's stripTies notes on real chorales."""
    from music21 import corpus as m21corpus

    from engine.training.data.m21 import part_notes, ql_to_ticks

    for path in ("bach/bwv1.6.mxl", "bach/bwv11.6.mxl"):
        for part in m21corpus.parse(path).parts:
            ref = []
            for el in part.stripTies(inPlace=False).flatten().notes:
                if el.duration.isGrace:
                    continue
                start = ql_to_ticks(el.offset)
                end = ql_to_ticks(el.offset + el.duration.quarterLength)
                ref += [(start, end, int(round(p.ps))) for p in el.pitches]
            assert [(n.start, n.end, n.pitch) for n in part_notes(part)] == sorted(ref)


def test_cache_layer_with_synthetic_pieces(tmp_path):
    songs = [_scale_song(t) for t in (0, 3, 7)]
    pieces = [corpus.make_piece(s, id=f"p{i}", group=f"g{i}", label="x") for i, s in
              enumerate(songs)]
    corpus.save_cache(tmp_path, "syn", pieces, parser_version=3, fingerprint="f")
    back = corpus.load_cache(tmp_path, "syn", parser_version=3, fingerprint="f")
    assert [p.song for p in back] == songs
    assert [(p.id, p.group, p.split, p.label, p.meter) for p in back] == \
        [(p.id, p.group, p.split, p.label, p.meter) for p in pieces]
    assert (back[0].notes == corpus.pack_song(songs[0])["notes"]).all()
    assert corpus.load_cache(tmp_path, "syn", parser_version=4, fingerprint="f") is None
    assert corpus.load_cache(tmp_path, "syn", parser_version=3, fingerprint="g") is None
    with open(tmp_path / "syn.npz", "ab") as fh:  # arrays no longer match the manifest
        fh.write(b"x")
    assert corpus.load_cache(tmp_path, "syn", parser_version=3, fingerprint="f") is None
    (tmp_path / "file").write_text("")
    assert corpus.try_save_cache(tmp_path / "file" / "sub", "syn", pieces,
                                 parser_version=3) is None
