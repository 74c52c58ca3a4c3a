"""`popmusicnet live` as a user meets it: bad input and missing devices exit 2 with one line;
the null backend runs headless and records a MIDI file."""

from __future__ import annotations

import pytest

from studio.cli import main


def test_bad_meter_is_one_line_exit_2(capsys):
    assert main(["live", "--meter", "4-4", "--backend", "null"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "meter" in err[0]


def test_bad_tempo_exit_2(capsys):
    assert main(["live", "--bpm", "1000", "--backend", "null"]) == 2
    assert "--bpm" in capsys.readouterr().err


def test_no_audio_device_is_a_clear_exit_2(capsys, monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "pmn-no-such-server")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    assert main(["live", "--backend", "jack", "--midi-in", "none", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "audio driver 'jack' could not start" in err and "--backend null" in err


def test_null_backend_runs_and_records(tmp_path, capsys):
    out = tmp_path / "take.mid"
    rc = main(["live", "--backend", "null", "--midi-in", "none", "--no-accompaniment",
               "--count-in", "0", "--duration", "0.6", "--bpm", "240", "--record", str(out),
               "--quiet"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "summary:" in text and "late=0 skipped=0" in text
    assert out.exists() and out.stat().st_size > 0


def test_record_to_missing_folder_fails_before_playing(tmp_path, capsys):
    rc = main(["live", "--backend", "null", "--midi-in", "none", "--duration", "1",
               "--record", str(tmp_path / "nope" / "x.mid")])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("meter", ["3/4", "6/8"])
def test_meters_accepted(meter, capsys):
    assert main(["live", "--backend", "null", "--midi-in", "none", "--no-accompaniment",
                 "--count-in", "0", "--duration", "0.3", "--meter", meter, "--quiet"]) == 0
    assert f"BPM {meter}" in capsys.readouterr().out


def test_missing_soundfont_and_bad_programs_exit_2(tmp_path, capsys):
    assert main(["live", "--backend", "null", "--soundfont", str(tmp_path / "none.sf2")]) == 2
    assert "none.sf2" in capsys.readouterr().err
    assert main(["live", "--backend", "null", "--programs", "1,x"]) == 2
    assert "--programs" in capsys.readouterr().err


def test_a_key_that_is_not_one_is_exit_2(capsys):
    assert main(["live", "--key", "D dorian", "--backend", "null"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--key" in err[0]


def test_live_says_which_key_it_plays_in(capsys):
    """With the accompaniment on, the start-up lines say the key named, or that it is
    estimated from the first bars and how to name it."""
    for extra, said in (([], "key estimated from the first bars you play (--key names it"),
                        (["--key", "D major"], "live: key D major")):
        rc = main(["live", "--backend", "null", "--midi-in", "none", "--count-in", "0",
                   "--duration", "0.3", "--bpm", "240", "--quiet", *extra])
        text = capsys.readouterr().out
        assert rc == 0, text
        assert said in text, text
