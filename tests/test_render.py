"""engine.synth.render + export: onset timing, tail, no clipping, rates, formats, stems."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from engine.errors import SoundfontError
from engine.music import Note, Song, TempoChange, Track
from engine.synth.render import render
from engine.synth.soundfont import bundled_soundfont, find_soundfont
from export.audio import write_wav
from export.stems import write_stems

THRESHOLD = 1e-6  # -120 dBFS: "the first rise" (before a voice starts the output is 0)


@pytest.fixture(scope="module")
def sf():
    """pretty_midi's TimGM6mb (6 MB, always installed): fast and the same on every machine."""
    path = bundled_soundfont()
    assert path is not None and path.is_file()
    return path


def first_rise(audio: np.ndarray) -> int:
    loud = np.flatnonzero(np.abs(audio).max(axis=1) > THRESHOLD)
    assert loud.size, "silent render"
    return int(loud[0])


def one_note(start: int, end: int, bpm: float = 120.0, program: int = 0) -> Song:
    return Song(tracks=[Track("p", program=program, notes=[Note(start, end, 60, 100)])],
                tempos=[TempoChange(0, bpm)])


@pytest.mark.parametrize("rate", [44100, 48000])
def test_onset_at_beat_two_within_1ms(sf, rate):
    audio = render(one_note(480, 960), sample_rate=rate, soundfont=sf).audio
    onset_s = first_rise(audio) / rate
    # 0.5 s plus the SoundFont sample's own attack (a few frames): within 1 ms.
    assert 0.5 <= onset_s < 0.501, onset_s


@pytest.mark.parametrize("groups, tolerance", [(64, 1), (2, 32)])
def test_note_on_precision_in_frames(sf, groups, tolerance):
    """Measured against the same note at frame 0, so the sample's attack cancels out."""
    rate = 44100
    ref = first_rise(render(one_note(0, 480), sample_rate=rate, soundfont=sf,
                            timing_groups=groups).audio)
    song_ticks = [1, 97, 333, 479, 1000]
    for tick in song_ticks:
        song = one_note(tick, tick + 480)
        exact = song.tick_to_seconds(tick) * rate
        got = first_rise(render(song, sample_rate=rate, soundfont=sf,
                                timing_groups=groups).audio) - ref
        assert -1 <= got - exact <= tolerance, (tick, got, exact)


def test_release_tail_and_length(sf):
    res = render(one_note(0, 480), sample_rate=48000, soundfont=sf)
    end = int(0.5 * 48000)
    assert len(res.audio) > end + 4800  # rendered past the note-off
    assert np.abs(res.audio[end:end + 2400]).max() > 1e-3  # the release is still sounding
    assert np.abs(res.audio[-480:]).max() < 1e-3  # and the file ends in (near) silence
    assert len(res.audio) <= end + 3 * 48000 + 4800  # tail capped


def test_loud_song_is_scaled_not_clipped(sf):
    notes = [Note(0, 1920, p, 127) for p in range(36, 96, 2)]
    song = Song(tracks=[Track(f"t{i}", program=i, notes=notes) for i in range(8)])
    res = render(song, sample_rate=48000, soundfont=sf, gain=1.0)
    assert res.peak_before > 1.0 and res.normalised
    assert np.abs(res.audio).max() <= 0.98 + 1e-6
    assert "scaled" in res.describe()
    quiet = render(one_note(0, 480), sample_rate=48000, soundfont=sf)
    assert not quiet.normalised and quiet.gain == 1.0


def test_drums_and_programs_sound_different(sf):
    tone = render(one_note(0, 480, program=0), soundfont=sf).audio
    drum = render(Song(tracks=[Track("d", is_drum=True, notes=[Note(0, 480, 38, 100)])]),
                  soundfont=sf).audio
    organ = render(one_note(0, 480, program=19), soundfont=sf).audio
    n = min(len(tone), len(drum), len(organ), 24000)
    assert not np.allclose(tone[:n], drum[:n], atol=1e-3)
    assert not np.allclose(tone[:n], organ[:n], atol=1e-3)


