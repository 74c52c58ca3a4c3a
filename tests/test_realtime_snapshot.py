"""The boundary between the live engine and its readers: everything they see is a frozen
snapshot the engine thread built; notes come in through the engine's input."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from engine.music import Note
from engine.realtime.engine import LiveConfig, LiveEngine, LiveSnapshot
from engine.synth.live import NullBackend


class OneBarSession:
    def observe(self, melody_notes, bar_ticks, ticks_per_beat, *, meter=None):
        pass

    def accompany_next(self, bar_ticks, ticks_per_beat, *, melody_notes=None, pending=None,
                       meter=None):
        return [[Note(0, ticks_per_beat, 48, 90)]]


class OneVoice:
    name, provider, roles, programs, card = "one", "CPUExecutionProvider", ("bass",), (32,), None

    def session(self, *, temperature=None, seed=None):
        return OneBarSession()


class EngineOnly(dict):
    """The engine's held-notes table, which only the engine thread may read or change while
    it runs (before start and after stop, with no engine thread, anyone may)."""

    def __init__(self, violations, engine):
        super().__init__()
        self.violations, self.engine = violations, engine

    def _check(self, what):
        t = self.engine._thread
        if t is not None and t.is_alive() and threading.current_thread() is not t:
            self.violations.append(f"{what} from {threading.current_thread().name}")

    def items(self):
        self._check("items")
        return super().items()

    def __iter__(self):
        self._check("iter")
        return super().__iter__()

    def __setitem__(self, key, value):
        self._check("set")
        super().__setitem__(key, value)


def test_readers_get_frozen_snapshots_and_never_the_engines_own_state():
    synth = NullBackend(48000, 128)
    cfg = LiveConfig(bpm=300.0, count_in_bars=0, metronome=False, use_midi_in=False,
                     thru="python", switch_interval_s=None)
    eng = LiveEngine(cfg, synth=synth, accompanist=OneVoice())
    violations: list[str] = []
    eng.capture.open_notes = EngineOnly(violations, eng)
    eng.start()
    try:
        deadline = time.monotonic() + 20
        pitch, songs = 60, 0
        while time.monotonic() < deadline:
            eng.play_note(True, pitch, 100)  # the studio's computer keys: the engine's input
            song = eng.recorded_song()  # as the GUI timer does, while the engine runs
            songs += 1
            eng.play_note(False, pitch, 0)
            pitch = 60 + (pitch - 59) % 12
            snap = eng.snapshot()
            if len(snap.melody) >= 20 and snap.parts and snap.parts[0]:
                break
            eng._stop_flag.wait(0.005)
        else:
            pytest.fail(f"the engine did not take the notes: {eng.snapshot().status}")
        assert isinstance(snap, LiveSnapshot) and isinstance(snap.melody, tuple)
        with pytest.raises(dataclasses.FrozenInstanceError):
            snap.tick = 0.0  # type: ignore[misc]
        assert snap.status.notes_in >= 20 and snap.ticks_per_second == pytest.approx(300 * 8)
        assert song.tracks[0].role == "melody" and songs >= 20
        sounded = [e for e in synth.events if e.kind == "on" and not e.scheduled]
        assert len(sounded) >= 20  # played at once, through the engine
    finally:
        eng.stop()
    assert violations == [], violations[:5]
    assert not eng.stats.errors, list(eng.stats.errors)
    final = eng.recorded_song()
    assert len(final.tracks[0].notes) >= 20 and final.tracks[1].notes
