"""`popmusicnet info`: tracks, meters, tempos, key and length, as text and JSON."""

from __future__ import annotations

import json

import pytest

from engine.midi_io import write_midi
from engine.music import (
    ROLE_MELODY,
    MeterChange,
    Note,
    Song,
    TempoChange,
    Track,
)
from studio.cli import main


def g_major_song() -> Song:
    scale = [67, 69, 71, 72, 74, 76, 78, 79]  # G major
    melody = [Note(i * 480, i * 480 + 480, p, 90) for i, p in enumerate(scale * 2)]
    bass = [Note(i * 1440, i * 1440 + 1440, p, 90) for i, p in enumerate([43, 50, 43, 50, 43])]
    return Song(tracks=[Track("Tune", program=40, role=ROLE_MELODY, notes=melody),
                        Track("Bass", program=32, notes=bass),
                        Track("Kit", is_drum=True, notes=[Note(0, 60, 36, 100)])],
                tempos=[TempoChange(0, 90.0), TempoChange(4 * 1440, 72.0)],
                meters=[MeterChange(0, 3, 4), MeterChange(4 * 1440, 2, 4)], title="Scales")


def test_info_text(tmp_path, capsys):
    path = tmp_path / "s.mid"
    write_midi(g_major_song(), path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert '"Scales"' in out
    assert "meter: 3/4, 2/4 from bar 5" in out
    assert "tempo: 90 BPM, 72 BPM from bar 5" in out
    assert "key: G major" in out and "Krumhansl-Schmuckler" in out
    assert "Tune" in out and "Violin" in out and "melody" in out and "G4-G5" in out
    assert "drums" in out
    # 4 bars of 3/4 (5760 ticks) + 2/4 bars up to tick 7680: 4 + 2 = 6 bars
    assert "length: 6 bars" in out


def test_info_json(tmp_path, capsys):
    path = tmp_path / "s.mid"
    song = g_major_song()
    write_midi(song, path)
    assert main(["info", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["bars"] == 6 and d["notes"] == song.n_notes
    assert abs(d["seconds"] - song.duration_seconds) < 1e-3
    assert [m["meter"] for m in d["meters"]] == ["3/4", "2/4"]
    assert [t["bpm"] for t in d["tempos"]] == [90.0, 72.0]
    assert d["key"]["key"] == "G major"
    assert [(t["name"], t["program"], t["role"], t["notes"]) for t in d["tracks"]] == [
        ("Tune", 40, "melody", 16), ("Bass", 32, "other", 5), ("Kit", None, "other", 1)]


def test_info_pickup_and_help(tmp_path, capsys):
    from pathlib import Path

    waltz = Path(__file__).resolve().parents[1] / "assets" / "demo" / "waltz.mid"
    assert main(["info", str(waltz)]) == 0
    out = capsys.readouterr().out
    assert "pickup of 1 beat" in out and "1/4, 3/4 from bar 2" in out
    with pytest.raises(SystemExit) as exc:
        main(["info", "--help"])
    assert exc.value.code == 0
    assert "MIDI file" in capsys.readouterr().out
