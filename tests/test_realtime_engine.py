"""The live engine, deterministic: a virtual clock, an offline FluidSynth rendered block by block.

Timestamped MIDI goes in, audio comes out as an array; we assert where the onsets are:
- melody (thru): within one period (128 frames) after the event's input frame;
- accompaniment: scheduled exactly on the beat grid (to the sample), and heard exactly at the
  frame FluidSynth can start it (its next 64-frame block, see engine.synth.live), for 4/4, 3/4,
  6/8 and 60..240 BPM;
- a slow accompanist's bar is skipped and counted, never played late; a failing one pauses the
  accompaniment while the melody keeps sounding; a MIDI port that vanishes and returns is followed.
"""

from __future__ import annotations

import collections
import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from engine.music import Note
from engine.realtime.clock import TempoMap, click_ticks, parse_meter, quantise
from engine.realtime.commands import (SetAccompany, SetMeter, SetMetronome, SetTemperature,
                                      SetTempo)
from engine.realtime.engine import LiveConfig, LiveEngine
from engine.realtime.midi import NOTE_OFF, NOTE_ON, MidiEvent, MidiInput, match_port, parse
from engine.synth.live import FluidSynthBackend, sequencer_stamp, sound_frame

SR, PERIOD = 48000, 128


def _pinned_soundfont():
    """pretty_midi's TimGM6mb (always installed): the onsets asserted below depend on samples."""
    from engine.synth.soundfont import bundled_soundfont

    sf = bundled_soundfont()
    return sf if sf is not None and sf.is_file() else None


SF = _pinned_soundfont()
WOODBLOCK = 115  # short decay (< 9000 frames): onsets of successive beats stay separable


