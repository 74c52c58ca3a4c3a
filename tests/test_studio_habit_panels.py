"""The panels as musicians use them: Accompany twice, Generate and Continue into new tracks,
Export's dialog and formats, Train's progress and Stop, Preferences, recovery; real widgets,
models replaced by small fakes where the engine's answer is not what is tested."""

from __future__ import annotations

import sys
import wave

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QFileDialog

from engine.music import MeterChange, Note, Song, Track
from studio.app import services

pytest.importorskip("pytestqt")

from studio_fixtures import make_window  # noqa: E402
from test_studio_habits import when_dialog, write_mid  # noqa: E402


def tune(n_bars: int = 4) -> Song:
    notes = [Note((b * 4 + q) * 480, (b * 4 + q + 1) * 480 - 20, 60 + (b + q) % 8, 90)
             for b in range(n_bars) for q in range(4)]
    return Song(tracks=[Track("Melody", 0, role="melody", notes=notes)], title="tune")


@pytest.fixture
def window(qtbot, tmp_path):
    return make_window(qtbot, tmp_path, panels=True)


def panel(window, title: str):
    p = next(p for p in window.panels if p.TITLE == title)
    p.check()
    return p


def fake_accompany(song: Song, *, model, melody_track, temperature, seed, style=None,
                   key=None) -> tuple[Song, list]:
    out = song.copy()
    mel = song.tracks[melody_track].notes
    for name, down in (("Alto", 5), ("Bass", 24)):
        out.tracks.append(Track(name, 0, role="accompaniment",
                                notes=[Note(n.start, n.end, n.pitch - down - (seed or 0) % 3, 70)
                                       for n in mel]))
    return out, []


def test_accompany_twice_replaces_the_voices_in_one_step(qtbot, window, monkeypatch):
    monkeypatch.setattr(services, "accompany_with_chords", fake_accompany)
    window.doc.set_song(tune())
    acc = panel(window, "Accompany")
    qtbot.mouseClick(acc.run_track, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.doc.song.tracks) == 3, timeout=5000)
    first = [list(t.notes) for t in window.doc.song.tracks]
    window.doc.set_current_track(0)
    acc.seed.setValue(1)
    qtbot.waitUntil(acc.run_track.isEnabled, timeout=5000)
    qtbot.mouseClick(acc.run_track, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Replaced" in acc.status.text(), timeout=5000)
    song = window.doc.song
    assert [t.name for t in song.tracks] == ["Melody", "Alto", "Bass"]
    assert song.tracks[1].notes != first[1] and len(song.tracks[1].notes) == len(first[1])
    second = [list(t.notes) for t in song.tracks]
    # Again on a selection (bar 2): only that bar of each voice changes.
    window.doc.set_current_track(0)
    window.doc.set_selection([n for n in window.doc.track(0).notes if 1920 <= n.start < 3840])
    acc.seed.setValue(2)
    qtbot.waitUntil(acc.run_selection.isEnabled, timeout=5000)
    qtbot.mouseClick(acc.run_selection, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.doc.undo_stack.count() == 3, timeout=5000)
    song = window.doc.song
    assert [t.name for t in song.tracks] == ["Melody", "Alto", "Bass"]
    for now, before in zip(song.tracks[1:], second[1:]):
        assert [n for n in now.notes if not 1920 <= n.start < 3840] == [
            n for n in before if not 1920 <= n.start < 3840]
        assert [n for n in now.notes if 1920 <= n.start < 3840] != [
            n for n in before if 1920 <= n.start < 3840]
    window.doc.undo_stack.undo()
    window.doc.undo_stack.undo()  # one step back: the first accompaniment
    assert [list(t.notes) for t in window.doc.song.tracks] == first
    window.doc.undo_stack.undo()
    assert [t.name for t in window.doc.song.tracks] == ["Melody"]


class FakeGenerator:
    conditional, styles = False, ()

    def __init__(self):
        self.meters = []

    def generate(self, n_bars, *, seed=0, temperature=1.0, style=None, bpm=100.0, program=0,
                 meter=(4, 4)):
        self.meters.append(meter)
        bar = meter[0] * 1920 // meter[1]
        notes = [Note(b * bar, b * bar + 240, 84, 80) for b in range(n_bars)]
        return Song(tracks=[Track("generated", program, notes=notes)])


class FakeContinuer:
    def continue_song(self, song, n_bars, *, seed=0, temperature=None):
        out = song.copy()
        end = max(n.end for n in song.tracks[0].notes)
        out.tracks.append(Track("continued", notes=[Note(end + i * 480, end + i * 480 + 400, 70)
                                                    for i in range(4 * n_bars)]))
        return out


def test_generate_and_continue_write_new_tracks_in_the_songs_meter(qtbot, window, monkeypatch):
    gen_model, cont_model = FakeGenerator(), FakeContinuer()
    monkeypatch.setattr(services, "bar_generator", lambda name: gen_model)
    monkeypatch.setattr(services, "continuer", lambda name: cont_model)
    song = tune(8)
    song.meters = [MeterChange(0, 3, 4)]
    window.doc.set_song(song)
    melody = list(window.doc.track(0).notes)
    gen = panel(window, "Generate")
    window.editor.view.px_per_tick = 0.2
    window.editor.view.set_scroll(x=0)
    window.doc.set_cursor(1440 * 6 + 10)  # bar 7 of a 3/4 song, far right of the view
    gen.bars.setValue(2)
    qtbot.waitUntil(gen.generate_button.isEnabled, timeout=5000)
    qtbot.mouseClick(gen.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.doc.song.tracks) == 2, timeout=5000)
    assert window.doc.track(0).notes == melody  # the melody is left alone
    new = window.doc.track(1)
    assert new.name.startswith("Generated") and window.doc.current_track == 1
    assert gen_model.meters == [(3, 4)]
    assert [n.start for n in new.notes] == [1440 * 6, 1440 * 7]
    t0, t1 = window.editor.view.visible_ticks()
    assert t0 <= 1440 * 6 < t1  # scrolled to what was written
    p0, p1 = window.editor.view.visible_pitches()
    assert p0 <= 84 <= p1

    window.doc.set_current_track(0)
    window.doc.set_cursor(1440 * 4)
    qtbot.waitUntil(gen.continue_button.isEnabled, timeout=5000)
    qtbot.mouseClick(gen.continue_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.doc.song.tracks) == 3, timeout=5000)
    assert window.doc.track(0).notes == melody
    assert window.doc.track(1).name.startswith("Continuation")
    window.doc.undo_stack.undo()
    assert len(window.doc.song.tracks) == 2


