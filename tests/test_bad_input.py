"""Bad inputs through the real CLI entry point: a one-line error that names the file and the
problem, exit code 2, and no output file left behind."""

from __future__ import annotations

import struct

import mido
import pytest

from engine.midi_io import write_midi
from engine.music import Note, Song, Track
from engine.synth.soundfont import bundled_soundfont
from studio.cli import main


def good_song() -> Song:
    return Song(tracks=[Track("t", notes=[Note(0, 480, 60), Note(480, 960, 64)])])


def raw_midi(tmp_path, name: str, *, fmt=1, ntracks=None, tracks=None) -> str:
    """A MIDI file assembled by mido, with the header written by hand where mido refuses."""
    mid = mido.MidiFile(type=1)
    for t in tracks or []:
        mid.tracks.append(mido.MidiTrack(t))
    path = tmp_path / name
    mid.save(path)
    data = bytearray(path.read_bytes())
    data[8:10] = struct.pack(">H", fmt)
    if ntracks is not None:
        data[10:12] = struct.pack(">H", ntracks)
    path.write_bytes(bytes(data))
    return str(path)


def notes_track(*events):
    out = []
    for kind, note, delta in events:
        out.append(mido.Message("note_on", note=note, velocity=80 if kind == "on" else 0,
                                time=delta))
    return out