class FakeSession:
    def __init__(self, owner):
        self.owner = owner
        self.observed: list[tuple[list[Note], int]] = []
        self.pending_seen: list[list[Note]] = []

    def observe(self, melody_notes, bar_ticks, ticks_per_beat, *, meter=None):
        self.observed.append((list(melody_notes), bar_ticks))

    def accompany_next(self, bar_ticks, ticks_per_beat, *, melody_notes=None, pending=None,
                       meter=None):
        self.pending_seen.append(list(pending or []))
        if self.owner.fail:
            raise RuntimeError("model exploded")
        if self.owner.delay_frames:
            self.owner.clock.advance(self.owner.delay_frames)
        # One short note per bar, on quarter beat (bar index mod beats): successive notes are
        # more than a bar apart, so each onset is heard from silence (woodblock tails are short).
        beats = bar_ticks // ticks_per_beat
        t = (len(self.pending_seen) - 1) % beats * ticks_per_beat
        return [[Note(t, t + ticks_per_beat // 8, 48, 100)]]


class FakeAccompanist:
    name = "fake"
    provider = "CPUExecutionProvider"
    roles = ("bass",)
    programs = (WOODBLOCK,)
    card = None

    def __init__(self, clock=None, delay_frames=0, fail=False):
        self.clock, self.delay_frames, self.fail = clock, delay_frames, fail
        self.sessions: list[FakeSession] = []

    def session(self, *, temperature=None, seed=None):
        self.sessions.append(FakeSession(self))
        return self.sessions[-1]


class VirtualClock:
    """Sample frames rendered so far (plus time a slow fake 'spent' inferring)."""

    def __init__(self):
        self.frames = 0

    def __call__(self) -> int:
        return self.frames

    def advance(self, n: int) -> None:
        self.frames += n


def make(bpm=120.0, meter=(4, 4), *, metronome=False, count_in=0, acc=None, clock=None):
    clock = clock or VirtualClock()
    synth = FluidSynthBackend(None, sample_rate=SR, period=PERIOD, reverb=False, soundfont=SF)
    acc = acc if acc is not None else FakeAccompanist(clock)
    acc.clock = clock
    cfg = LiveConfig(bpm=bpm, meter=meter, metronome=metronome, count_in_bars=count_in,
                     use_midi_in=False, thru="python", sample_rate=SR, period=PERIOD)
    eng = LiveEngine(cfg, synth=synth, clock=clock, accompanist=acc)
    eng.start(threaded=False)
    return eng, synth, clock, acc


def drive(eng, synth, clock, seconds, inputs=()):
    """Render `seconds`; before each block, feed the events that arrived during the last one."""
    inputs = sorted(inputs)
    i, out, rendered = 0, [], clock()
    total = int(seconds * SR)
    while clock() < total:
        while i < len(inputs) and inputs[i][0] < clock():
            f, kind, pitch, vel = inputs[i]
            eng.feed(MidiEvent(f, kind, 0, pitch, vel))
            i += 1
        eng.step()
        # Render up to the clock (a slow fake may have moved it on): audio stays in step with it.
        need = clock() + PERIOD - rendered
        out.append(synth.render(need))
        rendered += need
        clock.frames = rendered
    return np.concatenate(out)[:, 0]


def onsets(audio: np.ndarray, quiet: int = 600) -> list[int]:
    """First non-zero sample after at least `quiet` exactly-silent samples (reverb is off, so a
    finished voice leaves true zeros)."""
    nz = np.flatnonzero(audio != 0.0)
    if nz.size == 0:
        return []
    gaps = np.diff(nz)
    starts = [int(nz[0])] + [int(nz[k + 1]) for k in np.flatnonzero(gaps > quiet)]
    return starts


def grid(origin: int, bpm: float, n: int) -> list[int]:
    per_beat = Fraction(60 * SR) / Fraction(bpm)
    return [origin + round(k * per_beat) for k in range(n)]


def fake_frames(origin: int, bpm: float, beats_per_bar: int, n_bars: int) -> list[int]:
    """Where FakeSession's notes belong: bar k, quarter beat k mod beats_per_bar."""
    g = grid(origin, bpm, beats_per_bar * n_bars)
    return [g[k * beats_per_bar + k % beats_per_bar] for k in range(n_bars)]


# -- pure pieces -------------------------------------------------------------------------------
def test_parse_turns_velocity_zero_into_note_off():
    assert parse([0x90, 60, 0], 5) == MidiEvent(5, NOTE_OFF, 0, 60, 0)
    assert parse([0x93, 61, 99], 7) == MidiEvent(7, NOTE_ON, 3, 61, 99)
    assert parse([0x81, 62, 40], 1).kind == NOTE_OFF
    assert parse([0xF8], 0) is None and parse([0xE0, 0, 64], 0) is None


def test_meter_and_clicks():
    assert parse_meter("6/8") == (6, 8)
    with pytest.raises(ValueError, match="meter"):
        parse_meter("4-4")
    assert click_ticks((6, 8), 480) == [0, 720]
    assert click_ticks((3, 4), 480) == [0, 480, 960]


def test_tempo_map_exact_and_changes_at_bar_lines():
    tm = TempoMap(SR, 480, 110.0, (4, 4), 1000)
    assert [tm.frame_at(480 * k) for k in range(5)] == grid(1000, 110.0, 5)
    assert tm.tick_at(tm.frame_at(1920)) == pytest.approx(1920, abs=0.01)
    f = tm.frame_at(1920)
    tm.change(1920, bpm=60.0, meter=(3, 4))
    assert tm.frame_at(1920 + 480) == f + SR
    assert tm.bar_ticks_at(2000) == 1440 and tm.bar_ticks_at(100) == 1920
    assert quantise(130, 480, 4) == 120


def test_sequencer_stamp_rule_is_what_fluidsynth_does():
    """Pin the measured FluidSynth sequencer behaviour the scheduler relies on."""
    rng = np.random.default_rng(0)
    for t in rng.integers(3000, 100_000, size=12):
        synth = FluidSynthBackend(None, reverb=False, soundfont=SF)
        synth.schedule_note_on(int(t), 0, 60, 100)
        audio = np.concatenate([synth.render(PERIOD) for _ in range((int(t) + 3000) // PERIOD)])
        synth.close()
        first = int(np.flatnonzero(audio[:, 0] != 0)[0])
        assert first == sound_frame(int(t)) + 1  # the piano's first sample is 0
    assert sequencer_stamp(1024 + 64, SR) == 1008  # clock of block 1024 is 21 ms = 1008


# -- the engine, offline -----------------------------------------------------------------------
def test_melody_thru_within_one_block():
    eng, synth, clock, _ = make(acc=FakeAccompanist(), count_in=0)
    eng.accompaniment.session = None  # melody only: every onset in the audio is a played note
    synth.set_program(0, WOODBLOCK)
    played = [(int(SR * (0.9 + 0.4 * k)) + 37 * k, p) for k, p in enumerate([60, 64, 67, 72])]
    inputs = [(f, NOTE_ON, p, 100) for f, p in played]
    inputs += [(f + 4000, NOTE_OFF, p, 0) for f, p in played]
    audio = drive(eng, synth, clock, 2.6, inputs)
    heard = onsets(audio, quiet=100)
    assert len(heard) == len(played)
    for (f, _), h in zip(played, heard):
        assert 0 < h - f <= PERIOD + 1
    song = eng.recorded_song()
    assert [n.pitch for n in song.tracks[0].notes] == [60, 64, 67, 72]
    eng.stop()


@pytest.mark.parametrize("bpm,meter", [(60.0, (4, 4)), (120.0, (3, 4)), (100.0, (6, 8)),
                                       (137.0, (4, 4)), (240.0, (4, 4))])
def test_accompaniment_on_the_beat_grid_to_the_sample(bpm, meter):
    eng, synth, clock, acc = make(bpm, meter)
    origin = eng.tempo.origin_frame
    bar_beats = Fraction(meter[0] * 4, meter[1])
    seconds = origin / SR + float(3 * bar_beats * 60 / Fraction(bpm)) + 0.3
    audio = drive(eng, synth, clock, seconds)
    expected = fake_frames(origin, bpm, int(bar_beats), 3)
    assert list(eng.stats.scheduled_frames)[:3] == expected  # exact, to the sample
    heard = onsets(audio)
    assert heard[:3] == [sound_frame(f) + 1 for f in expected]
    assert all(h - f < 64 + 2 for h, f in zip(heard, expected))  # never more than a block late
    assert eng.stats.late == 0 and eng.stats.skipped == 0
    # The session saw the lookahead (pending) and then each finished bar.
    assert len(acc.sessions[0].observed) >= 2
    song = eng.recorded_song()
    assert song.meters[0].numerator == meter[0] and song.tempos[0].bpm == bpm
    assert len(song.tracks) == 2 and song.tracks[1].role == "accompaniment"
    eng.stop()


def test_pending_and_observed_notes_are_quantised_and_relative():
    eng, synth, clock, acc = make(120.0, (4, 4), count_in=0)
    origin = eng.tempo.origin_frame
    # A note 130 ticks into bar 0 (quantised to 120), held a beat.
    f_on = eng.tempo.frame_at(130)
    f_off = eng.tempo.frame_at(130 + 480)
    drive(eng, synth, clock, origin / SR + 2.5, [(f_on, NOTE_ON, 62, 90), (f_off, NOTE_OFF, 62, 0)])
    sess = acc.sessions[0]
    # accompany_next for bar 1 ran one beat before its bar line, with bar 0 so far as pending.
    assert sess.pending_seen[1] == [Note(120, 600, 62, 90)]
    assert sess.observed[0] == ([Note(120, 600, 62, 90)], 1920)
    eng.stop()


def test_metronome_and_count_in_clicks():
    eng, synth, clock, _ = make(120.0, (3, 4), metronome=True, count_in=1,
                                acc=FakeAccompanist())
    eng.accompaniment.session = None
    origin = eng.tempo.origin_frame
    audio = drive(eng, synth, clock, origin / SR + 1.6)
    heard = onsets(audio, quiet=300)
    beats = grid(origin - 3 * SR // 2, 120.0, 6)  # 3 count-in clicks, then 3 in bar 0
    assert heard[:6] == [sound_frame(f) + 1 for f in beats]
    eng.stop()


def test_slow_inference_skips_bars_never_late():
    clock = VirtualClock()
    slow = FakeAccompanist(clock, delay_frames=SR)  # one second per bar: always past the deadline
    eng, synth, clock, _ = make(120.0, (4, 4), acc=slow, clock=clock)
    drive(eng, synth, clock, eng.tempo.origin_frame / SR + 4.0)
    assert eng.stats.skipped >= 2
    assert eng.stats.late == 0 and len(eng.stats.scheduled_frames) == 0
    assert eng.status().skipped == eng.stats.skipped
    eng.stop()


def test_failing_model_pauses_accompaniment_melody_keeps_sounding():
    eng, synth, clock, acc = make(120.0, (4, 4), acc=FakeAccompanist(fail=True), count_in=0)
    f = eng.tempo.origin_frame + 5000
    audio = drive(eng, synth, clock, f / SR + 0.5, [(f, NOTE_ON, 72, 100)])
    st = eng.status()
    assert st.accompaniment.startswith("paused: model error")
    heard = onsets(audio, quiet=100)
    assert heard and 0 < heard[-1] - f <= PERIOD + 1
    eng.stop()


def test_tempo_and_meter_commands_take_effect_at_a_bar_line():
    eng, synth, clock, _ = make(120.0, (4, 4), count_in=0)
    eng.send(SetTempo(60.0))
    eng.send(SetMeter((3, 4)))
    origin = eng.tempo.origin_frame
    drive(eng, synth, clock, origin / SR + 6.0)
    # The bar prepared first after the commands changed: bar 0 starts at origin, in 3/4 at 60.
    frames = list(eng.stats.scheduled_frames)[:3]
    assert frames == fake_frames(origin, 60.0, 3, 3)
    assert eng.recorded_song().meters[0].numerator == 3
    eng.stop()


# -- MIDI ports (fakes) ------------------------------------------------------------------------
class FakeMidiIn:
    """rtmidi.MidiIn's surface: ports, and a queue that MidiInput's thread drains."""

    def __init__(self, ports):
        self.ports = list(ports)
        self.opened: str | None = None
        self.queue: collections.deque = collections.deque()
        self.lock = threading.Lock()
        self.calls = 0  # get_message calls: the one after a pop means its handler returned

    def get_ports(self):
        return list(self.ports)

    def open_port(self, i):
        self.opened = self.ports[i]

    def open_virtual_port(self, name):
        self.opened = f"virtual:{name}"

    def close_port(self):
        self.opened = None

    def get_message(self):
        with self.lock:
            self.calls += 1
            return self.queue.popleft() if self.queue and self.opened else None

    def ignore_types(self, **kw):
        pass

    def wait_drained(self, timeout=5.0):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            with self.lock:
                if not self.queue:
                    seen = self.calls
                    break
            time.sleep(0.001)
        while self.calls <= seen + 1 and time.monotonic() - t0 < timeout:
            time.sleep(0.001)

    def emit(self, msg, delta=0.0):
        with self.lock:
            self.queue.append((list(msg), delta))
        self.wait_drained()


def test_match_port_by_index_or_substring():
    ports = ["system:midi_capture_1", "Keystation 49:out", "popmusicnet-out:out"]
    assert match_port(ports, "keystation") == 1
    assert match_port(ports, "0") == 0 and match_port(ports, 2) == 2
    assert match_port(ports, "nope") is None and match_port(ports, "9") is None


def test_port_vanishes_and_returns():
    fake = FakeMidiIn(["a:out", "Keys:out"])
    got = []
    mi = MidiInput("keys", got.append, lambda: 42, midi_in=fake)
    assert mi.state == "open" and fake.opened == "Keys:out"
    fake.emit([0x90, 60, 100])
    assert got == [MidiEvent(42, NOTE_ON, 0, 60, 100)]
    fake.ports.remove("Keys:out")
    assert mi.poll() == "vanished" and mi.state == "vanished" and fake.opened is None
    assert mi.poll() is None
    fake.ports.append("Keys:out")
    assert mi.poll() == "returned" and fake.opened == "Keys:out"
    mi.close()
    assert not mi._thread.is_alive()


def test_queued_messages_keep_their_arrival_frames():
    """Messages that waited in rtmidi's queue together are stamped backwards from the clock
    when the reader wakes, by rtmidi's delta times: they keep their spacing, and a short note's
    on and off never fall on one frame."""
    now = [1000]
    fake = FakeMidiIn(["Keys:out"])
    got = []
    mi = MidiInput("keys", got.append, lambda: now[0], midi_in=fake, sample_rate=48000)
    fake.emit([0x90, 60, 100])
    with fake.lock:  # both arrive while the reader sleeps; it wakes at 5800
        fake.queue.extend([([0x90, 62, 100], 0.05), ([0x80, 62, 0], 0.02)])
        now[0] = 5800
    fake.wait_drained()
    with fake.lock:  # a message stamped before the last delivered one is held back to it
        fake.queue.extend([([0x90, 64, 100], 0.0), ([0x80, 64, 0], 0.5)])
    fake.wait_drained()
    mi.close()
    assert [e.frame for e in got] == [1000, 5800 - 960, 5800, 5800, 5800]
    assert [e.kind for e in got] == [NOTE_ON, NOTE_ON, NOTE_OFF, NOTE_ON, NOTE_OFF]


def test_engine_keeps_playing_when_port_vanishes():
    clock = VirtualClock()
    fake = FakeMidiIn(["Keys:out"])
    synth = FluidSynthBackend(None, reverb=False, soundfont=SF)
    cfg = LiveConfig(bpm=120.0, metronome=False, count_in_bars=0, midi_in="Keys", thru="python",
                     port_poll_s=0.0)
    eng = LiveEngine(cfg, synth=synth, clock=clock, accompanist=FakeAccompanist(clock),
                     midi_in=fake)
    eng.start(threaded=False)
    drive(eng, synth, clock, eng.tempo.origin_frame / SR + 0.1)
    fake.emit([0x90, 64, 100])  # held when the keyboard is unplugged
    fake.ports.clear()
    drive(eng, synth, clock, eng.tempo.origin_frame / SR + 2.5)
    st = eng.status()
    assert "vanished" in st.message and st.midi_in.startswith("vanished")
    assert eng.stats.bars_accompanied >= 2  # the accompaniment went on
    assert eng.recorded_song().tracks[0].notes[0].pitch == 64  # the held note was closed
    fake.ports.append("Keys:out")
    drive(eng, synth, clock, clock() / SR + 0.1)
    assert eng.status().midi_in.startswith("open")
    eng.stop()


def test_missing_port_is_a_user_error():
    from engine.errors import DeviceError

    with pytest.raises(DeviceError, match="no MIDI input port matches"):
        MidiInput("nothing", lambda e: None, lambda: 0, midi_in=FakeMidiIn(["a:out"]))


class FakeMidiOut:
    def __init__(self):
        self.sent: list[list[int]] = []

    def send_message(self, msg):
        self.sent.append(list(msg))

    def close_port(self):
        pass


def test_midi_out_carries_accompaniment_and_clock():
    import time

    clock = VirtualClock()
    fake_out = FakeMidiOut()
    synth = FluidSynthBackend(None, reverb=False, soundfont=SF)
    cfg = LiveConfig(bpm=240.0, metronome=False, count_in_bars=0, use_midi_in=False,
                     thru="python", midi_out=True, midi_out_melody=True)
    eng = LiveEngine(cfg, synth=synth, clock=clock, accompanist=FakeAccompanist(clock),
                     midi_out=fake_out)
    eng.start(threaded=False)
    origin = eng.tempo.origin_frame
    f = origin + 100
    drive(eng, synth, clock, origin / SR + 2.05, [(f, NOTE_ON, 67, 80)])
    time.sleep(0.2)  # the output thread sends what is due
    eng.stop()
    sent = fake_out.sent
    timed = [m for m in sent if m != [0x90, 67, 80]]  # the melody is sent at once, not timed
    assert timed[0] == [0xFA]  # start at bar 0
    assert [0x90, 67, 80] in sent  # the melody (optional thru to MIDI out)
    assert [0x91, 48, 100] in sent  # the fake's bass on channel 2 (index 1)
    clocks = sum(1 for m in sent if m == [0xF8])
    assert 24 * 8 - 2 <= clocks <= 24 * 8 + 24  # 24 per quarter: 2 s at 240 BPM = 8 quarters
    assert sent[-1] == [0xFC]  # stop


def test_model_switch_between_bars(monkeypatch):
    import engine.realtime.accompaniment as accompaniment_mod
    from engine.realtime.commands import LoadModel

    other = FakeAccompanist()
    other.name = "other"
    other.programs = (33,)
    monkeypatch.setattr(accompaniment_mod, "load_accompanist", lambda name, providers: other)
    eng, synth, clock, first = make(120.0, (4, 4))
    other.clock = clock
    origin = eng.tempo.origin_frame
    drive(eng, synth, clock, origin / SR + 0.5)
    assert eng.send(LoadModel("other"))
    import time

    time.sleep(0.2)  # the loader thread
    drive(eng, synth, clock, origin / SR + 6.0)
    assert eng.status().model == "other"
    assert len(first.sessions[0].pending_seen) >= 1 and len(other.sessions[0].pending_seen) >= 1
    assert eng.stats.skipped == 0 and eng.stats.late == 0
    eng.stop()


def test_commands_are_dataclasses_and_nothing_else():
    eng, synth, clock, acc = make(120.0, (4, 4))
    with pytest.raises(TypeError):
        eng.send(("tempo", 60.0))
    assert eng.send(SetMetronome(True)) and eng.send(SetTemperature(0.5))
    drive(eng, synth, clock, eng.tempo.origin_frame / SR + 1.5)
    assert eng.planner.metronome and eng.config.temperature == 0.5
    assert len(acc.sessions) >= 2  # the temperature took a fresh session at the next bar
    eng.stop()


def test_accompaniment_off_and_on_by_command():
    eng, synth, clock, acc = make(240.0, (4, 4))
    origin = eng.tempo.origin_frame
    eng.send(SetAccompany(False))
    drive(eng, synth, clock, origin / SR + 2.0)
    assert eng.stats.bars_accompanied == 0
    assert eng.status().accompaniment == "paused: off by request"
    eng.send(SetAccompany(True))
    drive(eng, synth, clock, clock() / SR + 2.5)
    assert eng.stats.bars_accompanied >= 2 and eng.status().accompaniment == "on"
    eng.stop()


def test_bundled_accompanist_in_the_engine():
    """The bundled model through the same path: notes on the tick grid, on time."""
    from engine.realtime.accompaniment import load_accompanist

    acc = load_accompanist(None, "cpu")  # the bundled model ships in assets/models
    eng, synth, clock, _ = make(120.0, (3, 4), acc=acc)
    origin = eng.tempo.origin_frame
    inputs = []
    for k in range(12):
        f = origin + k * SR // 4
        inputs += [(f, NOTE_ON, 60 + (k % 8), 90), (f + SR // 5, NOTE_OFF, 60 + (k % 8), 0)]
    drive(eng, synth, clock, origin / SR + 4.6, inputs)
    st = eng.status()
    assert st.provider == "CPUExecutionProvider" and st.accompaniment == "on"
    assert st.bars_accompanied >= 3 and st.late == 0 and st.skipped == 0
    song = eng.recorded_song()
    assert song.tracks[0].role == "melody" and len(song.tracks) == 1 + len(acc.roles)
    acc_notes = sorted(n.start for t in song.tracks[1:] for n in t.notes)
    assert acc_notes, "the model played nothing"
    on_frames = sorted(eng.stats.scheduled_frames)
    assert on_frames == sorted(eng.tempo.frame_at(t) for t in acc_notes)
    eng.stop()


def test_the_key_a_player_names_reaches_the_accompaniment_session():
    from engine.music import Key

    class Recording(FakeAccompanist):
        def session(self, **kwargs):
            self.kwargs = kwargs
            return super().session(temperature=kwargs.get("temperature"),
                                   seed=kwargs.get("seed"))

    clock = VirtualClock()
    acc = Recording(clock)
    synth = FluidSynthBackend(None, sample_rate=SR, period=PERIOD, reverb=False, soundfont=SF)
    cfg = LiveConfig(key="F# minor", use_midi_in=False, thru="python", metronome=False,
                     sample_rate=SR, period=PERIOD)
    eng = LiveEngine(cfg, synth=synth, clock=clock, accompanist=acc)
    eng.start(threaded=False)
    try:
        assert acc.kwargs["key"] == Key(6, "minor", 1.0)
    finally:
        eng.stop()
    acc2 = Recording(clock)
    eng = LiveEngine(LiveConfig(use_midi_in=False, thru="python", metronome=False,
                                sample_rate=SR, period=PERIOD),
                     synth=FluidSynthBackend(None, sample_rate=SR, period=PERIOD, reverb=False,
                                             soundfont=SF), clock=clock, accompanist=acc2)
    eng.start(threaded=False)
    try:
        assert "key" not in acc2.kwargs  # no key named: the session estimates it
    finally:
        eng.stop()
