"""The studio's pianoroll editor driven through its real widgets (pytest-qt, offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from engine.music import Note, Song, Track

pytest.importorskip("pytestqt")



def point(editor, tick: float, pitch: int) -> QPoint:
    v = editor.view
    return QPoint(int(v.tick_to_x(tick)) + 2, int(v.pitch_to_y(pitch) + v.key_height / 2))


def notes(window, track: int = 0) -> list[Note]:
    return list(window.doc.track(track).notes)


def show_c4(window) -> None:
    ed = window.editor
    ed.view.px_per_tick = 0.1
    ed.view.set_scroll(x=0)
    ed.view.show_pitch_range(55, 70)


def draw(qtbot, window, tick: int, pitch: int, end_tick: int | None = None) -> None:
    ed = window.editor
    qtbot.mousePress(ed.canvas, Qt.MouseButton.LeftButton, pos=point(ed, tick, pitch))
    if end_tick is not None:
        qtbot.mouseMove(ed.canvas, point(ed, end_tick, pitch))
    qtbot.mouseRelease(ed.canvas, Qt.MouseButton.LeftButton,
                       pos=point(ed, end_tick if end_tick is not None else tick, pitch))


def test_draw_a_note_then_undo_and_redo(qtbot, window):
    show_c4(window)
    draw(qtbot, window, 480, 60, end_tick=1440)
    assert notes(window) == [Note(480, 1440, 60, 90)]
    assert window.windowTitle().endswith("*")
    window.doc.undo_stack.undo()
    assert notes(window) == []
    window.doc.undo_stack.redo()
    assert notes(window) == [Note(480, 1440, 60, 90)]


def test_drag_moves_notes_in_one_undo_step(qtbot, window):
    show_c4(window)
    draw(qtbot, window, 0, 60)
    draw(qtbot, window, 480, 62)
    window.editor.select_all()
    ed = window.editor
    steps = window.doc.undo_stack.count()
    qtbot.mousePress(ed.canvas, Qt.MouseButton.LeftButton, pos=point(ed, 10, 60))
    qtbot.mouseMove(ed.canvas, point(ed, 490, 63))
    qtbot.mouseMove(ed.canvas, point(ed, 970, 64))
    qtbot.mouseRelease(ed.canvas, Qt.MouseButton.LeftButton, pos=point(ed, 970, 64))
    assert [(n.start, n.pitch) for n in notes(window)] == [(960, 64), (1440, 66)]
    assert window.doc.undo_stack.count() == steps + 1
    window.doc.undo_stack.undo()
    assert [(n.start, n.pitch) for n in notes(window)] == [(0, 60), (480, 62)]


def test_resize_rubber_band_delete_and_undo(qtbot, window):
    show_c4(window)
    draw(qtbot, window, 0, 60)  # 1/16 grid: a sixteenth... at least a 32nd of the default
    first = notes(window)[0]
    ed = window.editor
    edge = QPoint(int(ed.view.tick_to_x(first.end)) - 2, point(ed, 0, 60).y())
    # make it long enough to have a grab zone first
    window.doc.undo_stack.undo()
    draw(qtbot, window, 0, 60, end_tick=960)
    first = notes(window)[0]
    edge = QPoint(int(ed.view.tick_to_x(first.end)) - 2, point(ed, 0, 60).y())
    qtbot.mousePress(ed.canvas, Qt.MouseButton.LeftButton, pos=edge)
    qtbot.mouseMove(ed.canvas, QPoint(int(ed.view.tick_to_x(1920)), edge.y()))
    qtbot.mouseRelease(ed.canvas, Qt.MouseButton.LeftButton,
                       pos=QPoint(int(ed.view.tick_to_x(1920)), edge.y()))
    assert notes(window)[0].end == 1920
    draw(qtbot, window, 2400, 64)
    # rubber band (Shift-drag in draw mode) around both
    qtbot.mousePress(ed.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                     point(ed, 0, 67) - QPoint(4, 0))
    qtbot.mouseMove(ed.canvas, point(ed, 3000, 58))
    qtbot.mouseRelease(ed.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                       point(ed, 3000, 58))
    assert len(window.doc.selection) == 2
    ed.act_delete.trigger()
    assert notes(window) == []
    window.doc.undo_stack.undo()
    assert len(notes(window)) == 2


def test_right_click_deletes_and_edit_actions(qtbot, window):
    show_c4(window)
    draw(qtbot, window, 0, 60, end_tick=480)
    ed = window.editor
    ed.select_all()
    ed.act_duplicate.trigger()  # whole bars: the copy lands one 4/4 bar later
    assert [n.start for n in notes(window)] == [0, 1920]
    ed.copy_selection()
    window.doc.set_cursor(3840)
    ed.act_paste.trigger()
    assert [n.start for n in notes(window)] == [0, 1920, 3840]
    ed.act_up.trigger()
    assert notes(window)[-1].pitch == 61
    ed.act_right.trigger()  # nudge by the 1/16 grid
    assert notes(window)[-1].start == 3840 + 120
    qtbot.mouseClick(ed.canvas, Qt.MouseButton.RightButton, pos=point(ed, 10, 60))
    assert [n.start for n in notes(window)] == [1920, 3960]


def test_velocity_lane_drag_is_one_step(qtbot, window):
    show_c4(window)
    draw(qtbot, window, 480, 60)
    lane = window.editor.velocity
    x = int(window.editor.view.tick_to_x(480)) + 1
    qtbot.mousePress(lane, Qt.MouseButton.LeftButton, pos=QPoint(x, lane.height() - 5))
    qtbot.mouseMove(lane, QPoint(x, 0))
    qtbot.mouseRelease(lane, Qt.MouseButton.LeftButton, pos=QPoint(x, 0))
    assert notes(window)[0].velocity == 127
    window.doc.undo_stack.undo()
    assert notes(window)[0].velocity == 90


def test_track_list_add_rename_mute(qtbot, window):
    tracks = window.tracks
    tracks.add_track()
    qtbot.waitUntil(lambda: len(tracks.rows) == 2)
    assert window.doc.current_track == 1
    row = tracks.rows[1]
    row.name.setText("Bass")
    row.name.editingFinished.emit()
    assert window.doc.track(1).name == "Bass"
    row.instrument.activated.emit(33)
    assert window.doc.track(1).program == 33
    row.mute.setChecked(True)
    assert window.doc.audible_tracks() == [0]
    window.doc.undo_stack.undo()  # instrument
    window.doc.undo_stack.undo()  # name
    assert window.doc.track(1).name == "Track 2" and window.doc.track(1).program == 0


def test_ruler_follows_the_meter_and_sets_loop(qtbot, window):
    from studio.app.commands import SetMeter
    from studio.app.transport.toolbar import position_text

    window.doc.undo_stack.push(SetMeter(window.doc, 3, 4))
    assert position_text(window.doc, 1440) == "2.1.1"  # a 3/4 bar is 1440 ticks
    ed = window.editor
    ed.view.px_per_tick = 0.1
    ed.view.set_scroll(x=0)
    y = ed.ruler.height() // 2
    qtbot.mousePress(ed.ruler, Qt.MouseButton.LeftButton, pos=QPoint(int(ed.view.tick_to_x(1440)), y))
    qtbot.mouseMove(ed.ruler, QPoint(int(ed.view.tick_to_x(4320)), y))
    qtbot.mouseRelease(ed.ruler, Qt.MouseButton.LeftButton, pos=QPoint(int(ed.view.tick_to_x(4320)), y))
    assert window.doc.loop == (1440, 4320)


def test_dense_painting_matches_note_positions(qtbot, window):
    """Many notes go through the numpy rasteriser; a note's pixels must be its colour."""
    rng = np.random.default_rng(0)
    song = Song(tracks=[Track("A", notes=[Note(int(s), int(s) + 200, int(p)) for s, p in
                                          zip(np.arange(3000) * 240, rng.integers(60, 72, 3000))])])
    window.doc.set_song(song)
    ed = window.editor
    ed.zoom_to_fit()
    ed.view.show_pitch_range(58, 74)
    image = ed.canvas.grab().toImage()
    n = song.tracks[0].notes[1000]
    x = int(ed.view.tick_to_x(n.start))
    y = int(ed.view.pitch_to_y(n.pitch) + 1)
    assert image.pixelColor(x, y).name() != image.pixelColor(x, int(ed.view.pitch_to_y(73) + 1)).name()


def test_merge_runs():
    from studio.app.pianoroll.painting import merge_runs

    runs = merge_runs(np.array([[0, 10, 5], [6, 10, 3], [20, 10, 2], [0, 20, 3], [2, 20, 1]]))
    assert runs.tolist() == [[0, 10, 9], [20, 10, 2], [0, 20, 3]]


def test_volume_slider_drag_is_one_undo_step(qtbot, window):
    row = window.tracks.rows[0]
    steps = window.doc.undo_stack.count()
    row.volume.setSliderDown(True)
    for v in (90, 80, 70):
        row.volume.setValue(v)
    row.volume.setSliderDown(False)
    row.volume.sliderReleased.emit()
    assert window.doc.track(0).volume == 70
    assert window.doc.undo_stack.count() == steps + 1
    row.volume.setValue(50)  # a click on the groove: one more step
    assert window.doc.track(0).volume == 50
    window.doc.undo_stack.undo()
    window.doc.undo_stack.undo()
    assert window.doc.track(0).volume == 100
