"""Project files: save/open round trip, bad files, autosave and recovery, drag and drop."""

from __future__ import annotations

import json

import pytest

from engine.music import MeterChange, Note, Song, TempoChange, Track

pytest.importorskip("pytestqt")



def song() -> Song:
    return Song(tracks=[Track("Tune", 73, role="melody",
                              notes=[Note(480, 960, 67, 100), Note(960, 1920, 64, 70)]),
                        Track("Empty", 0), Track("Kit", is_drum=True, notes=[Note(0, 60, 36)])],
                tempos=[TempoChange(0, 96.0)], meters=[MeterChange(0, 3, 4)], title="Round")


def test_save_and_open_round_trip(window, tmp_path):
    from studio.app.project import fileformat

    window.doc.set_song(song())
    window.doc.set_mute(2, True)
    window.doc.set_loop((0, 2880))
    path = tmp_path / "round.pmn"
    assert window.project._save_to(path)
    assert not window.doc.modified and window.windowTitle().endswith("round")
    data = json.loads(path.read_text())
    assert data["format"] == fileformat.FORMAT and data["midi"]
    window.doc.set_song(Song())
    assert window.project.open(path, prompt=False)
    s = window.doc.song
    assert [t.name for t in s.tracks] == ["Tune", "Empty", "Kit"]
    assert [t.role for t in s.tracks][0] == "melody" and s.tracks[2].is_drum
    assert s.tracks[0].notes == song().tracks[0].notes and s.tracks[0].program == 73
    assert (s.meters[0].numerator, s.meters[0].denominator) == (3, 4)
    assert s.tempos[0].bpm == pytest.approx(96.0)
    assert window.doc.mixer(2).mute and window.doc.loop == (0, 2880)


def test_bad_project_file_is_refused_with_a_message(window, tmp_path):
    bad = tmp_path / "bad.pmn"
    bad.write_text("{not json")
    assert not window.project.open(bad, prompt=False)
    assert "bad.pmn" in window.project.errors[-1]
    bad.write_text(json.dumps({"format": "popmusicnet-project", "version": 1, "midi": "@@"}))
    assert not window.project.open(bad, prompt=False)
    assert "corrupt" in window.project.errors[-1]


def test_autosave_is_offered_after_a_crash(window):
    window.doc.set_song(song())
    window.editor.select_all()
    window.editor.delete_selection()  # an unsaved change
    window.project.autosave()
    assert window.project.autosave_path.exists()
    window.doc.set_song(Song())
    assert window.project.offer_recovery(ask=lambda text: True)
    assert [t.name for t in window.doc.song.tracks] == ["Tune", "Empty", "Kit"]
    assert window.doc.modified  # recovered work is unsaved work
    window.project.shutdown()  # a clean quit removes it
    assert not window.project.autosave_path.exists()


def test_dropping_a_midi_file_opens_then_imports(window, tmp_path):
    from engine.midi_io import write_midi

    path = tmp_path / "tune.mid"
    write_midi(song(), path)
    window.doc.set_song(Song(tracks=[Track("Melody")]))
    window.open_dropped(str(path))
    assert len(window.doc.song.tracks) == 3 and window.windowTitle().endswith("Round")
    window.open_dropped(str(path))  # the song has notes now: add the file's tracks
    assert len(window.doc.song.tracks) == 6
    window.doc.undo_stack.undo()
    assert len(window.doc.song.tracks) == 3


def test_importing_a_file_of_another_resolution_rescales_it(window, tmp_path):
    from engine.midi_io import write_midi

    other = Song(tracks=[Track("Lo-res", notes=[Note(96, 192, 60)])], ticks_per_beat=96)
    write_midi(other, tmp_path / "lores.mid")
    window.doc.set_song(song())  # 480 ticks per beat
    window.project.import_midi(tmp_path / "lores.mid")
    assert window.doc.song.tracks[-1].notes == [Note(480, 960, 60, 80)]