def _bad_files(tmp_path):
    good = tmp_path / "good.mid"
    write_midi(good_song(), good)
    data = good.read_bytes()
    (tmp_path / "text.mid").write_text("this is not a MIDI file, just text\n")
    (tmp_path / "empty.mid").write_bytes(b"")
    (tmp_path / "truncated.mid").write_bytes(data[: len(data) - 9])
    (tmp_path / "header_only.mid").write_bytes(data[:14])
    slow = [mido.MetaMessage("set_tempo", tempo=60_000_000 // 4)] + notes_track(
        ("on", 60, 0), ("off", 60, 480))
    fast = [mido.MetaMessage("set_tempo", tempo=60_000_000 // 900)] + notes_track(
        ("on", 60, 0), ("off", 60, 480))
    # A meter change 1000 bars after the only note (a corrupt delta time): refused, not carried
    # as 1000 silent bars through every command.
    far_meter = [mido.MetaMessage("time_signature", numerator=4, denominator=4)] + notes_track(
        ("on", 60, 0), ("off", 60, 480)) + [mido.MetaMessage(
            "time_signature", numerator=3, denominator=4, time=480 * 4 * 1000)]
    trk = bytes([0x00, 0x90, 60, 200, 0x60, 0x80, 60, 0, 0x00, 0xFF, 0x2F, 0x00])
    (tmp_path / "velocity200.mid").write_bytes(
        b"MThd" + struct.pack(">IHHH", 6, 1, 1, 480) + b"MTrk" + struct.pack(">I", len(trk))
        + trk)
    return {
        "velocity200.mid": "corrupt MIDI file (data byte must be in range 0..127)",
        "text.mid": "not a MIDI file",
        "empty.mid": "empty file (0 bytes)",
        "truncated.mid": "truncated",
        "header_only.mid": "truncated",
        "missing.mid": "file not found",
        raw_midi(tmp_path, "zero_tracks.mid", ntracks=0): "no tracks",
        raw_midi(tmp_path, "type2.mid", fmt=2, tracks=[notes_track(("on", 60, 0),
                                                                     ("off", 60, 10))]):
            "type 2",
        raw_midi(tmp_path, "slow.mid", tracks=[slow]): "absurd tempo 4 BPM",
        raw_midi(tmp_path, "fast.mid", tracks=[fast]): "absurd tempo 900 BPM",
        raw_midi(tmp_path, "zero_length.mid", tracks=[notes_track(
            ("on", 60, 0), ("off", 60, 0), ("on", 62, 0), ("off", 62, 100))]):
            "zero-length note",
        raw_midi(tmp_path, "far_meter.mid", tracks=[far_meter]):
            "1001 bars after the last note ends",
        raw_midi(tmp_path, "overlap.mid", tracks=[notes_track(
            ("on", 60, 0), ("on", 60, 100), ("off", 60, 100), ("off", 60, 100))]):
            "overlapping notes",
    }


@pytest.fixture
def bad_files(tmp_path):
    return {str(tmp_path / k) if "/" not in k else k: v for k, v in _bad_files(tmp_path).items()}


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("command", ["info", "export", "render"])
def test_bad_midi_files(tmp_path, capsys, bad_files, command):
    for path, problem in bad_files.items():
        out = tmp_path / ("out.mid" if command == "export" else "out.wav")
        args = {"info": [path], "export": [path, "-o", str(out)],
                "render": [path, "-o", str(out), "--soundfont", str(bundled_soundfont())]}
        code, _, err = run_cli(capsys, command, *args[command], "--strict")
        line = one_line(err)
        assert code == 2, (path, err)
        assert path in line and problem in line, (path, line)
        assert "Traceback" not in err
        assert not out.exists()
        if problem in ("zero-length note", "overlapping notes"):
            assert "--strict" in line


def repairable(problem: str) -> bool:
    return problem in ("zero-length note", "overlapping notes") or "data byte" in problem


def test_default_reading_repairs_what_strict_refuses(tmp_path, capsys, bad_files):
    assert sum(map(repairable, bad_files.values())) == 3
    for path, problem in bad_files.items():
        if repairable(problem):
            for flags in ([], ["--lenient"]):  # --lenient is still accepted: it is the default
                out = tmp_path / "fixed.mid"
                code, stdout, err = run_cli(capsys, "export", path, "-o", str(out), *flags)
                assert code == 0, err
                assert out.exists()
                assert run_cli(capsys, "info", str(out), "--strict")[0] == 0
                out.unlink()


def test_render_needs_notes(tmp_path, capsys):
    path = raw_midi(tmp_path, "silent.mid", tracks=[[mido.MetaMessage("set_tempo",
                                                                     tempo=500000)]])
    code, _, err = run_cli(capsys, "render", path, "-o", str(tmp_path / "x.wav"))
    assert code == 2 and "no notes" in one_line(err) and path in err
    assert run_cli(capsys, "info", path)[0] == 0  # info is happy to describe it


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.mid"
    write_midi(good_song(), path)
    return str(path)


def test_missing_soundfont(tmp_path, capsys, good):
    out = tmp_path / "x.wav"
    code, _, err = run_cli(capsys, "render", good, "-o", str(out), "--soundfont",
                           str(tmp_path / "nope.sf2"))
    line = one_line(err)
    assert code == 2 and "nope.sf2" in line and "not found" in line
    assert not out.exists()


def test_missing_soundfont_from_environment(tmp_path, capsys, good, monkeypatch):
    monkeypatch.setenv("POPMUSICNET_SOUNDFONT", str(tmp_path / "env.sf2"))
    code, _, err = run_cli(capsys, "render", good, "-o", str(tmp_path / "x.wav"))
    line = one_line(err)
    assert code == 2 and "env.sf2" in line and "POPMUSICNET_SOUNDFONT" in line


@pytest.mark.parametrize("content, problem", [
    (b"not a soundfont at all, just some bytes", "not a SoundFont 2 file"),
    ("truncated", "truncated"),
    ("garbled", "could not load"),
])
def test_corrupt_soundfont(tmp_path, capsys, good, content, problem):
    sf = tmp_path / "bad.sf2"
    real = bundled_soundfont().read_bytes()
    if content == "truncated":
        content = real[: len(real) // 3]
    elif content == "garbled":  # right header and size, garbage inside
        content = real[:12] + bytes(len(real) - 12)
    sf.write_bytes(content)
    out = tmp_path / "x.wav"
    code, _, err = run_cli(capsys, "render", good, "-o", str(out), "--soundfont", str(sf))
    line = one_line(err)
    assert code == 2 and "bad.sf2" in line and problem in line, line
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.sf2",
                                                                               "good.mid"]


@pytest.mark.parametrize("command", ["render", "export"])
def test_unwritable_output(tmp_path, capsys, good, command):
    suffix = ".wav" if command == "render" else ".mid"
    (tmp_path / "a_file").write_text("x")
    (tmp_path / f"a_dir{suffix}").mkdir()
    cases = {str(tmp_path / "no" / "such" / f"dir{suffix}"): "does not exist",
             str(tmp_path / "a_file" / f"x{suffix}"): "is not a folder",
             str(tmp_path / f"a_dir{suffix}"): "is a directory"}
    for out, problem in cases.items():
        code, _, err = run_cli(capsys, command, good, "-o", out)
        line = one_line(err)
        assert code == 2 and out in line and problem in line, line


def test_unwritable_stems_folder(tmp_path, capsys, good):
    code, _, err = run_cli(capsys, "render", good, "--stems",
                           str(tmp_path / "missing" / "stems"))
    assert code == 2 and "does not exist" in one_line(err)


def test_failure_while_writing_leaves_nothing(tmp_path, capsys, good, monkeypatch):
    import soundfile

    def broken_write(file, *a, **k):
        with open(file, "wb") as fh:
            fh.write(b"RIFF half a file")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(soundfile, "write", broken_write)
    out = tmp_path / "x.wav"
    code, _, err = run_cli(capsys, "render", good, "-o", str(out), "--soundfont",
                           str(bundled_soundfont()))
    assert code == 1 and "disk on fire" in one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.mid"]


def test_bad_options_are_usage_errors(capsys, good):
    for argv in (["render", good, "--rate", "12345", "-o", "x.wav"],
                 ["render", good, "--bit-depth", "8", "-o", "x.wav"],
                 ["render", good],
                 ["export", good]):
        with pytest.raises(SystemExit) as exc:
            code = main(argv)
            raise SystemExit(code)
        assert exc.value.code == 2, argv
        capsys.readouterr()
