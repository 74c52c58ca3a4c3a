import pytest

from engine.music import (Key, MeterChange, Note, Song, TempoChange, Track, estimate_key,
                          notes_to_planes, planes_to_notes)


def test_note_validation_names_the_field():
    with pytest.raises(ValueError, match="pitch"):
        Note(0, 10, 200)
    with pytest.raises(ValueError, match="end must be after start"):
        Note(10, 10, 60)


def test_bars_follow_meter_changes_and_pickup():
    song = Song(meters=[MeterChange(0, 1, 4), MeterChange(480, 3, 4)],
                tracks=[Track(notes=[Note(0, 480 * 7, 60)])])
    assert song.bar_starts() == [0, 480, 480 * 4]
    assert song.pickup_ticks == 480
    six8 = Song(meters=[MeterChange(0, 6, 8)], tracks=[Track(notes=[Note(0, 1440 * 2, 60)])])
    assert six8.bar_starts() == [0, 1440]


def test_tempo_map_seconds_round_trip():
    song = Song(tempos=[TempoChange(0, 120), TempoChange(960, 60)])
    assert song.tick_to_seconds(960) == pytest.approx(1.0)
    assert song.tick_to_seconds(1440) == pytest.approx(2.0)
    for t in (0, 100, 960, 1500):
        assert song.seconds_to_tick(song.tick_to_seconds(t)) == pytest.approx(t)


def test_repeated_notes_survive_roll_round_trip():
    notes = [Note(0, 240, 60), Note(240, 480, 60), Note(480, 1920, 64, 100)]
    onset, active, vel = notes_to_planes(notes, 16, 480, 4)
    back = planes_to_notes(onset, active, 480, 4, vel)
    assert back == sorted(notes)


def test_transpose_and_range_error():
    song = Song(tracks=[Track(notes=[Note(0, 480, 60)]), Track(is_drum=True, notes=[Note(0, 480, 36)])])
    up = song.transposed(5)
    assert up.tracks[0].notes[0].pitch == 65 and up.tracks[1].notes[0].pitch == 36
    with pytest.raises(ValueError):
        Song(tracks=[Track(notes=[Note(0, 480, 125)])]).transposed(5)


@pytest.mark.parametrize("tonic,mode", [(0, "major"), (7, "major"), (9, "minor"), (2, "minor")])
def test_key_estimate_on_scales(tonic, mode):
    scale = [0, 2, 4, 5, 7, 9, 11] if mode == "major" else [0, 2, 3, 5, 7, 8, 11]
    # tonic triad weighted longer, as in real music
    notes = [Note(i * 480, (i + 1) * 480, 60 + tonic + d) for i, d in enumerate(scale)]
    notes += [Note(4000, 6000, 60 + tonic), Note(4000, 6000, 60 + tonic + scale[2]),
              Note(4000, 6000, 60 + tonic + 7)]
    key = estimate_key(notes)
    assert (key.tonic, key.mode) == (tonic, mode)


def test_normalising_shift():
    assert Key(7, "major").normalising_shift() == 5
    assert (7 + Key(7, "major").normalising_shift()) % 12 == 0
    assert (2 + Key(2, "minor").normalising_shift()) % 12 == 9
    assert all(-6 <= Key(t, m).normalising_shift() <= 5 for t in range(12) for m in ("major", "minor"))


@pytest.mark.parametrize("text, tonic, mode", [
    ("D major", 2, "major"), ("F# minor", 6, "minor"), ("Bb", 10, "major"), ("Am", 9, "minor"),
    ("c minor", 0, "minor"), ("Eb maj", 3, "major"), ("Cb", 11, "major")])
def test_parse_key(text, tonic, mode):
    from engine.music import parse_key

    k = parse_key(text)
    assert (k.tonic, k.mode) == (tonic, mode)


@pytest.mark.parametrize("text", ["H major", "D dorian", "", "C major minor"])
def test_parse_key_refuses_what_is_not_a_key(text):
    from engine.music import parse_key

    with pytest.raises(ValueError, match="not a key"):
        parse_key(text)


def test_fold_octaves_moves_by_whole_octaves_into_the_window():
    from engine.music import fold_octaves

    assert fold_octaves(-5) == 7 and fold_octaves(130) == 118 and fold_octaves(60) == 60
    assert fold_octaves(30, 48, 72) == 54 and fold_octaves(85, 48, 72) == 61
    assert fold_octaves(48, 48, 59) == 48 and fold_octaves(59, 48, 59) == 59
