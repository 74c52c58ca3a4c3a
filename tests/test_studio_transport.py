"""Transport: playback through engine.realtime.SongPlayer on its null backend, recording from
the computer keyboard, the playback builder (mute/solo, metronome, count-in)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from engine.music import MeterChange, Note, Song, Track
from studio.app.transport.playback import CLICK_HIGH, build_playback

pytest.importorskip("pytestqt")



def song() -> Song:
    return Song(tracks=[Track("Mel", notes=[Note(0, 480, 60), Note(1920, 2400, 62)]),
                        Track("Bass", notes=[Note(0, 1920, 36)])])


def test_playback_applies_mute_solo_and_metronome():
    pb = build_playback(song(), [1], metronome=True)
    assert [t.name for t in pb.song.tracks] == ["Bass", "Metronome"]
    clicks = pb.song.tracks[-1]
    assert clicks.is_drum and [n.start for n in clicks.notes[:5]] == [0, 480, 960, 1440, 1920]
    assert clicks.notes[0].pitch == CLICK_HIGH and clicks.notes[1].pitch != CLICK_HIGH


def test_count_in_starts_a_bar_early_on_the_bar_line():
    s = song()
    s.meters = [MeterChange(0, 3, 4)]
    pb = build_playback(s, [0, 1], start_tick=1500, count_in_bars=1)
    # The cursor at 1500 lies in bar 2 (1440..2880): count-in is one 3/4 bar before 1440.
    assert pb.offset == 1440 - 1440 and pb.start_tick == 0
    mel = pb.song.tracks[0]
    assert [n.start for n in mel.notes] == [1920 - 1440 + 1440]
    assert [n.start for n in pb.song.tracks[-1].notes] == [0, 480, 960]


def test_play_with_the_null_backend_moves_the_playhead(qtbot, window):
    window.doc.set_song(song())
    window.transport.open_player("null")
    qtbot.waitUntil(lambda: window.transport.can_play, timeout=5000)
    assert "null" in window.audio_label.text()
    window.transport_bar.act_play.trigger()
    assert window.transport.is_playing
    qtbot.waitUntil(lambda: (window.editor.canvas.playhead or 0) > 100, timeout=3000)
    window.transport_bar.act_play.trigger()  # the same button stops
    assert not window.transport.is_playing
    assert window.editor.canvas.playhead is None


def test_record_from_the_computer_keyboard(qtbot, window):
    window.transport.open_player("null")
    qtbot.waitUntil(lambda: window.transport.can_play, timeout=5000)
    window.transport_bar.act_keys.trigger()
    keys = window.keys
    assert keys.enabled
    window.transport.toggle_record()
    assert window.transport.recording
    qtbot.wait(100)
    keys.handle_key(Qt.Key.Key_A, True)  # C4
    qtbot.wait(150)
    keys.handle_key(Qt.Key.Key_A, False)
    keys.handle_key(Qt.Key.Key_X, True)  # octave up
    keys.handle_key(Qt.Key.Key_W, True)  # C#5
    qtbot.wait(100)
    keys.handle_key(Qt.Key.Key_W, False)
    window.transport.toggle_record()
    recorded = window.doc.track(0).notes
    assert [n.pitch for n in recorded] == [60, 73]
    assert recorded[0].end > recorded[0].start
    window.doc.undo_stack.undo()
    assert window.doc.track(0).notes == []


def test_opening_another_song_stops_playback(qtbot, window):
    window.doc.set_song(song())
    window.transport.open_player("null")
    qtbot.waitUntil(lambda: window.transport.can_play, timeout=5000)
    window.transport.play()
    assert window.transport.is_playing
    window.doc.set_song(Song())
    assert not window.transport.is_playing


def test_keys_reach_the_piano_and_space_plays(qtbot, window):
    window.doc.set_song(song())
    window.transport.open_player("null")
    qtbot.waitUntil(lambda: window.transport.can_play, timeout=5000)
    window.activateWindow()
    canvas = window.editor.canvas
    canvas.setFocus()
    window.transport_bar.act_keys.trigger()
    qtbot.keyPress(canvas, Qt.Key.Key_D)  # E4 through the application-wide event filter
    assert 64 in window.editor.keyboard.held
    qtbot.keyRelease(canvas, Qt.Key.Key_D)
    assert 64 not in window.editor.keyboard.held
    qtbot.keyClick(canvas, Qt.Key.Key_Space)  # the transport's shortcut, not a piano key
    assert window.transport.is_playing
    qtbot.keyClick(canvas, Qt.Key.Key_Space)
    assert not window.transport.is_playing