def test_export_never_proposes_the_source_and_writes_rate_and_depth(qtbot, window, tmp_path):
    src = write_mid(tune(), tmp_path / "songs" / "tune.mid")
    window.project.open(src, prompt=False)
    export = panel(window, "Export")
    seen = {}

    def midi(d: QFileDialog):
        seen["title"] = d.windowTitle()
        seen["proposed"] = d.selectedFiles()[0]
        d.reject()

    when_dialog(QFileDialog, midi)
    qtbot.mouseClick(export.midi_button, Qt.MouseButton.LeftButton)
    assert seen["title"] == "Export MIDI file"
    assert seen["proposed"] != src and seen["proposed"].endswith(".mid")
    assert seen["proposed"].startswith(str(tmp_path / "songs"))

    export.rate.setCurrentText("44100 Hz")
    export.depth.setCurrentText("24-bit")
    out = tmp_path / "out" / "tune.wav"
    out.parent.mkdir()

    def wav(d: QFileDialog):
        seen["wav_title"] = d.windowTitle()
        d.selectFile(str(out))
        d.accept()

    when_dialog(QFileDialog, wav)
    qtbot.mouseClick(export.wav_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Exported" in export.status.text() or export.notice.isVisible(),
                    timeout=60_000)
    assert out.exists(), export.notice.text()
    assert seen["wav_title"] == "Export WAV audio"
    with wave.open(str(out)) as w:
        assert w.getframerate() == 44100 and w.getsampwidth() == 3

    def again(d: QFileDialog):  # the next export starts where the last one went
        seen["folder"] = d.directory().absolutePath()
        d.reject()

    when_dialog(QFileDialog, again)
    qtbot.mouseClick(export.midi_button, Qt.MouseButton.LeftButton)
    assert seen["folder"] == str(out.parent)


FAKE_TRAINER = r"""
import json, sys
def line(**r):
    print(json.dumps(r), flush=True)
line(event="data", stage="data", seconds=1.0)
for e in range(2):
    line(event="epoch", stage="vae", epoch=e, epochs=2, losses={"recon": 1.0 - e / 4,
         "kl with a rather long name": 0.5}, seconds=2.0 + e)
line(event="epoch", stage="melody_rnn", epoch=0, epochs=4, losses={"nll": 3.0}, seconds=5.0)
sys.stdin.readline()  # waits until the test stops it
"""


