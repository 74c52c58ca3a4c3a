"""The studio as musicians use it: opening files, the ruler and the pickup, shortcuts and
tools, the transport's count-in and recording, driven through the real widgets (offscreen)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QFontMetrics, QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog

from engine.music import MeterChange, Note, Song, TempoChange, Track

pytest.importorskip("pytestqt")



def when_dialog(kind, act) -> None:
    """Answer the next modal dialog of class `kind` with `act(dialog)` once it is up."""
    def poll():
        d = QApplication.activeModalWidget()
        if isinstance(d, kind):
            act(d)
        else:
            QTimer.singleShot(20, poll)
    QTimer.singleShot(0, poll)


def amazing_grace(pickup_meter: bool = False) -> Song:
    """A 3/4 tune that starts on the third beat (a one-beat pickup), as a MIDI file carries it
    either way: with a 1/4 bar first, or with no pickup written at all."""
    tpb, q = 480, 480
    tune = [(0, 1, 55), (1, 2, 60), (3, 1, 64), (4, 2, 64), (6, 1, 62), (7, 2, 60), (9, 1, 57),
            (10, 2, 55)]
    notes = [Note(s * q, (s + d) * q - 10, p, 90) for s, d, p in tune]
    meters = [MeterChange(0, 1, 4), MeterChange(480, 3, 4)] if pickup_meter else [
        MeterChange(0, 3, 4)]
    return Song(tracks=[Track("Melody", 0, notes=notes)], ticks_per_beat=tpb,
                tempos=[TempoChange(0, 90.0)], meters=meters, title="grace")


def write_mid(song: Song, path) -> str:
    from engine.midi_io import write_midi

    path.parent.mkdir(parents=True, exist_ok=True)
    write_midi(song, path)
    return str(path)


# -- opening files ----------------------------------------------------------------------------
def test_open_dialog_shows_midi_files_and_remembers_folder_and_filter(qtbot, window, tmp_path):
    mid = write_mid(amazing_grace(), tmp_path / "tunes" / "grace.mid")
    seen = {}

    def first(d: QFileDialog):
        seen["filters"] = d.nameFilters()
        seen["selected"] = d.selectedNameFilter()
        d.selectNameFilter("MIDI files (*.mid *.midi)")
        d.selectFile(mid)
        d.accept()

    when_dialog(QFileDialog, first)
    window.project.open_dialog()
    assert seen["filters"][0].startswith("All supported")
    for pattern in ("*.pmn", "*.mid", "*.midi", "*.wav"):
        assert pattern in seen["filters"][0]
    assert seen["selected"] == seen["filters"][0]
    assert window.doc.song.n_notes == 8 and window.doc.source_path.name == "grace.mid"

    def second(d: QFileDialog):
        seen["folder"] = d.directory().absolutePath()
        seen["again"] = d.selectedNameFilter()
        d.reject()

    when_dialog(QFileDialog, second)
    window.project.open_dialog()
    assert seen["folder"] == str(tmp_path / "tunes")
    assert seen["again"] == "MIDI files (*.mid *.midi)"


def test_a_single_track_melody_file_opens_as_the_melody(window, tmp_path):
    path = write_mid(amazing_grace(), tmp_path / "grace.mid")
    assert window.project.open(path, prompt=False)
    assert window.doc.track(0).role == "melody"
    role_box = window.tracks.findChildren(type(window.transport_bar.meter))
    assert any(b.currentText().lower() == "melody" for b in role_box)


# -- ruler, meter and pickup ------------------------------------------------------------------
def test_meter_labels_never_overlap_bar_numbers(qtbot, window):
    meters = [MeterChange(i * 960, *((2, 4) if i % 2 else (3, 4))) for i in range(12)]
    song = Song(tracks=[Track("Mel", notes=[Note(0, 480, 60)])], meters=meters)
    window.doc.set_song(song)
    ruler = window.editor.ruler
    for ppt in (0.2, 0.05, 0.012):
        window.editor.view.px_per_tick = ppt
        window.editor.view.set_scroll(x=0)
        labels = ruler.label_layout()
        assert any(k == "meter" for k, _, _ in labels) and any(k == "bar" for k, _, _ in labels)
        for i, (_, a, _) in enumerate(labels):
            for _, b, _ in labels[i + 1:]:
                assert not a.intersects(b), (ppt, labels)
        ruler.grab()  # paints without error


def test_a_short_first_bar_is_bar_zero_and_the_pickup_can_be_set(qtbot, window, tmp_path):
    # A file that writes its pickup: bar 0, and the first full bar's downbeat is 1.1.1.
    window.project.open(write_mid(amazing_grace(True), tmp_path / "a.mid"), prompt=False)
    bar = window.transport_bar
    assert bar.meter.currentText() == "3/4" and bar.pickup.value() == 1
    assert bar.pickup.text() == "pickup 1 beat"
    view = window.editor.view
    view.px_per_tick = 0.1
    view.set_scroll(x=0)
    assert [t for k, _, t in window.editor.ruler.label_layout() if k == "bar"][:2] == ["0", "1"]
    view.px_per_tick = 0.02  # zoomed out, the one-beat bar 0 has no room: bar 1 is named
    view.set_scroll(x=0)
    assert [t for k, _, t in window.editor.ruler.label_layout() if k == "bar"][0] == "1"
    view.px_per_tick = 0.1
    window.doc.set_cursor(480)
    assert bar.position.text() == "1.1.1"
    window.doc.set_cursor(0)
    assert bar.position.text() == "0.3.1"

    # A file that does not: the tune's first note sits on beat 1 until the user sets it.
    window.project.open(write_mid(amazing_grace(False), tmp_path / "b.mid"), prompt=False)
    assert bar.pickup.value() == 0
    window.doc.set_cursor(480)
    assert bar.position.text() == "1.2.1"
    bar.pickup.setValue(1)  # the spin box, as a user types into it
    song = window.doc.song
    assert [(m.tick, str(m)) for m in song.meters] == [(0, "1/4"), (480, "3/4")]
    assert [n.start for n in song.tracks[0].notes][:2] == [0, 480]  # notes did not move
    assert bar.position.text() == "1.1.1"
    view.px_per_tick = 0.1
    view.set_scroll(x=0)
    assert [t for k, _, t in window.editor.ruler.label_layout() if k == "bar"][:2] == ["0", "1"]
    # Changing the meter keeps the pickup; undo takes both back, one step each.
    bar.meter.setCurrentText("4/4")
    bar.meter.activated.emit(bar.meter.currentIndex())
    assert [(m.tick, str(m)) for m in window.doc.song.meters] == [(0, "1/4"), (480, "4/4")]
    window.doc.undo_stack.undo()
    window.doc.undo_stack.undo()
    assert [str(m) for m in window.doc.song.meters] == ["3/4"] and bar.pickup.value() == 0


# -- shortcuts and tools ----------------------------------------------------------------------
SHIFTED = {"+": "=", "_": "-"}  # what Shift makes of a key on a US layout


def _canonical(seq: QKeySequence) -> str:
    text = seq.toString(QKeySequence.SequenceFormat.PortableText)
    *mods, key = re.split(r"\+(?=.)", text)
    if key in SHIFTED:
        mods.append("Shift")
        key = SHIFTED[key]
    return "+".join(sorted(mods) + [key])


def test_no_two_actions_share_a_key_and_ctrl_plus_zooms(qtbot, window):
    seen: dict[str, str] = {}
    for action in window.findChildren(QAction):
        for seq in action.shortcuts():
            key = _canonical(seq)
            assert key not in seen, f"{action.text()!r} and {seen[key]!r} both use {key}"
            seen[key] = action.text()
    canvas = window.editor.canvas
    canvas.setFocus()
    before = window.editor.view.px_per_tick
    qtbot.keyClick(canvas, Qt.Key.Key_Plus, Qt.KeyboardModifier.ControlModifier)
    assert window.editor.view.px_per_tick == pytest.approx(before * 1.5)
    qtbot.keyClick(canvas, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert window.editor.view.px_per_tick == pytest.approx(before)


def _mean_colour(widget) -> np.ndarray:
    img = widget.grab().toImage()
    return np.array([[img.pixelColor(x, y).getRgb()[:3] for x in range(0, img.width(), 2)]
                     for y in range(0, img.height(), 2)], dtype=float).reshape(-1, 3).mean(0)


def test_the_active_tool_stands_out(qtbot, window):
    draw_button, select_button = window.editor.tool_buttons
    assert window.editor.act_draw.isChecked()
    on, off = _mean_colour(draw_button), _mean_colour(select_button)
    assert np.abs(on - off).sum() > 120, (on, off)
    qtbot.mouseClick(select_button, Qt.MouseButton.LeftButton)
    assert window.editor.canvas.mode == "select"
    assert np.abs(_mean_colour(select_button) - _mean_colour(draw_button)).sum() > 120


def test_q_quantizes_the_selection_in_one_step(qtbot, window):
    notes = [Note(130, 560, 60), Note(470, 900, 62), Note(1000, 1100, 64)]
    window.doc.set_song(Song(tracks=[Track("Mel", notes=list(notes))]))
    window.editor.view.set_grid("1/8")  # 240 ticks
    window.doc.set_selection(notes[:2])
    canvas = window.editor.canvas
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Q)
    assert sorted(window.doc.track(0).notes) == [Note(240, 670, 60), Note(480, 910, 62),
                                                 Note(1000, 1100, 64)]
    window.doc.undo_stack.undo()
    assert sorted(window.doc.track(0).notes) == notes


def test_fit_shows_every_track_top_to_bottom(qtbot, window):
    mel = Track("Mel", notes=[Note(i * 480, i * 480 + 400, 72 + i % 12) for i in range(16)])
    bass = Track("Bass", program=32, notes=[Note(i * 960, i * 960 + 900, 36 + i % 8)
                                            for i in range(8)])
    window.doc.set_song(Song(tracks=[mel, bass]))
    qtbot.mouseClick(window.editor.fit_button, Qt.MouseButton.LeftButton)
    low, high = window.editor.view.visible_pitches()
    assert low <= 36 and high >= 83
    t0, t1 = window.editor.view.visible_ticks()
    assert t0 <= 0 and t1 >= 16 * 480


# -- transport --------------------------------------------------------------------------------
def open_null_player(qtbot, window) -> None:
    window.transport.open_player("null")
    qtbot.waitUntil(lambda: window.transport.can_play, timeout=5000)


def test_play_stays_play_and_every_transport_glyph_is_in_the_font(qtbot, window):
    open_null_player(qtbot, window)
    window.doc.set_song(Song(tracks=[Track("Mel", notes=[Note(0, 9600, 60)])]))
    bar = window.transport_bar
    bar.act_play.trigger()
    assert window.transport.is_playing
    assert bar.act_play.text() == "▶ Play" and bar.act_play.isChecked()
    texts = [a.text() for a in bar.actions() if a.text()]
    assert sum("Stop" in t for t in texts) == 1
    for action in bar.actions():
        button = bar.widgetForAction(action)
        if button is None or not action.text():
            continue
        metrics = QFontMetrics(button.font())
        for ch in action.text():
            assert metrics.inFontUcs4(ord(ch)), f"{ch!r} of {action.text()!r} has no glyph"
    bar.act_stop.trigger()
    assert not window.transport.is_playing and not bar.act_play.isChecked()


def test_count_in_holds_the_playhead_and_counts_down(qtbot, window):
    open_null_player(qtbot, window)
    song = Song(tracks=[Track("Mel", notes=[Note(0, 480, 60), Note(480, 960, 62)])],
                tempos=[TempoChange(0, 240.0)])  # a 4/4 count-in bar lasts one second
    window.doc.set_song(song)
    bar = window.transport_bar
    bar.count_in.setCurrentIndex(1)
    bar.act_play.trigger()
    assert window.transport.counting_in
    assert bar.position.text().startswith("count-in")
    assert window.editor.canvas.playhead is None
    beats = int(bar.position.text().split()[-1])
    assert 1 <= beats <= 4
    qtbot.waitUntil(lambda: window.editor.canvas.playhead is not None, timeout=4000)
    assert not window.transport.counting_in
    assert re.fullmatch(r"\d+\.\d\.\d", bar.position.text())
    bar.act_stop.trigger()


def test_recorded_notes_show_while_recording(qtbot, window):
    open_null_player(qtbot, window)
    window.transport_bar.act_keys.trigger()
    keys = window.keys
    window.transport.toggle_record()
    qtbot.wait(50)
    keys.handle_key(Qt.Key.Key_A, True)
    qtbot.waitUntil(lambda: 60 in [n.pitch for n in
                                   window.editor.canvas.overlays.get("recording", [])],
                    timeout=2000)  # held: drawn while it sounds
    keys.handle_key(Qt.Key.Key_A, False)
    assert window.transport.recording and window.doc.track(0).notes == []
    window.transport.toggle_record()
    assert "recording" not in window.editor.canvas.overlays
    assert [n.pitch for n in window.doc.track(0).notes] == [60]
