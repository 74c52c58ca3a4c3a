"""`popmusicnet render`, `export`, `demo` and `bench render` end to end (small inputs)."""

from __future__ import annotations

import pytest
import soundfile

from engine.midi_io import read_midi, write_midi
from engine.music import Note, Song, TempoChange, Track
from engine.synth.soundfont import bundled_soundfont
from studio.cli import main


def small_song() -> Song:
    return Song(tracks=[Track("Lead", program=73, notes=[Note(0, 480, 72, 100),
                                                         Note(480, 960, 74, 100)]),
                        Track("Drums", is_drum=True, notes=[Note(0, 60, 36, 110)])],
                ticks_per_beat=96 * 5, tempos=[TempoChange(0, 140.0)])


def test_render_wav_and_stems(tmp_path, capsys):
    src = tmp_path / "s.mid"
    write_midi(small_song(), src)
    out, stems = tmp_path / "s.wav", tmp_path / "stems"
    code = main(["render", str(src), "-o", str(out), "--rate", "44100", "--bit-depth", "24",
                 "--stems", str(stems), "--soundfont", str(bundled_soundfont()),
                 "--progress"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    info = soundfile.info(str(out))
    assert (info.samplerate, info.subtype, info.channels) == (44100, "PCM_24", 2)
    assert info.duration > 60 / 140 * 2
    assert sorted(p.name for p in stems.iterdir()) == ["01-Lead.wav", "02-Drums.wav"]
    assert "wrote" in cap.out and "100%" in cap.err


def test_export_normalises_resolution(tmp_path, capsys):
    song = Song(tracks=[Track("x", notes=[Note(0, 96, 60), Note(96, 192, 62)])],
                ticks_per_beat=192)
    src, out = tmp_path / "in.mid", tmp_path / "out.mid"
    write_midi(song, src)
    assert main(["export", str(src), "-o", str(out)]) == 0
    back = read_midi(out)
    assert back.ticks_per_beat == 480
    assert [(n.start, n.end) for n in back.tracks[0].notes] == [(0, 240), (240, 480)]
    assert main(["export", str(src), "-o", str(tmp_path / "x.wav")]) == 2
    assert "render" in capsys.readouterr().err


def test_export_keeps_resolution_when_rescaling_would_move_notes(tmp_path):
    song = Song(tracks=[Track("x", notes=[Note(0, 7, 60)])], ticks_per_beat=100)  # 7 * 4.8
    src, out = tmp_path / "in.mid", tmp_path / "out.mid"
    write_midi(song, src)
    assert main(["export", str(src), "-o", str(out)]) == 0
    assert read_midi(out) == read_midi(src)


def test_demo_writes_wav_and_midi(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["demo", "-o", str(out), "--soundfont", str(bundled_soundfont())]) == 0
    printed = capsys.readouterr().out
    wav, mid = out / "demo.wav", out / "demo.mid"
    assert str(wav.resolve()) in printed and str(mid.resolve()) in printed
    import numpy as np

    audio, rate = soundfile.read(str(wav))
    assert rate == 48000 and np.abs(audio).max() > 0.01  # not silent
    assert main(["info", str(mid)]) == 0
    assert "Ode to Joy" in capsys.readouterr().out
    from pathlib import Path

    melody = read_midi(Path(__file__).resolve().parents[1] / "assets" / "demo" / "melody.mid")
    song = read_midi(mid)
    assert song.tracks[0].notes == melody.tracks[0].notes  # melody untouched
    assert len(song.tracks) > 1 and all(t.notes for t in song.tracks[1:])  # accompanied


def test_bench_render_prints_numbers_and_writes_its_section(tmp_path, capsys, monkeypatch):
    import os

    import engine.evaluation.report as report

    written = {}
    monkeypatch.setattr(report, "update_section",
                        lambda name, md, path=None: written.setdefault(name, md) and tmp_path)
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    assert main(["bench", "render", "--runs", "1", "--timing-onsets", "3", "--soundfont",
                 str(bundled_soundfont())]) == 0
    out = capsys.readouterr().out
    assert "realtime" in out and "timing groups 2" in out and "847 notes" in out
    assert "timing groups 64: " in out
    assert "bench-render" in written and "| TimGM6mb.sf2 | 2 | 1 |" in written["bench-render"]
    if before is not None:
        assert os.sched_getaffinity(0) == before  # the pin to one core is undone


def test_bench_lists_its_benchmarks(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    assert "render" in capsys.readouterr().out


def test_bench_all_runs_every_benchmark_with_defaults(monkeypatch, capsys):
    import types

    from studio.cli.commands import bench

    ran = []

    def fake(name, code):
        mod = types.SimpleNamespace(NAME=name, HELP=name)
        mod.register = lambda p: p.add_argument("--runs", type=int, default=3)
        mod.run = lambda a: ran.append((a.benchmark, a.runs)) or code
        return mod

    monkeypatch.setattr(bench, "benchmark_modules", lambda: iter([fake("a", 0), fake("b", 2)]))
    assert main(["bench", "all"]) == 2
    assert ran == [("a", 3), ("b", 3)]
    assert "== bench a ==" in capsys.readouterr().out


def test_bench_accompanist_times_demo_bars_per_meter(monkeypatch, tmp_path, capsys):
    import engine.evaluation.report as report

    written = {}
    monkeypatch.setattr(report, "update_section",
                        lambda name, md, path=None: written.setdefault(name, md) and tmp_path)
    assert main(["bench", "accompanist", "--bars", "10", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "median offline p99" in out
    md = written["bench-accompanist"]
    # the demo melodies hold 4/4 and 3/4 bars: each meter has two runs and a median row
    assert md.count("| 4/4 |") == 3 and md.count("| 3/4 |") == 3
    assert "| 1/4 |" not in md
