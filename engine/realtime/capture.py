"""The melody as played: MIDI events from the input's thread through a bounded queue, turned by
the engine thread into notes in musical time (held notes stay open until their note-off), and
cut per bar on the model's grid for the accompanist."""

from __future__ import annotations

import queue
from collections.abc import Iterator

from engine.music import Note
from engine.realtime.clock import quantise
from engine.realtime.midi import CONTROL, NOTE_ON, MidiEvent

QUEUE_SIZE = 4096


class Capture:
    """`put` from any thread (never blocks); everything else on the engine thread only."""

    def __init__(self, stats) -> None:
        self.stats = stats
        self.events: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self.open_notes: dict[tuple[int, int], tuple[int, int]] = {}  # (ch, pitch): (tick, vel)
        self.melody: list[Note] = []  # finished notes, ticks from bar 0

    def put(self, ev: MidiEvent) -> None:
        try:
            self.events.put_nowait(ev)
        except queue.Full:
            self.stats.dropped += 1

    def drain(self, tempo) -> None:
        """Take every queued event: note-ons open notes, note-offs close them."""
        while True:
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                return
            if ev.kind == CONTROL:
                continue
            tick = int(round(tempo.tick_at(ev.frame)))
            key = (ev.channel, ev.data1)
            if ev.kind == NOTE_ON:
                self.stats.notes_in += 1
                if key in self.open_notes:  # re-struck without a note-off: close the old one
                    self.close(key, tick)
                self.open_notes[key] = (tick, ev.data2)
            else:
                self.close(key, tick)

    def close(self, key: tuple[int, int], end_tick: int) -> None:
        opened = self.open_notes.pop(key, None)
        if opened is None:
            return
        start, vel = opened
        if end_tick <= 0:
            return  # played and released inside the count-in: not part of the song
        start = max(start, 0)
        self.melody.append(Note(start, max(end_tick, start + 1), key[1], max(vel, 1)))

    def release_all(self, end_tick: int) -> Iterator[tuple[int, int]]:
        """Close every held note at `end_tick` (the keyboard went away), yielding each
        (channel, pitch) before it is closed."""
        for key in list(self.open_notes):
            yield key
            self.close(key, end_tick)

    def played(self, tick: float) -> list[Note]:
        """The melody so far, notes still held ending at `tick`."""
        melody = list(self.melody)
        for (ch, p), (s, v) in self.open_notes.items():
            if int(tick) > max(s, 0):
                melody.append(Note(max(s, 0), int(tick), p, max(v, 1)))
        return melody

    def bar_notes(self, start: int, length: int, now_tick: int | None, ticks_per_beat: int,
                  steps_per_beat: int) -> list[Note]:
        """Melody notes that start in the bar [start, start + length), relative to its start and
        quantised to the model's grid; notes still held end at `now_tick` (at least one step)."""
        spb, tpb = steps_per_beat, ticks_per_beat
        step = tpb // spb
        lo, hi = start, start + length
        held = []
        if now_tick is not None:
            held = [Note(max(s, 0), max(now_tick, max(s, 0) + 1), p, max(v, 1))
                    for (ch, p), (s, v) in self.open_notes.items()]
        out = []
        for n in list(self.melody) + held:
            if lo <= n.start < hi or (n.start < lo < n.end and n in held):
                s = quantise(n.start - lo, tpb, spb)
                e = max(quantise(n.end - lo, tpb, spb), s + step)
                if s >= length:
                    continue
                out.append(Note(max(s, 0), e, n.pitch, n.velocity))
        out.sort()
        return out
