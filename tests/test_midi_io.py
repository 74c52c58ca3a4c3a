"""engine.midi_io: tick-exact round trips, type 0, maps in other tracks, strict/lenient notes."""

from __future__ import annotations

import mido
import pytest

from engine.errors import MidiFileError
from engine.midi_io import read_midi, require_notes, write_midi
from engine.music import (
    ROLE_ACCOMPANIMENT,
    ROLE_MELODY,
    ROLE_OTHER,
    MeterChange,
    Note,
    Song,
    TempoChange,
    Track,
)


def multi_track_song() -> Song:
    """Three tracks, a pickup, a 3/4 section, two tempo changes, a drum track, CC7/CC10."""
    tpb = 480
    melody = [Note(0, 240, 67, 100), Note(240, 480, 69, 90)]  # the 1/4 pickup
    melody += [Note(480 + i * 480, 480 + i * 480 + 400, 60 + (i * 5) % 19, 40 + i * 7 % 80)
               for i in range(20)]
    melody += [Note(480 + 4 * 480, 480 + 5 * 480, 72, 1)]  # same pitch repeated elsewhere
    bass = [Note(480 + i * 960, 480 + i * 960 + 960, 36 + i % 12, 110) for i in range(10)]
    drums = [Note(480 + i * 240, 480 + i * 240 + 30, 42 if i % 2 else 36, 127) for i in range(40)]
    return Song(
        tracks=[Track("Lead", program=73, role=ROLE_MELODY, notes=sorted(melody), volume=90,
                      pan=20),
                Track("Bass", program=33, role=ROLE_ACCOMPANIMENT, notes=bass, volume=127),
                Track("Kit", program=25, is_drum=True, notes=drums, volume=70, pan=100),
                Track("Empty pad", program=89)],
        ticks_per_beat=tpb,
        tempos=[TempoChange(0, 100.0), TempoChange(480 + 4 * 1440, 84.0),
                TempoChange(480 + 8 * 1440, 150.0)],
        meters=[MeterChange(0, 1, 4), MeterChange(480, 3, 4), MeterChange(480 + 6 * 1440, 6, 8),
                MeterChange(480 + 10 * 1440, 4, 4)],
        title="Round trip")


def test_round_trip_is_exact(tmp_path):
    song = multi_track_song()
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    write_midi(song, a)
    first = read_midi(a)
    # Everything the Song model holds comes back (tempo goes through integer microseconds).
    assert first.ticks_per_beat == song.ticks_per_beat
    assert first.meters == song.meters
    assert first.tempos == song.tempos  # 84 BPM is 714286 us in the file, read back as 84.0
    assert first.title == song.title
    for got, want in zip(first.tracks, song.tracks, strict=True):
        assert (got.name, got.program, got.is_drum, got.role, got.volume, got.pan) == \
            (want.name, want.program, want.is_drum, want.role, want.volume, want.pan)
        assert got.notes == want.notes
    assert first.pickup_ticks == 480
    # read -> write -> read is identical, down to the bytes of the file.
    write_midi(first, b)
    assert read_midi(b) == first
    assert a.read_bytes() == b.read_bytes()


def test_odd_resolution_is_kept(tmp_path):
    song = Song(tracks=[Track("x", notes=[Note(0, 7, 60), Note(7, 11, 61)])], ticks_per_beat=96)
    write_midi(song, tmp_path / "r.mid")
    back = read_midi(tmp_path / "r.mid")
    assert back.ticks_per_beat == 96 and back.tracks[0].notes == song.tracks[0].notes


def _save(mid: mido.MidiFile, path):
    mid.save(path)
    return path


def test_type0_file_is_split_by_channel(tmp_path):
    mid = mido.MidiFile(type=0, ticks_per_beat=240)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr += [mido.MetaMessage("track_name", name="Tune", time=0),
           mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
           mido.MetaMessage("set_tempo", tempo=600000, time=0),
           mido.Message("program_change", channel=0, program=40, time=0),
           mido.Message("program_change", channel=1, program=42, time=0),
           mido.Message("note_on", channel=0, note=72, velocity=80, time=0),
           mido.Message("note_on", channel=1, note=48, velocity=60, time=0),
           mido.Message("note_on", channel=9, note=36, velocity=100, time=0),
           mido.Message("note_off", channel=9, note=36, time=60),
           mido.Message("note_on", channel=0, note=72, velocity=0, time=180),
           mido.Message("note_off", channel=1, note=48, time=480)]
    song = read_midi(_save(mid, tmp_path / "t0.mid"))
    assert song.title == "Tune"
    assert song.meters == [MeterChange(0, 3, 4)]
    assert song.tempos == [TempoChange(0, 100.0)]
    assert [(t.program, t.is_drum, [(n.start, n.end, n.pitch, n.velocity) for n in t.notes])
            for t in song.tracks] == [(40, False, [(0, 240, 72, 80)]),
                                      (42, False, [(0, 720, 48, 60)]),
                                      (0, True, [(0, 60, 36, 100)])]
    assert all(t.role == ROLE_OTHER for t in song.tracks)