def test_volume_cc7_scales_the_track(sf):
    loud = one_note(0, 480)
    soft = one_note(0, 480)
    soft.tracks[0].volume = 40
    a = np.abs(render(loud, soundfont=sf).audio).max()
    b = np.abs(render(soft, soundfont=sf).audio).max()
    assert b < a * 0.5


@pytest.mark.parametrize("rate, bits, subtype", [(44100, "16", "PCM_16"),
                                                 (48000, "24", "PCM_24"),
                                                 (48000, "float", "FLOAT")])
def test_write_wav_formats(tmp_path, sf, rate, bits, subtype):
    out = tmp_path / "x.wav"
    write_wav(one_note(0, 240), out, sample_rate=rate, subtype=bits, soundfont=sf)
    info = soundfile.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (rate, 2, subtype)
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]  # no temp file left


def test_stems_sum_back_to_the_mix(tmp_path, sf):
    song = Song(tracks=[Track("Lead / 1", program=73, notes=[Note(0, 480, 72, 100)]),
                        Track("empty"),
                        Track("Drums", is_drum=True, notes=[Note(240, 300, 36, 120)])])
    paths = write_stems(song, tmp_path / "stems", soundfont=sf, subtype="float",
                        timing_groups=1)
    assert [p.name for p in paths] == ["01-Lead-1.wav", "03-Drums.wav"]
    stems = [soundfile.read(str(p), dtype="float32")[0] for p in paths]
    assert len({len(s) for s in stems}) == 1
    mix = render(song, soundfont=sf, timing_groups=1).audio
    n = min(len(mix), len(stems[0]))
    assert np.abs(stems[0][:n] + stems[1][:n] - mix[:n]).max() < 1e-4


def test_progress_is_reported(sf):
    seen = []
    render(one_note(0, 4800), soundfont=sf, progress=seen.append)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)


def test_soundfont_discovery_order(tmp_path, monkeypatch, sf):
    import engine.synth.soundfont as sfmod

    fake = tmp_path / "mine.sf2"
    fake.write_bytes(sf.read_bytes())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("POPMUSICNET_SOUNDFONT", raising=False)
    monkeypatch.setattr(sfmod, "SYSTEM_DIRS", [tmp_path / "nowhere"])
    assert find_soundfont() == sf  # last resort: pretty_midi's
    cfg = tmp_path / "cfg" / "popmusicnet"
    cfg.mkdir(parents=True)
    (cfg / "config.json").write_text(f'{{"soundfont": "{fake}"}}')
    assert find_soundfont() == fake
    monkeypatch.setenv("POPMUSICNET_SOUNDFONT", str(sf))
    assert find_soundfont() == sf
    assert find_soundfont(fake) == fake
    monkeypatch.setattr(sfmod, "bundled_soundfont", lambda: tmp_path / "gone" / "TimGM6mb.sf2")
    monkeypatch.delenv("POPMUSICNET_SOUNDFONT")
    (cfg / "config.json").write_text("{}")
    with pytest.raises(SoundfontError) as err:
        find_soundfont()
    msg = str(err.value)
    for place in ("--soundfont", "POPMUSICNET_SOUNDFONT", "config.json", "nowhere",
                  "TimGM6mb.sf2"):
        assert place in msg


def test_peak_normalisation_up_and_down(sf):
    quiet = render(one_note(0, 480), soundfont=sf, peak_dbfs=-1.0)
    assert quiet.gain > 1.0 and "normalised to -1.0 dBFS" in quiet.describe()
    assert abs(np.abs(quiet.audio).max() - 10 ** (-1 / 20)) < 1e-4
    notes = [Note(0, 960, p, 127) for p in range(40, 90, 3)]
    loud = Song(tracks=[Track(f"t{i}", program=i, notes=notes) for i in range(6)])
    res = render(loud, soundfont=sf, gain=1.0, peak_dbfs=-6.0)
    assert res.gain < 1.0 and abs(np.abs(res.audio).max() - 10 ** (-6 / 20)) < 1e-4


