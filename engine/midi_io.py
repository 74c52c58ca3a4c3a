"""Standard MIDI Files <-> `engine.music.Song`, through mido (no hand-written parser).

Why mido and not pretty_midi: pretty_midi converts every event to seconds, so ticks, meters and
tempo maps only come back approximately. mido gives us the file's own ticks, which lets a
read -> write -> read round trip be tick-exact. The file's `ticks_per_beat` is kept as it is.

Reading rules (documented here because they are choices):
- Type 0 and type 1 files are read; type 2 (independent patterns) is refused.
- Tempo and time-signature events are collected from *every* track (some writers put them in
  the last track), merged into the Song's maps. A tempo outside 10..500 BPM is refused, and so
  is a time signature more than `MAX_TRAILING_BARS` bars after the last note ends (it would
  add that many silent bars to every command's work).
- Each (file track, MIDI channel) pair that carries notes becomes one `Track`; a track with
  channel events but no notes (e.g. an empty part written by us) becomes an empty `Track`.
  Channel 10 (index 9) is the drum channel. A track without notes and without channel events
  (a type-1 "conductor" track) gives its name to `Song.title` when it is the first track.
- Program: the first program change of that channel in that track (else the last one on that
  channel anywhere before the first note, else 0). Volume (CC7) and pan (CC10): the first value
  of that channel in that track, else the defaults (100, 64). Later changes are not modelled.
- Role: `melody` or `accompaniment` only from an explicit marker, a text or marker meta event
  `popmusicnet:role=<role>` in the track (which `write_midi` writes). A track merely *named*
  "melody", "soprano" or "lead" stays `other`; `Song.melody_track()` then picks by pitch.
- Notes: note-on with velocity 0 is a note-off. At each tick, note-offs that close a note begun
  earlier are applied before the note-ons of that tick (tolerates writers that emit the new
  note-on before the old note-off), then the remaining note-offs. A note-on for a pitch that is
  still sounding on that channel is an *overlap*; a note whose off is at its own start tick is
  *zero-length*; a note never switched off is *unterminated*. By default these are errors (the
  message suggests `--lenient`); `lenient=True` repairs them (an overlapped note ends where the
  next one starts, zero-length notes are dropped, unterminated ones end at the track's last
  event) and logs how many were repaired.

Writing is engine.midi_write's (re-exported here: `write_midi`, `song_to_midifile`,
`assign_channels`).
"""

from __future__ import annotations

import bisect
import logging
import struct
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import MidiFileError
from engine.music import (
    ROLE_OTHER,
    ROLES,
    MeterChange,
    Note,
    Song,
    TempoChange,
    Track,
)
from engine.midi_write import (DRUM_CHANNEL, ROLE_MARKER, assign_channels, song_to_midifile,
                               write_midi)

log = logging.getLogger(__name__)

MIN_BPM = 10.0
MAX_BPM = 500.0
LENIENT_HINT = "(refused under --strict; without it such notes are repaired)"

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_SECONDS = 3600.0  # one hour
MAX_BEATS = 20_000  # quarter notes; bounds pianorolls at 4 steps a beat to 80,000 steps
MAX_TRACKS = 256  # (file track, channel) pairs that become Tracks
MAX_NOTES = 500_000
MAX_BARS = 20_000
MAX_TRAILING_BARS = 64  # bars a meter change may add after the last note ends

__all__ = ["read_midi", "read_midi_bytes", "write_midi", "require_notes", "song_to_midifile",
           "midifile_to_song", "assign_channels", "check_song_size", "MIN_BPM", "MAX_BPM", "DRUM_CHANNEL",
           "ROLE_MARKER", "MAX_FILE_BYTES", "MAX_SECONDS", "MAX_BEATS", "MAX_TRACKS", "MAX_NOTES",
           "MAX_BARS", "MAX_TRAILING_BARS"]


# -- reading -----------------------------------------------------------------------------------
def read_midi(path: str | Path, *, lenient: bool = False) -> Song:
    """Read a type 0/1 Standard MIDI File into a Song.

    Raises `MidiFileError(path, reason)` for anything that is not a readable, sane MIDI file.
    A file without notes is returned as a Song without notes: callers that need notes call
    `require_notes`.
    """
    import mido

    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise MidiFileError(path, "file not found") from None
    except OSError as exc:
        raise MidiFileError(path, f"cannot read ({exc.strerror or exc})") from None
    if path.is_dir():
        raise MidiFileError(path, "is a directory, not a MIDI file")
    if size == 0:
        raise MidiFileError(path, "empty file (0 bytes)")
    if not path.is_file():
        raise MidiFileError(path, "not a regular file")
    if size > MAX_FILE_BYTES:
        raise MidiFileError(path, f"too large for a MIDI file ({size / 2**20:.1f} MiB; "
                                  f"the limit is {MAX_FILE_BYTES // 2**20} MiB)")
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
        if head != b"MThd":
            raise MidiFileError(path, "not a MIDI file (no MThd header)")
    except PermissionError:
        raise MidiFileError(path, "permission denied") from None
    except OSError as exc:
        raise MidiFileError(path, f"cannot read ({exc.strerror or exc})") from None
    mid = _parse(path, lambda: mido.MidiFile(path, clip=lenient))
    return midifile_to_song(mid, path, lenient=lenient)