def test_tempo_and_meter_in_a_later_track(tmp_path):
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    notes = mido.MidiTrack([mido.MetaMessage("track_name", name="melody"),
                            mido.Message("note_on", note=60, velocity=90, time=0),
                            mido.Message("note_off", note=60, time=1920)])
    maps = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=2, denominator=2),
                           mido.MetaMessage("set_tempo", tempo=500000),
                           mido.MetaMessage("set_tempo", tempo=400000, time=960),
                           mido.MetaMessage("time_signature", numerator=7, denominator=8,
                                            time=960)])
    mid.tracks += [notes, maps]
    song = read_midi(_save(mid, tmp_path / "late.mid"))
    assert song.meters == [MeterChange(0, 2, 2), MeterChange(1920, 7, 8)]
    assert song.tempos == [TempoChange(0, 120.0), TempoChange(960, 150.0)]
    # named "melody" but no explicit marker: the role stays "other" (documented rule)
    assert song.tracks[0].role == ROLE_OTHER and song.tracks[0].name == "melody"


def test_role_marker_is_read_from_a_marker_event(tmp_path):
    mid = mido.MidiFile(type=1)
    mid.tracks.append(mido.MidiTrack([
        mido.MetaMessage("marker", text="popmusicnet:role=melody"),
        mido.Message("note_on", note=60, velocity=90), mido.Message("note_off", note=60, time=10)]))
    assert read_midi(_save(mid, tmp_path / "m.mid")).tracks[0].role == ROLE_MELODY


def _notes_file(tmp_path, events, name="n.mid"):
    mid = mido.MidiFile(type=1)
    tr = mido.MidiTrack()
    for kind, note, delta in events:
        vel = 80 if kind == "on" else 0
        tr.append(mido.Message("note_on" if kind == "on" else "note_off", note=note,
                               velocity=vel, time=delta))
    mid.tracks.append(tr)
    return _save(mid, tmp_path / name)


def test_restruck_note_written_on_before_off_is_not_an_overlap(tmp_path):
    # Some writers emit the new note-on before the old note-off at the same tick.
    path = _notes_file(tmp_path, [("on", 60, 0), ("on", 60, 480), ("off", 60, 0),
                                  ("off", 60, 480)])
    assert [(n.start, n.end) for n in read_midi(path).tracks[0].notes] == [(0, 480), (480, 960)]


@pytest.mark.parametrize("events, word, repaired", [
    ([("on", 60, 0), ("on", 60, 100), ("off", 60, 100), ("off", 60, 100)], "overlapping",
     [(0, 100), (100, 200)]),
    ([("on", 62, 0), ("off", 62, 0), ("on", 64, 10), ("off", 64, 10)], "zero-length",
     [(10, 20)]),
    ([("on", 60, 0), ("on", 61, 50), ("off", 61, 50)], "unterminated", [(0, 100), (50, 100)]),
])
def test_bad_notes_strict_and_lenient(tmp_path, events, word, repaired, caplog):
    path = _notes_file(tmp_path, events)
    with pytest.raises(MidiFileError, match=word) as err:
        read_midi(path)
    assert "--strict" in str(err.value) and str(path) in str(err.value)
    song = read_midi(path, lenient=True)
    assert [(n.start, n.end) for n in song.tracks[0].notes] == repaired
    assert "repaired" in caplog.text


def test_no_notes_is_the_callers_decision(tmp_path):
    mid = mido.MidiFile(type=1)
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    song = read_midi(_save(mid, tmp_path / "empty.mid"))
    assert song.n_notes == 0
    with pytest.raises(MidiFileError, match="no notes"):
        require_notes(song, tmp_path / "empty.mid")


def test_writer_trims_same_pitch_overlaps(tmp_path):
    song = Song(tracks=[Track("x", notes=[Note(0, 500, 60), Note(480, 960, 60)])])
    write_midi(song, tmp_path / "o.mid")
    assert [(n.start, n.end) for n in read_midi(tmp_path / "o.mid").tracks[0].notes] == \
        [(0, 480), (480, 960)]


