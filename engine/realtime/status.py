"""What the live engine shows its readers: the counters it keeps (`Stats`, engine thread only),
and the immutable `LiveStatus` and `LiveSnapshot` it builds from them on its own thread and swaps
in whole, so that readers (the studio's timer, the CLI) never lock and never touch its state."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.music import Note


@dataclass
class Stats:
    """The engine's counters and notices. Written by the engine thread; `dropped` also by the
    MIDI thread (one int increment)."""

    late: int = 0
    skipped: int = 0
    bars_accompanied: int = 0
    notes_in: int = 0
    dropped: int = 0
    errors: deque = field(default_factory=lambda: deque(maxlen=8))
    message: str = ""  # the latest notice for the status line
    inference_ms: deque = field(default_factory=lambda: deque(maxlen=10_000))
    scheduled_frames: deque = field(default_factory=lambda: deque(maxlen=100_000))
    lead_frames: deque = field(default_factory=lambda: deque(maxlen=100_000))  # per bar: how far
    # ahead of the clock its first note was stamped (the margin left; < margin_frames = late)
    engine_cpu_s: float = 0.0  # CPU time of the engine thread (time.thread_time)

    def notice(self, message: str, error: bool = True) -> None:
        """Show `message` on the status line (and keep it among the errors)."""
        if error:
            self.errors.append(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """What the GUI / CLI shows. Immutable: the engine swaps in a new one, readers never lock."""

    running: bool = False
    bar: int = -1  # bar being heard (0 = first bar after the count-in; negative in the count-in)
    beat: float = 0.0
    bpm: float = 0.0
    meter: str = ""
    late: int = 0
    skipped: int = 0
    bars_accompanied: int = 0
    xruns: int = 0
    provider: str = ""
    model: str = ""
    accompaniment: str = "off"  # "on" | "off" | "paused: <why>"
    midi_in: str = ""
    thru: str = ""
    notes_in: int = 0
    dropped: int = 0
    inference_ms: float = 0.0
    errors: tuple[str, ...] = ()
    message: str = ""

    def line(self) -> str:
        return (f"bar {self.bar:>4}  beat {self.beat:4.1f}  {self.bpm:g} BPM {self.meter}  "
                f"late={self.late} skipped={self.skipped} xruns={self.xruns} "
                f"provider={self.provider or '-'} acc={self.accompaniment.split(':')[0]} "
                f"midi={self.midi_in or '-'} notes={self.notes_in}"
                + (f"  [{self.message}]" if self.message else ""))


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    """Everything a reader (the studio, the CLI) may see of a performance, built on the engine's
    thread and swapped in whole: readers never touch the engine's own lists, its tempo map or
    the synth. Ticks count from bar 0 (negative in the count-in)."""

    status: LiveStatus = LiveStatus()
    tick: float = 0.0  # musical time when it was built
    wall: float = 0.0  # time.monotonic() when it was built
    ticks_per_second: float = 0.0  # to move `tick` on between snapshots
    melody: tuple[Note, ...] = ()  # as played; held notes end at `tick`
    parts: tuple[tuple[Note, ...], ...] = ()  # the accompaniment as scheduled, per voice
    planned: tuple[Note, ...] = ()  # accompaniment scheduled but not started yet (the next bar)
    names: tuple[str, ...] = ()  # the voices' names
    programs: tuple[int, ...] = ()
    drums: tuple[bool, ...] = ()
    segments: tuple = ()  # the tempo map's segments (engine.realtime.clock.Segment, frozen)

    def tick_at(self, wall: float) -> float:
        """Musical time at `wall` (time.monotonic()), moved on from the snapshot's."""
        return self.tick + max(0.0, wall - self.wall) * self.ticks_per_second


def bar_and_beat(tempo, bars: Sequence, tick: float, ticks_per_beat: int) -> tuple[int, float]:
    """The bar heard at `tick` (negative in the count-in) and the beat in it. `bars`: the bars
    planned so far (objects with index and start), in order."""
    if tick < 0:
        length = tempo.bar_ticks_at(tick)
        bar = -int(-tick // length) - 1
        return bar, (tick - bar * length) / ticks_per_beat
    for b in reversed(bars):
        if b.start <= tick:
            return b.index, (tick - b.start) / ticks_per_beat
    return -1, 0.0


def snapshot(status: LiveStatus, *, tick: float, wall: float, ticks_per_second: float,
             melody: Sequence[Note], parts: Sequence[Sequence[Note]], voices,
             segments: Sequence = ()) -> LiveSnapshot:
    """The snapshot of a performance at `tick`; `voices` (engine.realtime.voices.Voices) names
    the parts (parts beyond the current model's voices keep a neutral name)."""
    parts = tuple(tuple(notes) for notes in parts)
    n = len(parts)
    names, programs, drums = voices.names, voices.programs, voices.drums
    return LiveSnapshot(
        status=status, tick=tick, wall=wall, ticks_per_second=ticks_per_second,
        melody=tuple(sorted(melody)), parts=parts,
        planned=tuple(sorted(n for notes in parts for n in notes if n.start >= tick)),
        names=tuple(str(names[i]) if i < len(names) else f"part {i + 1}" for i in range(n)),
        programs=tuple(programs[i] if i < len(programs) else 0 for i in range(n)),
        drums=tuple(bool(drums[i]) if i < len(drums) else False for i in range(n)),
        segments=tuple(segments))
