"""Bars on the beat: the planner owns musical time (a TempoMap over the synth's sample clock) and
the bars planned so far. One lookahead before each bar it applies the changes asked for, stamps
the metronome and MIDI clock, runs the accompanist for that bar from the bars before it and
stamps its notes at exact sample frames into the synth's sequencer. If inference ends after the
bar's deadline the bar is skipped and counted: never played late. After each bar line it lets the
accompanist observe the finished bar."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from engine.music import Note
from engine.realtime.clock import TempoMap, bar_ticks, click_ticks
from engine.realtime.midi import CLOCK, START
from engine.synth.live import BLOCK, METRONOME_CHANNEL

log = logging.getLogger(__name__)

CLICK_HIGH, CLICK_LOW = 76, 77  # GM hi / low wood block


@dataclass
class Bar:
    index: int
    start: int  # tick
    length: int  # ticks
    meter: tuple[int, int]
    prepared: str = ""  # "scheduled" | "skipped" | "paused" | "off" | "error"

    @property
    def end(self) -> int:
        return self.start + self.length


class Planner:
    """Engine thread only. `changes` collects what takes effect at the next bar planned:
    "tempo" (BPM), "meter" ((n, d)), "model" (a loaded accompanist), "reload_session"."""

    def __init__(self, config, synth, clock, stats, capture, accompaniment) -> None:
        self.config, self.synth, self.clock, self.stats = config, synth, clock, stats
        self.capture, self.accompaniment = capture, accompaniment
        self.tempo: TempoMap | None = None
        self.bars: list[Bar] = []
        self.metronome = config.metronome
        self.changes: dict = {}
        self.midi_output = None
        self._next_observe = 0

    @property
    def margin_frames(self) -> int:
        """How far ahead of the clock an event must be stamped to be dispatched on time: the
        synth's render-ahead (two periods), the sequencer's block (see engine.synth.live) and a
        millisecond of clock granularity."""
        return 2 * self.synth.period + 2 * BLOCK + self.synth.sample_rate // 1000

    def begin(self, midi_output=None) -> None:
        """Musical time starts: bar 0 after the count-in, and at least the lookahead plus a
        safety margin from now, so that bar 0 can be prepared like every other bar."""
        cfg, sr = self.config, self.synth.sample_rate
        self.midi_output = midi_output
        now = self.clock()
        beat = 60.0 * sr / cfg.bpm
        count_in = cfg.count_in_bars * bar_ticks(cfg.meter, cfg.ticks_per_beat) / cfg.ticks_per_beat
        lead = max(count_in * beat, (cfg.lookahead_beats + 0.25) * beat) + self.margin_frames
        origin = now + int(round(lead))
        self.tempo = TempoMap(sr, cfg.ticks_per_beat, cfg.bpm, cfg.meter, origin)
        self._schedule_count_in()
        if self.midi_output and cfg.clock_out:
            self.midi_output.send_at(origin, (START,))

    def advance(self, now: int) -> bool:
        """Observe every bar whose end has passed, then plan every bar whose lookahead has come.
        True if it did either."""
        tempo, look, moved = self.tempo, self.config.lookahead_beats, False
        while (self._next_observe < len(self.bars)
               and now >= tempo.frame_at(self.bars[self._next_observe].end)):
            self._observe(self.bars[self._next_observe], now)
            self._next_observe += 1
            moved = True
        while True:
            start = self.bars[-1].end if self.bars else 0
            lead = int(round(look * tempo.beat_frames(start)))
            if now < tempo.frame_at(start) - lead:
                break
            self._prepare(start)
            now = self.clock()
            moved = True
        return moved

    def _bar_notes(self, bar: Bar, now_tick: int | None) -> list[Note]:
        return self.capture.bar_notes(bar.start, bar.length, now_tick, self.config.ticks_per_beat,
                                      self.accompaniment.steps_per_beat())

    def _apply_changes(self, start: int) -> None:
        ch, self.changes = self.changes, {}
        acc = self.accompaniment
        if "tempo" in ch or "meter" in ch:
            try:
                self.tempo.change(start, bpm=ch.get("tempo"), meter=ch.get("meter"))
            except ValueError as exc:
                self.stats.errors.append(str(exc))
        if "model" in ch:
            acc.set_model(ch["model"])
            self.stats.message = (f"model {getattr(ch['model'], 'name', '?')} from bar "
                                  f"{len(self.bars)}")
        elif ch.get("reload_session") and acc.model is not None:
            acc.set_model(acc.model)

    def _prepare(self, start: int) -> None:
        """Plan the bar starting at tick `start`: metronome, then the accompaniment (or a skip)."""
        self._apply_changes(start)
        tempo, tpb = self.tempo, self.config.ticks_per_beat
        meter = tempo.meter_at(start)
        bar = Bar(len(self.bars), start, bar_ticks(meter, tpb), meter)
        self.bars.append(bar)
        if self.metronome:
            for i, t in enumerate(click_ticks(meter, tpb)):
                self._click(tempo.frame_at(start + t), i == 0)
        if self.midi_output is not None and self.config.clock_out:
            for k in range(bar.length * 24 // tpb):
                self.midi_output.send_at(tempo.frame_at(start + k * tpb // 24), (CLOCK,))
        session = self.accompaniment.session
        if session is None:
            bar.prepared = "paused" if self.accompaniment.paused_reason else "off"
            return
        deadline = tempo.frame_at(start) - self.margin_frames
        if self.clock() > deadline:  # already too late to start: skip without running
            self._skip(bar)
            return
        prev = self.bars[-2] if len(self.bars) >= 2 else None
        now_tick = int(tempo.tick_at(self.clock()))
        pending = self._bar_notes(prev, now_tick) if prev is not None else []
        t0 = time.perf_counter()
        try:
            parts = session.accompany_next(bar.length, tpb, pending=pending, meter=bar.meter)
        except Exception as exc:
            log.exception("accompaniment failed")
            bar.prepared = "error"
            self.accompaniment.pause(f"model error: {type(exc).__name__}: {exc}")
            return
        self.stats.inference_ms.append((time.perf_counter() - t0) * 1000.0)
        if self.clock() > deadline:
            self._skip(bar)
            return
        self._schedule_parts(bar, parts)

    def _skip(self, bar: Bar) -> None:
        bar.prepared = "skipped"
        self.stats.skipped += 1
        log.info("bar %d skipped: inference missed its deadline", bar.index)

    def _schedule_parts(self, bar: Bar, parts: Sequence[Sequence[Note]]) -> None:
        tempo, channels = self.tempo, self.accompaniment.voices.channels
        recorded = self.accompaniment.parts
        events = []  # (frame, is_on, channel, pitch, velocity)
        for i, notes in enumerate(parts):
            if i >= len(channels):
                break
            ch = channels[i]
            for n in notes:
                s = max(int(n.start), 0)
                e = min(int(n.end), bar.length)
                if s >= bar.length or e <= s:
                    continue
                events.append((tempo.frame_at(bar.start + s), True, ch, n.pitch, n.velocity))
                events.append((tempo.frame_at(bar.start + e), False, ch, n.pitch, 0))
                recorded[i].append(Note(bar.start + s, bar.start + e, n.pitch, n.velocity))
        events.sort(key=lambda e: (e[0], e[1]))  # offs first at equal frames: re-strikes survive
        now = self.clock()
        limit = now + self.margin_frames
        if events:
            self.stats.lead_frames.append(events[0][0] - now)
        for frame, on, ch, pitch, vel in events:
            if on and frame < limit:
                self.stats.late += 1  # would sound late: dropped (never happens when on time)
                continue
            if on:
                self.synth.schedule_note_on(frame, ch, pitch, vel)
                self.stats.scheduled_frames.append(frame)
            else:
                self.synth.schedule_note_off(frame, ch, pitch)
            if self.midi_output is not None:
                self.midi_output.send_at(frame, ((0x90 if on else 0x80) | ch, pitch, vel))
        bar.prepared = "scheduled"
        self.stats.bars_accompanied += 1

    def _observe(self, bar: Bar, now: int) -> None:
        session = self.accompaniment.session
        if session is None:
            return
        notes = self._bar_notes(bar, int(self.tempo.tick_at(now)))
        try:
            session.observe(notes, bar.length, self.config.ticks_per_beat, meter=bar.meter)
        except Exception as exc:
            log.exception("observe failed")
            self.accompaniment.pause(f"model error: {type(exc).__name__}: {exc}")

    def _click(self, frame: int, accent: bool) -> None:
        pitch = CLICK_HIGH if accent else CLICK_LOW
        vel = self.config.metronome_velocity
        self.synth.schedule_note_on(frame, METRONOME_CHANNEL, pitch, vel)
        self.synth.schedule_note_off(frame + self.synth.sample_rate // 20, METRONOME_CHANNEL, pitch)

    def _schedule_count_in(self) -> None:
        cfg, tempo, tpb = self.config, self.tempo, self.config.ticks_per_beat
        length = bar_ticks(cfg.meter, tpb)
        for b in range(cfg.count_in_bars, 0, -1):
            for i, t in enumerate(click_ticks(cfg.meter, tpb)):
                self._click(tempo.frame_at(-b * length + t), i == 0)