def _corpus_pieces():
    music21 = pytest.importorskip("music21")
    from music21 import corpus

    return music21, [corpus.parse("bach/bwv66.6"), corpus.parse("bach/bwv269"),
                     corpus.parse("essenFolksong/han1", number=3)]


def test_music21_corpus_pieces_round_trip(tmp_path):
    _, pieces = _corpus_pieces()
    for k, score in enumerate(pieces):
        src = tmp_path / f"m21_{k}.mid"
        score.write("midi", fp=str(src))
        first = read_midi(src)  # music21's files of these pieces are clean: strict reading
        assert first.n_notes > 20
        write_midi(first, tmp_path / f"rt_{k}.mid")
        again = read_midi(tmp_path / f"rt_{k}.mid")
        assert again.meters == first.meters and again.tempos == first.tempos
        assert [(t.program, t.is_drum, t.notes) for t in again.tracks] == \
            [(t.program, t.is_drum, t.notes) for t in first.tracks]


@pytest.mark.parametrize("num, den, ok", [(6, 8, True), (2, 2, True), (7, 8, True),
                                          (5, 16, True), (3, 128, False), (0, 4, False)])
def test_meter_denominators(tmp_path, num, den, ok):
    mid = mido.MidiFile(type=1)
    mid.tracks.append(mido.MidiTrack([
        mido.MetaMessage("time_signature", numerator=num, denominator=den),
        mido.Message("note_on", note=60, velocity=90), mido.Message("note_off", note=60, time=10)]))
    path = _save(mid, tmp_path / "m.mid")
    if ok:
        song = read_midi(path)
        assert song.meters == [MeterChange(0, num, den)]
        write_midi(song, tmp_path / "again.mid")
        assert read_midi(tmp_path / "again.mid").meters == song.meters
    else:
        with pytest.raises(MidiFileError, match="unsupported time signature"):
            read_midi(path)


def test_real_world_files_shipped_with_music21_round_trip(tmp_path):
    """MIDI files written by other programs (inside the installed music21 package, not ours)."""
    music21 = pytest.importorskip("music21")
    from pathlib import Path

    files = sorted((Path(music21.__file__).parent / "midi" / "testPrimitive").glob("*.mid"))
    if not files:
        pytest.skip("music21 ships no test MIDI files")
    strict = 0
    for path in files:
        try:
            song = read_midi(path)
            strict += 1
        except MidiFileError as exc:
            assert "--strict" in str(exc)
            song = read_midi(path, lenient=True)
        write_midi(song, tmp_path / "rt.mid")
        assert read_midi(tmp_path / "rt.mid") == song, path.name
    assert strict >= len(files) // 2


def test_more_than_15_pitched_tracks_share_channels_by_sound(tmp_path):
    tracks = [Track(f"t{i}", program=i % 3, notes=[Note(i * 10, i * 10 + 5, 60 + i)])
              for i in range(20)]
    tracks.append(Track("drums", is_drum=True, notes=[Note(0, 5, 36)]))
    song = Song(tracks=tracks)
    write_midi(song, tmp_path / "many.mid")
    back = read_midi(tmp_path / "many.mid")
    assert [(t.name, t.program, t.is_drum, t.notes) for t in back.tracks] == \
        [(t.name, t.program, t.is_drum, t.notes) for t in song.tracks]
    too_many = Song(tracks=[Track(f"t{i}", program=i, notes=[Note(0, 5, 60)])
                            for i in range(16)])
    with pytest.raises(MidiFileError, match="too many instruments"):
        write_midi(too_many, tmp_path / "nope.mid")
    assert not (tmp_path / "nope.mid").exists()


def test_bundled_demo_files_are_what_make_demo_writes(tmp_path):
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("make_demo", root / "scripts" / "make_demo.py")
    make_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_demo)
    for name, song in (("melody.mid", make_demo.ode_to_joy()),
                       ("waltz.mid", make_demo.greensleeves())):
        write_midi(song, tmp_path / name)
        assert (tmp_path / name).read_bytes() == (root / "assets" / "demo" / name).read_bytes()
        assert read_midi(root / "assets" / "demo" / name).tracks[0].role == ROLE_MELODY
    waltz = read_midi(root / "assets" / "demo" / "waltz.mid")
    assert waltz.pickup_ticks == waltz.ticks_per_beat and str(waltz.meters[1]) == "3/4"