def read_midi_bytes(data: bytes, path: str | Path = "<memory>", *,
                    lenient: bool = False) -> Song:
    """`read_midi` for a MIDI file held in memory (a project's embedded song); errors name
    `path`."""
    import io

    import mido

    if not data:
        raise MidiFileError(path, "empty MIDI data (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise MidiFileError(path, f"MIDI data too large ({len(data) / 2**20:.1f} MiB; the "
                                  f"limit is {MAX_FILE_BYTES // 2**20} MiB)")
    if data[:4] != b"MThd":
        raise MidiFileError(path, "not MIDI data (no MThd header)")
    mid = _parse(path, lambda: mido.MidiFile(file=io.BytesIO(data), clip=lenient))
    return midifile_to_song(mid, path, lenient=lenient)


def _parse(path, load):
    """Run mido's parser (`load()`), turning whatever a broken file makes it raise into a
    MidiFileError naming `path`."""
    from mido.midifiles.meta import KeySignatureError

    try:
        return load()
    except MidiFileError:
        raise
    except PermissionError:
        raise MidiFileError(path, "permission denied") from None
    except EOFError:
        raise MidiFileError(path, "truncated MIDI file (ends in the middle of a chunk)") from None
    except KeySignatureError as exc:
        raise MidiFileError(path, f"bad key signature meta event ({exc})") from None
    except RecursionError:
        raise MidiFileError(path, "corrupt MIDI file (nested too deeply)") from None
    except MemoryError:
        raise MidiFileError(path, "corrupt MIDI file (claims more data than it can hold)") \
            from None
    except (OSError, ValueError, KeyError, IndexError, TypeError, struct.error) as exc:
        reason = str(exc).strip() or type(exc).__name__
        if "MThd not found" in reason:
            raise MidiFileError(path, "not a MIDI file (no MThd header)") from None
        hint = (" (refused under --strict; without it such values are clipped)"
                if "data byte" in reason else "")
        raise MidiFileError(path, f"corrupt MIDI file ({reason}){hint}") from None


def require_notes(song: Song, path: str | Path) -> Song:
    """Raise MidiFileError if `song` has no notes (for commands that need some)."""
    if song.n_notes == 0:
        raise MidiFileError(path, "no notes in this file")
    return song


def _tempo_to_bpm(tempo: int) -> float:
    """The shortest decimal BPM that this integer microseconds-per-beat stands for.

    A file stores 84 BPM as 714286 us; 60e6 / 714286 = 83.99997. We read it back as 84.0, since
    writing 84.0 gives 714286 again, so the round trip stays exact both ways.
    """
    exact = 60_000_000 / tempo
    for digits in range(4):
        candidate = round(exact, digits)
        if candidate > 0 and round(60_000_000 / candidate) == tempo:
            return candidate
    return exact


@dataclass
class _Part:
    """Notes and channel state of one (file track, channel) while reading."""

    track_index: int
    channel: int
    program: int | None = None
    volume: int | None = None
    pan: int | None = None
    notes: list[Note] = field(default_factory=list)
    first_note: int | None = None


@dataclass
class _Repairs:
    overlaps: int = 0
    zero_length: int = 0
    unterminated: int = 0

    def total(self) -> int:
        return self.overlaps + self.zero_length + self.unterminated


def midifile_to_song(mid, path: str | Path = "<memory>", *, lenient: bool = False) -> Song:
    """Convert a `mido.MidiFile` already in memory (see `read_midi` for the rules)."""
    path = Path(path)
    if mid.type == 2:
        raise MidiFileError(path, "type 2 MIDI files (independent patterns) are not supported")
    if mid.type not in (0, 1):
        raise MidiFileError(path, f"unknown MIDI file type {mid.type}")
    if len(mid.tracks) == 0:
        raise MidiFileError(path, "the file has no tracks")
    tpb = int(mid.ticks_per_beat)
    if tpb <= 0:
        raise MidiFileError(path, "SMPTE time division is not supported (need ticks per beat)")

    max_tick = MAX_BEATS * tpb
    tempos: list[TempoChange] = []
    meters: list[MeterChange] = []
    parts: dict[tuple[int, int], _Part] = {}
    program_events: dict[int, list[tuple[int, int]]] = defaultdict(list)  # channel -> (tick, prg)
    names: dict[int, str] = {}
    roles: dict[int, str] = {}
    repairs = _Repairs()

    for ti, track in enumerate(mid.tracks):
        events = []  # (tick, order, msg): order 0 = meta/control, 1 = note-on, 2 = note-off
        tick = 0
        for msg in track:
            tick += msg.time
            if tick > max_tick:
                raise MidiFileError(path, f"track {ti + 1} runs to tick {tick}, "
                                          f"{tick / tpb:.0f} beats (the limit is "
                                          f"{MAX_BEATS} beats)")
            events.append((tick, msg))
        last_tick = tick
        # Note bookkeeping per (channel, pitch): FIFO of (start, velocity).
        open_notes: dict[tuple[int, int], deque] = defaultdict(deque)

        def part(ch: int, _ti: int = ti) -> _Part:
            key = (_ti, ch)
            if key not in parts:
                parts[key] = _Part(_ti, ch)
            return parts[key]

        i = 0
        while i < len(events):
            tick = events[i][0]
            j = i
            while j < len(events) and events[j][0] == tick:
                j += 1
            group = [m for _, m in events[i:j]]
            i = j
            offs, ons = [], []
            for msg in group:
                t = msg.type
                if t == "set_tempo":
                    if msg.tempo <= 0:
                        raise MidiFileError(path, f"absurd tempo (0 microseconds per beat) "
                                                  f"at tick {tick}")
                    bpm = _tempo_to_bpm(msg.tempo)
                    if not MIN_BPM <= bpm <= MAX_BPM:
                        raise MidiFileError(path, f"absurd tempo {bpm:.4g} BPM at tick {tick} "
                                                  f"(allowed {MIN_BPM:g}..{MAX_BPM:g})")
                    tempos.append(TempoChange(tick, bpm))
                elif t == "time_signature":
                    try:
                        meter = MeterChange(tick, msg.numerator, msg.denominator)
                    except ValueError as exc:
                        raise MidiFileError(path, f"unsupported time signature "
                                                  f"{msg.numerator}/{msg.denominator} at tick "
                                                  f"{tick} ({exc})") from None
                    if meter.bar_ticks(tpb) < 1:
                        raise MidiFileError(path, f"time signature {meter} at tick {tick} makes "
                                                  f"a bar shorter than one tick at {tpb} "
                                                  "ticks per beat")
                    meters.append(meter)
                elif t == "track_name":
                    names.setdefault(ti, msg.name.strip())
                elif t in ("text", "marker") and msg.text.startswith(ROLE_MARKER):
                    role = msg.text[len(ROLE_MARKER):].strip()
                    if role in ROLES:
                        roles[ti] = role
                    else:
                        log.warning("%s: track %d has an unknown role marker %r (ignored)",
                                    path, ti, msg.text)
                elif t == "program_change":
                    program_events[msg.channel].append((tick, msg.program))
                    p = part(msg.channel)
                    if p.program is None:
                        p.program = msg.program
                elif t == "control_change" and msg.control in (7, 10):
                    p = part(msg.channel)
                    if msg.control == 7 and p.volume is None:
                        p.volume = msg.value
                    elif msg.control == 10 and p.pan is None:
                        p.pan = msg.value
                elif t == "note_on" and msg.velocity > 0:
                    ons.append(msg)
                elif t == "note_off" or (t == "note_on" and msg.velocity == 0):
                    offs.append(msg)
            # 1) note-offs closing notes begun before this tick
            late_offs = []
            for msg in offs:
                q = open_notes[(msg.channel, msg.note)]
                if q and q[0][0] < tick:
                    start, vel = q.popleft()
                    part(msg.channel).notes.append(Note(start, tick, msg.note, vel))
                else:
                    late_offs.append(msg)
            # 2) note-ons
            for msg in ons:
                q = open_notes[(msg.channel, msg.note)]
                if q and q[-1][0] < tick:
                    if not lenient:
                        raise MidiFileError(path, f"overlapping notes: pitch {msg.note} on "
                                                  f"channel {msg.channel + 1} starts again at "
                                                  f"tick {tick} while still sounding "
                                                  f"{LENIENT_HINT}")
                    repairs.overlaps += len(q)
                    p = part(msg.channel)
                    while q:
                        start, vel = q.popleft()
                        p.notes.append(Note(start, tick, msg.note, vel))
                elif q:  # a second note-on at the same tick: the same note struck twice
                    if not lenient:
                        raise MidiFileError(path, f"overlapping notes: pitch {msg.note} on "
                                                  f"channel {msg.channel + 1} starts twice at "
                                                  f"tick {tick} {LENIENT_HINT}")
                    repairs.overlaps += 1
                    continue
                q.append((tick, msg.velocity))
                p = part(msg.channel)
                if p.first_note is None:
                    p.first_note = tick
            # 3) note-offs of notes begun at this very tick: zero-length
            for msg in late_offs:
                q = open_notes[(msg.channel, msg.note)]
                if not q:
                    continue  # a note-off without a note-on: harmless, ignored
                if not lenient:
                    raise MidiFileError(path, f"zero-length note: pitch {msg.note} on channel "
                                              f"{msg.channel + 1} at tick {tick} {LENIENT_HINT}")
                q.popleft()
                repairs.zero_length += 1
        for (ch, pitch), q in open_notes.items():
            for start, vel in q:
                if not lenient:
                    raise MidiFileError(path, f"unterminated note: pitch {pitch} on channel "
                                              f"{ch + 1} from tick {start} never ends "
                                              f"{LENIENT_HINT}")
                repairs.unterminated += 1
                if last_tick > start:
                    part(ch).notes.append(Note(start, last_tick, pitch, vel))

    if repairs.total():
        log.warning("%s: repaired %d note problem(s): %d overlapping, %d zero-length, "
                    "%d unterminated", path, repairs.total(), repairs.overlaps,
                    repairs.zero_length, repairs.unterminated)

    tracks: list[Track] = []
    channels_per_track: dict[int, int] = defaultdict(int)
    for (ti, _ch) in parts:
        channels_per_track[ti] += 1
    for (ti, ch), p in sorted(parts.items()):
        program = p.program
        if program is None and program_events.get(ch):
            first = p.first_note if p.first_note is not None else 0
            before = [prg for t, prg in program_events[ch] if t <= first]
            program = before[-1] if before else None
        name = names.get(ti, "")
        if channels_per_track[ti] > 1:
            name = f"{name or 'Track'} (channel {ch + 1})"
        p.notes.sort()
        tracks.append(Track(name=name, program=program or 0, is_drum=ch == DRUM_CHANNEL,
                            role=roles.get(ti, ROLE_OTHER), notes=p.notes,
                            volume=100 if p.volume is None else p.volume,
                            pan=64 if p.pan is None else p.pan))

    title = ""
    if mid.type == 1 and not any(ti == 0 for ti, _ in parts):
        title = names.get(0, "")
    elif mid.type == 0:
        title = names.get(0, "")
    song = Song(tracks=tracks, ticks_per_beat=tpb, tempos=tempos or [TempoChange(0, 120.0)],
                meters=meters or [MeterChange(0, 4, 4)], title=title)
    return check_song_size(song, path)


def check_song_size(song: Song, path: str | Path = "<song>") -> Song:
    """Raise MidiFileError when `song` is beyond the sizes this program handles (see the
    module docstring); return it unchanged otherwise."""
    if len(song.tracks) > MAX_TRACKS:
        raise MidiFileError(path, f"too many tracks ({len(song.tracks)}; the limit is "
                                  f"{MAX_TRACKS})")
    if song.n_notes > MAX_NOTES:
        raise MidiFileError(path, f"too many notes ({song.n_notes}; the limit is {MAX_NOTES})")
    end = song.end
    if end > MAX_BEATS * song.ticks_per_beat:
        raise MidiFileError(path, f"too long: the last note ends after "
                                  f"{end / song.ticks_per_beat:.0f} beats (the limit is "
                                  f"{MAX_BEATS})")
    seconds = song.tick_to_seconds(end)
    if seconds > MAX_SECONDS:
        raise MidiFileError(path, f"too long: {seconds / 60:.0f} minutes (the limit is "
                                  f"{MAX_SECONDS / 60:.0f} minutes)")
    starts = song.bar_starts(end)
    bars = len(starts)
    if bars > MAX_BARS:
        raise MidiFileError(path, f"too many bars ({bars}; the limit is {MAX_BARS})")
    if end > 0:
        # bar_starts runs on to the last meter change: bars after the one holding the last note
        # are there only because of a meter change past the end (a corrupt delta time, most
        # often); every command would carry them as silent bars.
        trailing = bars - bisect.bisect_left(starts, end)
        if trailing > MAX_TRAILING_BARS:
            last = song.meters[-1]
            raise MidiFileError(path, f"time signature {last} at tick {last.tick} is "
                                      f"{trailing} bars after the last note ends (tick {end}; "
                                      f"the limit is {MAX_TRAILING_BARS} bars)")
    return song