def test_timing_groups_keep_hihat_choke_and_same_key_release(sf):
    from engine.synth.render import _EV_OFF, _EV_ON, assign_groups

    # With block grids at offsets (0, 32): a note-on at frame 20 is nearest group 1's next
    # boundary (12 frames vs 44), one at frame 100 group 0's (28 vs 60).
    events = [(0, _EV_ON, 9, 46, 100), (20, _EV_ON, 9, 42, 100), (20, _EV_ON, 0, 60, 90),
              (100, _EV_ON, 0, 60, 90), (150, _EV_OFF, 0, 60, 0), (200, _EV_OFF, 0, 60, 0)]
    groups = assign_groups(events, [0, 32], {9})
    assert (20, _EV_ON, 9, 42, 100) in groups[0]  # hi-hats stay together in group 0
    assert (20, _EV_ON, 0, 60, 90) in groups[1]
    assert (100, _EV_ON, 0, 60, 90) in groups[0]
    assert (100, _EV_OFF, 0, 60, 0) in groups[1]  # the re-struck key is released in group 1
    assert (150, _EV_OFF, 0, 60, 0) in groups[1] and (200, _EV_OFF, 0, 60, 0) in groups[0]
    # In audio: an open hi-hat choked by a closed one sounds the same as in a single synth.
    tpb_frames = 48000 / 960  # frames per tick at 120 BPM, 480 tpb
    closed_tick = 481  # frame 24050: phase 50, so not on group 0's grid
    assert int(round(closed_tick * tpb_frames)) % 64 != 0
    song = Song(tracks=[Track("d", is_drum=True, notes=[Note(0, 480, 46, 110),
                                                        Note(closed_tick, 960, 42, 110)])])
    one = render(song, soundfont=sf, timing_groups=1).audio
    two = render(song, soundfont=sf, timing_groups=2).audio
    assert one.shape == two.shape and np.allclose(one, two, atol=1e-6)


def test_note_shorter_than_a_frame_still_ends(sf):
    song = Song(tracks=[Track("p", program=19, notes=[Note(0, 1, 60, 100)])],  # organ: sustains
                ticks_per_beat=30000, tempos=[TempoChange(0, 200.0)])  # 1 tick = 10 us
    res = render(song, soundfont=sf, tail_seconds=3.0)
    assert len(res.audio) < 2 * 48000  # released at once, not held for the whole tail


def test_second_synth_only_when_a_note_needs_it(sf):
    # 120 BPM at 48 kHz: eighth notes fall on phases 0 and 32 of the 64-frame block, within
    # the 32-frame bound of one synth; a note 20 frames after a block boundary is not.
    eighths = Song(tracks=[Track("p", notes=[Note(i * 240, i * 240 + 200, 60) for i in range(8)])])
    assert render(eighths, soundfont=sf, sample_rate=48000).synths == 1
    off_grid = Song(tracks=[Track("p", notes=[Note(0, 200, 60), Note(250, 400, 62)])])
    assert int(round(off_grid.tick_to_seconds(250) * 48000)) % 64 == 20
    assert render(off_grid, soundfont=sf, sample_rate=48000).synths == 2
    assert render(off_grid, soundfont=sf, sample_rate=48000, timing_groups=1).synths == 1


def test_onsets_follow_the_tempo_map(sf):
    # 120 BPM for two beats (1 s), then 60 BPM: tick 1440 is at 1.0 + 1.0 = 2.0 s
    song = Song(tracks=[Track("p", notes=[Note(1440, 1920, 60, 100)])],
                tempos=[TempoChange(0, 120.0), TempoChange(960, 60.0)])
    audio = render(song, sample_rate=48000, soundfont=sf, timing_groups=64).audio
    assert abs(first_rise(audio) / 48000 - 2.0) < 0.0005


def test_render_holds_one_buffer_of_audio(sf):
    """The peak is measured without a second buffer of the render's size (np.abs would make
    one): the memory a render allocates stays near the audio it returns."""
    import tracemalloc

    song = Song(tracks=[Track("p", notes=[Note(i * 480, i * 480 + 240, 60 + i % 12, 100)
                                          for i in range(120)])])
    tracemalloc.start()
    try:
        res = render(song, sample_rate=22050, soundfont=sf, timing_groups=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.audio.nbytes > 4 * 2**20
    assert peak < 1.5 * res.audio.nbytes, (peak, res.audio.nbytes)