def test_train_shows_the_whole_run_and_says_what_stop_did(qtbot, window, monkeypatch):
    train = panel(window, "Train")
    monkeypatch.setattr("studio.app.train.panel.python", lambda: sys.executable)
    monkeypatch.setattr(train, "command", lambda: ["-c", FAKE_TRAINER, "x"])
    train.kind.setCurrentText("accompanist")
    qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    assert "first run" in train.state_label.text()
    assert train.progress.maximum() == 0  # busy, not a frozen 0 %
    qtbot.waitUntil(lambda: "melody_rnn" in train.state_label.text(), timeout=20_000)
    # vae done (1 of 3 stages) and a quarter of melody_rnn: 41 % of the run, not 25 %
    assert train.progress.value() == int(100 * (1 + 1 / 4) / 3)
    assert "stage 2/3" in train.state_label.text()
    chart = train.chart
    chart.resize(260, 200)
    legend = chart.legend_layout()
    assert len(legend) == 3
    metrics = QFontMetrics(chart._font())
    for i, (name, rect) in enumerate(legend):
        assert chart.rect().contains(rect.toRect().adjusted(0, 0, -1, -1)), (name, rect)
        assert metrics.horizontalAdvance(name) <= rect.width() - 16
        for _, other in legend[i + 1:]:
            assert not rect.intersects(other)
    chart.grab()
    qtbot.mouseClick(train.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: train.process is None, timeout=10_000)
    text = train.state_label.text()
    assert text.startswith("Stopped") and "see the log" not in text


def test_preferences_refresh_midi_ports_and_show_the_soundfont_whole(qtbot, window, monkeypatch):
    from studio.app.preferences import dialog as prefs

    ports = {"in": ["Keyboard A"], "out": []}
    monkeypatch.setattr(prefs, "midi_ports", lambda kind: (list(ports[kind]), ""))
    sf = "/usr/share/sounds/sf2/FluidR3_GM_with_a_long_name.sf2"
    window.settings.soundfont = sf
    d = prefs.PreferencesDialog(window.settings, window)
    qtbot.addWidget(d)
    d.show()
    qtbot.waitExposed(d)
    assert d.soundfont.width() > d.soundfont.fontMetrics().horizontalAdvance(sf)
    d.midi_in.setCurrentText("Keyboard A")
    ports["in"] = ["Keyboard A", "Keyboard B"]
    qtbot.mouseClick(d.refresh_button, Qt.MouseButton.LeftButton)
    assert [d.midi_in.itemText(i) for i in range(d.midi_in.count())] == [
        prefs.NONE, "Keyboard A", "Keyboard B"]
    assert d.midi_in.currentText() == "Keyboard A"
    d.reject()


def test_recovered_work_keeps_its_file_name(qtbot, tmp_path):
    from studio_fixtures import make_window as mk

    w = mk(qtbot, tmp_path)
    w.doc.set_song(tune())
    project = tmp_path / "grace.pmn"
    assert w.project._save_to(project)
    w.editor.select_all()
    w.editor.transpose(2)
    w.project.autosave()  # then the studio dies: no clean shutdown
    w.project._timer.stop()
    w2 = mk(qtbot, tmp_path)
    assert w2.project.offer_recovery(ask=lambda text: True)
    assert w2.project.path == project
    assert "grace" in w2.windowTitle() and w2.doc.modified


def test_live_shows_one_clock_and_takes_the_computer_keys(qtbot, window):
    assert services.capability("live"), services.capability("live").reason
    window.settings.audio_backend = "null"  # no sound card needed: the engine's silent synth
    song = tune()
    song.tempos[0] = song.tempos[0].__class__(0, 300.0)
    window.doc.set_song(song)
    acc = panel(window, "Accompany")
    window.transport_bar.act_keys.trigger()
    qtbot.mouseClick(acc.live_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: acc.live.running, timeout=30_000)
    bar = window.transport_bar
    qtbot.waitUntil(lambda: (window.editor.canvas.playhead or 0) > 480, timeout=10_000)
    window.keys.handle_key(Qt.Key.Key_A, True)  # C4 through the engine's input
    qtbot.waitUntil(lambda: any(n.pitch == 60 for n in acc.live.engine.snapshot().melody),
                    timeout=5000)
    window.keys.handle_key(Qt.Key.Key_A, False)
    # The transport and the Live panel read the same clock in the same words.
    qtbot.waitUntil(lambda: bar.position.text() != "1.1.1"
                    and bar.position.text() in acc.live_status.text(), timeout=5000)
    qtbot.mouseClick(acc.live_button, Qt.MouseButton.LeftButton)
    assert not acc.live.running
    names = [t.name for t in window.doc.song.tracks]
    assert "Live Melody" in names
    take = window.doc.song.tracks[names.index("Live Melody")]
    assert [n.pitch for n in take.notes] == [60]
