"""Faults found by fuzzing and by hand-made bad files, one small reproducer each, built here:
no hang, no blow-up, no destroyed file, exit 2 with one line naming the file for what the user
gave, and nothing left behind after a failure."""

from __future__ import annotations

import base64
import errno
import json
import math
import os
import shutil
import signal
import stat
import struct
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from engine.errors import MidiFileError, ModelError, OutputError, UserInputError
from engine.midi_io import read_midi, write_midi
from engine.music import MeterChange, Note, Song, TempoChange, Track, planes_to_notes
from engine.synth.soundfont import bundled_soundfont
from studio.cli import main


# -- helpers -----------------------------------------------------------------------------------
def vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def smf(*tracks: bytes, tpb: int = 480, fmt: int = 1) -> bytes:
    out = b"MThd" + struct.pack(">IHHH", 6, fmt, len(tracks), tpb)
    for t in tracks:
        out += b"MTrk" + struct.pack(">I", len(t)) + t
    return out


END = b"\x00\xff\x2f\x00"


def note(pitch: int, length: int, delta: int = 0) -> bytes:
    return vlq(delta) + bytes([0x90, pitch, 0x40]) + vlq(length) + bytes([0x80, pitch, 0])


@contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) if the block runs longer than `seconds`."""
    def expired(signum, frame):
        raise AssertionError(f"still running after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run(capsys, *argv) -> tuple[int, str]:
    with deadline(60):
        code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, "no error message"
    assert "Traceback" not in err
    return lines[-1]


@pytest.fixture
def good(tmp_path) -> Path:
    path = tmp_path / "good.mid"
    write_midi(Song(tracks=[Track("t", notes=[Note(i * 480, i * 480 + 480, 60 + i % 5)
                                              for i in range(8)])]), path)
    return path


SF = str(bundled_soundfont())


# -- 1. a bar of 0 ticks -----------------------------------------------------------------------
def test_meter_shorter_than_a_tick_is_refused_not_a_hang(tmp_path, capsys):
    path = tmp_path / "meter.mid"
    path.write_bytes(smf(b"\x00\xff\x58\x04\x04\x05\x18\x08" + note(60, 4) + END, tpb=1))
    assert len(path.read_bytes()) == 42
    for command in (["info", path], ["accompany", path, "-o", tmp_path / "o.mid"]):
        code, err = run(capsys, *command)
        line = error_line(err)
        assert code == 2 and str(path) in line and "shorter than one tick" in line
    assert not (tmp_path / "o.mid").exists()
    # The model itself never loops on a 0-tick bar either.
    song = Song(tracks=[Track(notes=[Note(0, 4, 60)])], ticks_per_beat=1,
                meters=[MeterChange(0, 4, 32)])
    with deadline(5):
        assert song.bar_starts() == [0, 1, 2, 3]


# -- 2. bounded lengths ------------------------------------------------------------------------
def test_a_note_0x0fffffff_ticks_long_is_refused(tmp_path, capsys):
    path = tmp_path / "long.mid"
    path.write_bytes(smf(note(60, 0x0FFFFFFF) + END))
    assert len(path.read_bytes()) < 40
    for command in (["info", path], ["render", path, "-o", tmp_path / "o.wav", "--soundfont",
                                     SF],
                    ["accompany", path, "-o", tmp_path / "o.mid"]):
        code, err = run(capsys, *command)
        line = error_line(err)
        assert code == 2 and str(path) in line and "limit" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mid"]


def test_a_small_file_claiming_fourteen_hours_is_refused(tmp_path, capsys):
    # 10 BPM, 8,400 beats: within the beat limit, 14 hours long.
    body = b"\x00\xff\x51\x03" + (6_000_000).to_bytes(3, "big") + note(60, 8400 * 96) + END
    path = tmp_path / "hours.mid"
    path.write_bytes(smf(body, tpb=96))
    code, err = run(capsys, "info", path)
    line = error_line(err)
    assert code == 2 and str(path) in line and "840 minutes" in line


def test_training_folder_skips_an_endless_file(tmp_path):
    from engine.training.data.folder import read_folder

    two = smf(b"\x00\xff\x03\x04lead" + note(72, 480) + note(74, 480) + END,
              b"\x00\xff\x03\x04bass" + note(48, 960) + END)
    for i in range(3):
        (tmp_path / f"ok{i}.mid").write_bytes(two)
    (tmp_path / "endless.mid").write_bytes(smf(note(60, 0x0FFFFFFF) + END))
    data = read_folder(tmp_path)
    assert len(data.pieces) == 3
    assert [rel for rel, _ in data.skipped] == ["endless.mid"]
    assert "limit" in data.skipped[0][1]


def test_render_refuses_an_audio_buffer_beyond_its_bound():
    from engine.synth.render import MAX_RENDER_BYTES, render

    minutes = MAX_RENDER_BYTES / 8 / 96000 / 60 + 1
    song = Song(tracks=[Track(notes=[Note(0, int(minutes * 120 * 480), 60)])])
    with pytest.raises(UserInputError, match="too long to render at 96000 Hz"):
        render(song, sample_rate=96000, soundfont=SF)


# -- 3. a bad key signature --------------------------------------------------------------------
def test_bad_key_signature_is_exit_2_and_skipped_in_training(tmp_path, capsys):
    path = tmp_path / "key.mid"
    path.write_bytes(smf(b"\x00\xff\x59\x02\x20\x00" + note(60, 10) + END))
    code, err = run(capsys, "info", path)
    line = error_line(err)
    assert code == 2 and str(path) in line and "key signature" in line
    from engine.training.data.folder import read_folder

    data = read_folder(tmp_path)
    assert data.skipped and "key signature" in data.skipped[0][1]


# -- 4. projects -------------------------------------------------------------------------------
def _project(**changes) -> dict:
    from studio.app.project import fileformat

    song = Song(tracks=[Track("a", notes=[Note(0, 480, 60)])])
    data = json.loads(fileformat.to_json(fileformat.Project(song)))
    data.update(changes)
    return data


BAD_PROJECTS = {
    "version text": _project(version="1"),
    "version huge": _project(version=10**400),
    "tracks object": _project(tracks={"a": 1}),
    "track not object": _project(tracks=[7]),
    "program 300": _project(tracks=[{"program": 300}]),
    "program float": _project(tracks=[{"program": 1.5}]),
    "volume nan": _project(tracks=[{"volume": math.nan}]),
    "role bad": _project(tracks=[{"role": "lead"}]),
    "name list": _project(tracks=[{"name": ["x"]}]),
    "loop backwards": _project(loop=[5, 2]),
    "loop three": _project(loop=[1, 2, 3]),
    "cursor negative": _project(cursor=-1),
    "cursor text": _project(cursor="0"),
    "title number": _project(title=3),
    "midi number": _project(midi=12),
    "midi not base64": _project(midi="%%%"),
    "midi not midi": _project(midi=base64.b64encode(b"hello").decode()),
    "midi bad key": _project(midi=base64.b64encode(
        smf(b"\x00\xff\x59\x02\x20\x00" + note(60, 10) + END)).decode()),
    "midi endless": _project(midi=base64.b64encode(smf(note(60, 0x0FFFFFFF) + END)).decode()),
}


@pytest.mark.parametrize("case", sorted(BAD_PROJECTS))
def test_bad_projects_are_project_file_errors_naming_the_pmn(tmp_path, case):
    from studio.app.project import fileformat

    path = tmp_path / "bad.pmn"
    path.write_text(json.dumps(BAD_PROJECTS[case]))
    with pytest.raises(fileformat.ProjectFileError) as exc:
        fileformat.load(path)
    assert str(path) in str(exc.value) and "song.mid" not in str(exc.value)


def test_project_nested_too_deeply_or_not_json(tmp_path):
    from studio.app.project import fileformat

    for text in ("[" * 100_000 + "]" * 100_000, '{"format": "popmusicnet-project", "midi": ',
                 "9" * 5000):
        path = tmp_path / "deep.pmn"
        path.write_text(text)
        with pytest.raises(fileformat.ProjectFileError, match="deep.pmn"):
            fileformat.load(path)
    good = tmp_path / "good.pmn"
    good.write_text(json.dumps(_project()))
    assert fileformat.load(good).song.n_notes == 1


# -- 5. an output that is the input ------------------------------------------------------------
def test_output_equal_to_input_is_refused_and_the_input_kept(tmp_path, capsys, good):
    before = good.read_bytes()
    link = tmp_path / "link.mid"
    link.symlink_to(good)
    cases = [["render", good, "-o", good, "--soundfont", SF],
             ["export", good, "-o", link],
             ["accompany", good, "-o", good],
             ["accompany", good, "-o", tmp_path / "x.mid", "--wav", tmp_path / "x.mid"],
             ["continue", good, "-o", good],
             ["morph", good, tmp_path / "b.mid", "-o", good]]
    for argv in cases:
        code, err = run(capsys, *argv)
        line = error_line(err)
        assert code == 2, (argv, err)
        assert "is also the input" in line or "is given twice" in line, line
        assert good.read_bytes() == before
    assert not (tmp_path / "x.mid").exists()


# -- 6. special files --------------------------------------------------------------------------
def test_fifo_is_refused_and_stays_a_fifo(tmp_path, capsys, good):
    fifo = tmp_path / "pipe.mid"
    os.mkfifo(fifo)
    code, err = run(capsys, "export", good, "-o", fifo)
    assert code == 2 and "FIFO" in error_line(err) and str(fifo) in err
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_symlink_is_followed_and_kept(tmp_path, capsys, good):
    target = tmp_path / "real.mid"
    target.write_bytes(b"old")
    link = tmp_path / "link.mid"
    link.symlink_to(target)
    code, err = run(capsys, "export", good, "-o", link)
    assert code == 0, err
    assert link.is_symlink() and read_midi(target).n_notes == 8


def test_character_device_is_written_through(tmp_path, capsys, good):
    dev = tmp_path / "null"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    except (PermissionError, OSError):
        pytest.skip("cannot make a device node here")
    code, err = run(capsys, "export", good, "-o", dev)
    assert code == 0, err
    assert stat.S_ISCHR(dev.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.mid", "null"]


# -- 7. all or nothing -------------------------------------------------------------------------
def _garbled_soundfont(tmp_path) -> Path:
    real = bundled_soundfont().read_bytes()
    sf = tmp_path / "bad.sf2"
    sf.write_bytes(real[:12] + bytes(len(real) - 12))
    return sf


def test_accompany_with_a_failing_wav_writes_no_midi(tmp_path, capsys, good):
    sf = _garbled_soundfont(tmp_path)
    code, err = run(capsys, "accompany", good, "-o", tmp_path / "out.mid", "--wav",
                    tmp_path / "out.wav", "--soundfont", sf)
    assert code == 2, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.sf2", "good.mid"]


def test_stems_folder_is_not_created_for_a_bad_soundfont(tmp_path, capsys, good):
    code, err = run(capsys, "render", good, "--stems", tmp_path / "stems", "--soundfont",
                    tmp_path / "missing.sf2")
    assert code == 2 and not (tmp_path / "stems").exists()


def test_stems_and_mix_all_or_nothing(tmp_path, capsys, monkeypatch):
    import export.stems

    path = tmp_path / "two.mid"
    write_midi(Song(tracks=[Track("a", notes=[Note(0, 480, 60)]),
                            Track("b", notes=[Note(0, 480, 48)])]), path)
    calls = []

    def failing(audio, tmp, sample_rate, subtype, name):
        calls.append(name)
        if len(calls) == 2:
            raise OutputError(name, "cannot write the WAV file (no space left on device)")
        real(audio, tmp, sample_rate, subtype, name)

    real = export.stems.write_wav_file
    monkeypatch.setattr(export.stems, "write_wav_file", failing)
    code, err = run(capsys, "render", path, "-o", tmp_path / "mix.wav", "--stems",
                    tmp_path / "stems", "--soundfont", SF, "--rate", "22050")
    assert code == 2 and "no space left" in error_line(err)
    assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.mid"]


# -- 8. model cards ----------------------------------------------------------------------------
def _card(tmp_path, name="broken", **changes) -> Path:
    src = Path(__file__).resolve().parents[1] / "assets" / "models"
    data = json.loads((src / "classifier-audio-cnn.json").read_text())
    shutil.copy2(src / "classifier-audio-cnn.onnx", tmp_path / "classifier-audio-cnn.onnx")
    data["name"] = name
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        elif key == "representation":
            data["representation"] = {**data["representation"], **value}
        else:
            data[key] = value
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


DEFECTS = {
    "no labels": dict(representation={"labels": None}),
    "sample rate 0": dict(representation={"sample_rate": 0}),
    "one label": dict(representation={"labels": ["x"]}),
    "n_fft text": dict(representation={"n_fft": "2048"}),
    "outside folder": dict(files={"classifier": "../../etc/passwd"}),
    "absolute": dict(files={"classifier": "/etc/passwd"}),
    "no sha256": dict(sha256=None),
    "files list": dict(files=["a.onnx"]),
    "kind number": dict(kind=5),
    "schema future": dict(schema=99),
    "representation list": dict(representation=None, **{"metrics": []}),
}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_defective_cards_are_model_errors(tmp_path, capsys, defect):
    changes = dict(DEFECTS[defect])
    if changes.get("representation") == {"labels": None}:
        changes = {}
    path = _card(tmp_path, **changes)
    if defect == "no labels":
        data = json.loads(path.read_text())
        del data["representation"]["labels"]
        path.write_text(json.dumps(data))
    from engine.models.card import ModelCard

    with pytest.raises(ModelError, match="broken.json"):
        ModelCard.read(path)
    wav = tmp_path / "x.wav"
    import soundfile

    soundfile.write(wav, np.zeros(22050 * 3, np.float32), 22050)
    code, err = run(capsys, "classify", wav, "--model", path)
    assert code == 2 and str(path) in error_line(err)


def test_a_broken_user_card_does_not_break_the_list(tmp_path, capsys, monkeypatch, caplog):
    monkeypatch.setenv("POPMUSICNET_MODELS", str(tmp_path))
    path = _card(tmp_path, representation={"sample_rate": 0})
    code = main(["classify", "--list"])
    out = capsys.readouterr().out
    assert code == 0 and "classifier-midi-cnn" in out and "broken" not in out
    assert any(str(path) in r.getMessage() for r in caplog.records)


def test_a_user_card_shadowing_a_bundled_one_says_so(tmp_path, monkeypatch, caplog):
    from engine.models.runtime import list_cards

    monkeypatch.setenv("POPMUSICNET_MODELS", str(tmp_path))
    path = _card(tmp_path, name="classifier-audio-cnn")
    cards = {c.name: c for c in list_cards()}
    assert cards["classifier-audio-cnn"].path == path
    assert any("shadows" in r.getMessage() and "classifier-audio-cnn" in r.getMessage()
               for r in caplog.records)


# -- 9. audio ----------------------------------------------------------------------------------
def test_wav_with_nan_samples_is_refused(tmp_path, capsys):
    import soundfile

    x = np.sin(np.arange(22050 * 4) * 0.05).astype(np.float32)
    x[30000] = np.nan
    path = tmp_path / "nan.wav"
    soundfile.write(path, x, 22050, subtype="FLOAT")
    code, err = run(capsys, "classify", path)
    line = error_line(err)
    assert code == 2 and str(path) in line and "NaN" in line


def test_wav_claiming_1_hz_is_refused(tmp_path, capsys):
    import soundfile

    path = tmp_path / "slow.wav"
    soundfile.write(path, np.zeros(10_000, np.int16), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[24:28] = struct.pack("<I", 1)  # the fmt chunk's sample rate
    path.write_bytes(bytes(data))
    code, err = run(capsys, "classify", path)
    line = error_line(err)
    assert code == 2 and str(path) in line and "sample rate 1 Hz" in line


def test_long_recordings_are_read_in_bounded_blocks(tmp_path, caplog):
    import soundfile

    from engine.audio_features import load_audio

    path = tmp_path / "long.wav"
    soundfile.write(path, np.ones(8000 * 5, np.int16) * 100, 8000, subtype="PCM_16")
    x = load_audio(path, 8000, max_seconds=2.0)
    assert len(x) == 16000
    assert any("first 2 s" in r.getMessage() for r in caplog.records)


# -- 10. the operating system says no ----------------------------------------------------------
def test_file_name_too_long_is_exit_2(tmp_path, capsys, good):
    out = tmp_path / ("x" * 300 + ".mid")
    code, err = run(capsys, "export", good, "-o", out)
    line = error_line(err)
    assert code == 2 and "too long" in line.lower(), line


def test_disk_full_while_writing_a_wav_is_exit_2(tmp_path, capsys, good, monkeypatch):
    import soundfile

    def full(*args, **kwargs):
        raise soundfile.LibsndfileError(2, "Error writing: ")

    monkeypatch.setattr(soundfile, "write", full)
    out = tmp_path / "x.wav"
    code, err = run(capsys, "render", good, "-o", out, "--soundfont", SF, "--rate", "22050")
    line = error_line(err)
    assert code == 2 and str(out) in line and "cannot write the WAV file" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.mid"]


def test_no_space_inside_an_atomic_write_is_an_output_error(tmp_path):
    from engine.fileio import atomic_path

    with pytest.raises(OutputError, match="No space left on device"):
        with atomic_path(tmp_path / "a.mid") as tmp:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
    assert list(tmp_path.iterdir()) == []


def test_permission_denied_anywhere_is_exit_2(tmp_path, capsys, good, monkeypatch):
    import engine.midi_io

    def denied(path, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(engine.midi_io, "read_midi", denied)
    code, err = run(capsys, "info", good)
    line = error_line(err)
    assert code == 2 and str(good) in line and "Permission denied" in line


# -- 11. training data from a folder -----------------------------------------------------------
def test_unnamed_and_repeated_tracks_get_usable_role_names():
    from engine.training.data.folder import assign_roles

    song = Song(tracks=[Track("", notes=[Note(0, 480, 72)]), Track("", notes=[Note(0, 480, 60)]),
                        Track("Alto/2", notes=[Note(0, 480, 55)]),
                        Track("alto_2", notes=[Note(0, 480, 50)]),
                        Track("", notes=[Note(0, 480, 40)])])
    out = assign_roles(song, 0)
    names = [t.name for t in out.tracks]
    assert names == ["melody", "part2", "Alto_2", "alto_22", "part5"]
    assert len({n.lower() for n in names}) == len(names)


# -- 12. smaller ones --------------------------------------------------------------------------
def test_three_ticks_per_beat_decodes_to_real_notes():
    onset = np.zeros((8, 2), bool)
    onset[:, 0] = True  # eight one-step notes: at 3 ticks a beat two steps share a tick
    notes = planes_to_notes(onset, onset, ticks_per_beat=3, steps_per_beat=4)
    assert len(notes) == 8 and all(n.end > n.start for n in notes)


def test_messages_about_the_song_name_the_file(tmp_path, capsys):
    path = tmp_path / "drums.mid"
    write_midi(Song(tracks=[Track("kit", is_drum=True, notes=[Note(0, 480, 36)])]), path)
    code, err = run(capsys, "accompany", path, "-o", tmp_path / "o.mid")
    line = error_line(err)
    assert code == 2 and str(path) in line and "melody" in line, line


def test_overlapping_notes_are_repaired_by_default_and_refused_with_strict(tmp_path, capsys,
                                                                          caplog):
    path = tmp_path / "overlap.mid"
    path.write_bytes(smf(b"\x00\x90\x3c\x40\x60\x90\x3c\x40\x60\x80\x3c\x00\x60\x80\x3c\x00"
                         + END))
    code, err = run(capsys, "info", path)
    assert code == 0 and any("repaired 1 note problem" in r.getMessage()
                             for r in caplog.records)
    code, err = run(capsys, "info", path, "--strict")
    assert code == 2 and "overlapping" in error_line(err)


def test_tempo_map_out_of_range_is_a_clear_error():
    # The bounds check also reads lengths through the tempo map.
    song = Song(tracks=[Track(notes=[Note(0, 480, 60)])], tempos=[TempoChange(0, 10.0)])
    from engine.midi_io import check_song_size

    assert check_song_size(song) is song
    with pytest.raises(MidiFileError, match="too many notes"):
        check_song_size(Song(tracks=[Track(notes=[Note(i, i + 1, 60) for i in range(500_001)])]))


def test_live_summary_without_a_bar_prints_no_nan(capsys):
    code = main(["live", "--backend", "null", "--midi-in", "none", "--no-accompaniment",
                 "--count-in", "0", "--duration", "0.3", "--bpm", "240", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "summary:" in out
    assert "nan" not in out and "no bar was run" in out
