"""Offline rendering of a Song to a float32 stereo array with FluidSynth (through pyfluidsynth).

Why it is built the way it is (each point measured on this machine):
- **Float output.** pyfluidsynth's `get_samples()` returns int16, which FluidSynth has already
  clipped (and dithered) before we can look at it. We call `fluid_synth_write_float` from the
  same libfluidsynth that pyfluidsynth loaded, so a loud song keeps its peaks; we then measure
  the peak and scale the whole render down only if it would clip (or, if asked, to a target
  peak); one gain for the whole file, never a limiter.
- **Event timing.** Rendering is split at every event's sample frame, but FluidSynth starts
  voices only at its internal 64-frame block boundaries, so with one synth a note-on lands up
  to 63 frames late (1.4 ms at 44.1 kHz). We render with up to `timing_groups` (G) synths
  whose block grids are offset by 64/G frames, each note-on on the synth whose next block
  boundary is nearest, and sum the outputs (FluidSynth is linear in its voices). G=2 (default):
  every note-on at most 32 frames late (0.7 ms at 44.1 kHz); G=64: sample-exact; G=1: fastest.
  A second synth costs its reverb and loading (~15 % here), so a group is only used when some
  note needs it to meet the bound. What FluidSynth does between voices of one synth is kept
  across groups (see `assign_groups`).
- **Channels.** FluidSynth has 256 MIDI channels here, so every track gets its own channel
  (program, CC7 volume, CC10 pan), drum tracks get the drum bank (128) on theirs: no 16-channel
  limit and no channel sharing between tracks.
- **Tail.** After the last note-off we keep rendering until the output is silent (below
  -80 dBFS) or `tail_seconds` have passed, so releases and reverb are not cut.
- **Chorus off by default.** The Song model sends no chorus depth (CC93 stays 0), and with
  FluidR3_GM and TimGM6mb the render is bit-identical without the chorus unit, which costs
  ~10-25 % of the render time for nothing. `chorus=True` turns it back on for other soundfonts.
  Reverb stays on (it is ~12 % of the signal).
- **Loading.** `synth.dynamic-sample-loading` loads only the samples of the presets used
  (FluidR3_GM: 0.2 s -> 0.02 s to load).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DeviceError, SoundfontError, UserInputError
from engine.music import Song
from engine.synth.fluid import fluid_lib, import_fluidsynth, route_log
from engine.synth.soundfont import find_soundfont

log = logging.getLogger(__name__)

BLOCK = 64  # FluidSynth's internal block size (FLUID_BUFSIZE), fixed at compile time
DEFAULT_GAIN = 0.4
HEADROOM_PEAK = 0.98  # normalise only if the peak would exceed this (-0.18 dBFS)
SILENCE = 1e-4  # -80 dBFS
MIN_RATE, MAX_RATE = 8000, 192000
# The rendered audio is held in memory (float32 stereo): a bound on its size, so that a song
# that is long (up to the hour midi_io allows) at a high rate is refused with a message
# instead of exhausting the memory. The process peaks near 1.8x this buffer (the mix, the
# stems' shared gain, the file's encoding: a 29-minute render at 48 kHz measured 1.38 GB), so
# 384 MiB keeps a render under 1 GB: 17 minutes at 48 kHz, 38 at 22.05 kHz.
MAX_RENDER_BYTES = 384 * 2**20
ProgressFn = Callable[[float], None]

_EV_SETUP, _EV_OFF, _EV_ON = 0, 1, 2


@dataclass
class RenderResult:
    audio: np.ndarray  # float32 (frames, 2)
    sample_rate: int
    peak_before: float  # peak of the raw synth output
    gain: float  # scale applied afterwards (1.0 = untouched)
    seconds: float  # wall time spent rendering
    soundfont: Path
    synths: int = 1  # FluidSynth instances used (timing groups that had notes)

    @property
    def normalised(self) -> bool:
        return self.gain != 1.0

    def describe(self) -> str:
        db = 20 * np.log10(max(self.peak_before, 1e-12))
        gain_db = 20 * np.log10(self.gain)
        if self.gain > 1.0:
            return (f"peak {db:.1f} dBFS, normalised to {db + gain_db:.1f} dBFS "
                    f"(gain {gain_db:+.1f} dB)")
        if self.normalised:
            return (f"peak {db:.1f} dBFS would clip: scaled by {gain_db:.1f} dB "
                    f"(whole-file gain, no limiter)")
        return f"peak {db:.1f} dBFS, no normalisation needed"


# -- libfluidsynth access ----------------------------------------------------------------------
def _fluidsynth():
    """pyfluidsynth and libfluidsynth (engine.synth.fluid), FluidSynth's log routed to ours."""
    try:
        fluidsynth, lib = import_fluidsynth(), fluid_lib()
    except (ImportError, OSError) as exc:
        raise DeviceError(f"FluidSynth is not available ({exc}); install libfluidsynth3 "
                          "(Debian: apt install libfluidsynth3)") from None
    # FluidSynth prints its errors on stderr; our log instead: the CLI then shows one line for
    # a bad soundfont, not FluidSynth's three.
    route_log(log)
    return fluidsynth, lib


def load_synth(soundfont: Path, sample_rate: int, gain: float = DEFAULT_GAIN,
               chorus: bool = False):
    """A FluidSynth with `soundfont` loaded: (synth, sfid). Raises SoundfontError."""
    fluidsynth, _ = _fluidsynth()
    synth = fluidsynth.Synth(gain=gain, samplerate=sample_rate, channels=256,
                             **{"synth.dynamic-sample-loading": 1,
                                "synth.chorus.active": int(chorus)})
    sfid = synth.sfload(str(soundfont))
    if sfid < 0:
        synth.delete()
        raise SoundfontError(f"{soundfont}: corrupt or unsupported soundfont (FluidSynth "
                             "could not load it)")
    return synth, sfid


# -- events ------------------------------------------------------------------------------------
def song_events(song: Song, track_indices: Sequence[int], sample_rate: int):
    """Sorted (frame, kind, channel, a, b) tuples: setup (program/CC) at 0, note-offs before
    note-ons at the same frame. Channel i = i-th rendered track."""
    events = []
    tick_cache: dict[int, int] = {}

    def frame(tick: int) -> int:
        f = tick_cache.get(tick)
        if f is None:
            f = tick_cache[tick] = int(round(song.tick_to_seconds(tick) * sample_rate))
        return f

    for ch, ti in enumerate(track_indices):
        track = song.tracks[ti]
        for n in track.notes:
            on = frame(n.start)
            # A note shorter than one frame still lasts one (else its off would sort first).
            events.append((on, _EV_ON, ch, n.pitch, n.velocity))
            events.append((max(frame(n.end), on + 1), _EV_OFF, ch, n.pitch, 0))
    events.sort()
    return events


# GM drum keys that choke each other (SoundFont "exclusive class": a closed hi-hat cuts an open
# one). FluidSynth applies that only within one synth, so these notes stay in one timing group.
GM_EXCLUSIVE_DRUM_KEYS = frozenset({42, 44, 46, 71, 72, 73, 74, 78, 79, 80, 81})


def assign_groups(events: list[tuple], offsets: Sequence[int],
                  drum_channels: frozenset[int] | set[int] = frozenset()) -> list[list[tuple]]:
    """Split sorted events among the timing-group synths (block grids shifted by `offsets`).

    Every note-on ends up at most BLOCK / len(offsets) frames late (32 for two groups). A group
    is used only if some note needs it to meet that bound; among the groups in use, a note-on
    goes to the synth whose next block boundary is nearest its frame, its note-off to the same
    synth. Two things FluidSynth does *between* voices of one synth are kept:
    - a key struck again on a channel while it still sounds in another group releases it there
      (FluidSynth releases the old voice of that key in a single synth);
    - drum keys with a GM exclusive class (hi-hats, whistles, guiros, cuicas, triangles) all go
      to group 0, so that one still chokes the other (their onsets keep 64-frame precision).
    """
    tolerance = BLOCK // len(offsets)

    def late(frame: int, group: int) -> int:
        return (-(frame + offsets[group])) % BLOCK

    def pinned(ch: int, pitch: int) -> bool:
        return ch in drum_channels and pitch in GM_EXCLUSIVE_DRUM_KEYS

    needed = [0]
    for f, kind, ch, pitch, _ in events:
        if kind == _EV_ON and not pinned(ch, pitch) and \
                min(late(f, g) for g in needed) > tolerance:
            needed.append(min(range(len(offsets)), key=lambda g: late(f, g)))
    per_group: list[list[tuple]] = [[] for _ in offsets]
    holding: dict[tuple[int, int], deque] = defaultdict(deque)
    for ev in events:
        f, kind, ch, pitch, _ = ev
        if kind == _EV_ON:
            k = 0 if pinned(ch, pitch) else min(needed, key=lambda g: late(f, g))
            q = holding[(ch, pitch)]
            for other in set(q) - {k}:
                per_group[other].append((f, _EV_OFF, ch, pitch, 0))
            q.append(k)
            per_group[k].append(ev)
        else:
            q = holding[(ch, pitch)]
            per_group[q.popleft() if q else 0].append(ev)
    return per_group


def render(song: Song, *, sample_rate: int = 48000, soundfont: str | Path | None = None,
           tracks: Sequence[int] | None = None, progress: ProgressFn | None = None,
           tail_seconds: float = 3.0, timing_groups: int = 2, gain: float = DEFAULT_GAIN,
           normalise: bool = True, chorus: bool = False,
           peak_dbfs: float | None = None) -> RenderResult:
    """Render `song` (or the tracks with indices `tracks`) to float32 stereo.

    Loudness: by default the render is left as FluidSynth made it and scaled down only if its
    peak would clip; `peak_dbfs` (e.g. -1.0) instead scales the whole file, up or down, so that
    its peak lands there. Either way it is one gain for the whole file, never a limiter.
    `progress(fraction)` is called now and then from this thread with 0..1; an exception it
    raises (e.g. the studio's cancel button) stops the render and propagates, synths freed.
    """
    if not MIN_RATE <= int(sample_rate) <= MAX_RATE:
        raise UserInputError(f"sample rate {sample_rate} out of range {MIN_RATE}..{MAX_RATE}")
    if not 1 <= timing_groups <= BLOCK:
        raise ValueError(f"timing_groups must be in range 1..{BLOCK}, got {timing_groups}")
    sample_rate = int(sample_rate)
    indices = list(range(len(song.tracks))) if tracks is None else list(tracks)
    if len(indices) > 256:
        raise UserInputError(f"too many tracks to render ({len(indices)} > 256)")
    sf_path = find_soundfont(soundfont)
    t0 = time.perf_counter()
    _, lib = _fluidsynth()

    events = song_events(song, indices, sample_rate)
    end_frame = events[-1][0] if events else 0
    tail_frames = int(tail_seconds * sample_rate)
    total_frames = end_frame + tail_frames
    if total_frames * 8 > MAX_RENDER_BYTES:
        seconds = total_frames / sample_rate
        raise UserInputError(
            f"too long to render at {sample_rate} Hz ({seconds / 60:.1f} minutes would take "
            f"{total_frames * 8 / 2**20:.0f} MiB; the limit is {MAX_RENDER_BYTES // 2**20} MiB"
            f", about {MAX_RENDER_BYTES / 8 / sample_rate / 60:.0f} minutes at this rate)")

    offsets = [k * BLOCK // timing_groups for k in range(timing_groups)]
    drum_channels = {ch for ch, ti in enumerate(indices) if song.tracks[ti].is_drum}
    per_group = assign_groups(events, offsets, drum_channels)

    # A group without events would only add its effects' fixed cost: leave it out.
    active = [k for k in range(timing_groups) if per_group[k]] or [0]
    synths = []
    try:
        for _ in active:
            synths.append(load_synth(sf_path, sample_rate, gain, chorus))
        for synth, sfid in synths:
            _setup_channels(synth, sfid, lib, song, indices)
        out = np.zeros((total_frames, 2), dtype=np.float32)
        scratch = np.zeros((min(max(total_frames, BLOCK), 1 << 16), 2), dtype=np.float32)
        work = max(len(active) * end_frame, 1)
        last_report = [0.0]

        def report(done: int) -> None:
            if progress is None:
                return
            frac = 0.95 * done / work
            if frac - last_report[0] >= 0.01:
                last_report[0] = frac
                progress(frac)

        for i, ((synth, _sfid), k) in enumerate(zip(synths, active)):
            # Pre-roll so that this synth's block grid is shifted by offsets[k] frames.
            if offsets[k]:
                _write(lib, synth, scratch[:offsets[k]])
            pos = 0
            for f, kind, ch, pitch, vel in per_group[k]:
                if f > pos:
                    _render_span(lib, synth, out, scratch, pos, f, add=i > 0)
                    pos = f
                    report(i * end_frame + pos)
                if kind == _EV_ON:
                    synth.noteon(ch, pitch, vel)
                else:
                    synth.noteoff(ch, pitch)
            _render_span(lib, synth, out, scratch, pos, end_frame, add=i > 0)
        rendered_to = end_frame
        # Tail: all synths together, chunk by chunk, until silence.
        chunk = max(sample_rate // 10, BLOCK)
        pos = rendered_to
        while pos < total_frames:
            stop = min(pos + chunk, total_frames)
            for i, (synth, _sfid) in enumerate(synths):
                _render_span(lib, synth, out, scratch, pos, stop, add=i > 0)
            voices = sum(lib.fluid_synth_get_active_voice_count(s.synth) for s, _ in synths)
            quiet = float(np.max(np.abs(out[pos:stop]))) < SILENCE
            pos = stop
            if quiet and voices == 0:
                break
        out = out[:pos]
    finally:
        for synth, _ in synths:
            synth.delete()

    # max and min rather than abs(): abs would make a second buffer of the render's size.
    peak = max(float(out.max()), -float(out.min())) if out.size else 0.0
    scale = 1.0
    if peak_dbfs is not None and peak > 0:
        scale = min(10 ** (peak_dbfs / 20), HEADROOM_PEAK) / peak
    elif normalise and peak > HEADROOM_PEAK:
        scale = HEADROOM_PEAK / peak
        log.info("render peak %.3f would clip: scaled by %.2f", peak, scale)
    if scale != 1.0:
        out *= np.float32(scale)
    if progress is not None:
        progress(1.0)
    return RenderResult(out, sample_rate, peak, scale, time.perf_counter() - t0, sf_path,
                        len(active))


def _setup_channels(synth, sfid: int, lib, song: Song, indices: Sequence[int]) -> None:
    for ch, ti in enumerate(indices):
        track = song.tracks[ti]
        if track.is_drum:
            lib.fluid_synth_set_channel_type(synth.synth, ch, 1)  # CHANNEL_TYPE_DRUM
            bank, program = 128, track.program
        else:
            bank, program = 0, track.program
        if synth.program_select(ch, sfid, bank, program) < 0:
            fallback = 0
            log.warning("soundfont has no preset %d:%d for track %r; using %d:%d", bank,
                        program, track.name, bank, fallback)
            if synth.program_select(ch, sfid, bank, fallback) < 0:
                raise SoundfontError(f"soundfont has no preset for bank {bank} (track "
                                     f"{track.name!r})")
        synth.cc(ch, 7, track.volume)
        synth.cc(ch, 10, track.pan)


def _write(lib, synth, buf: np.ndarray) -> None:
    """Render len(buf) frames into the C-contiguous float32 (n, 2) view `buf`."""
    n = buf.shape[0]
    if n == 0:
        return
    p = buf.ctypes.data
    lib.fluid_synth_write_float(synth.synth, n, p, 0, 2, p, 1, 2)


def _render_span(lib, synth, out: np.ndarray, scratch: np.ndarray, start: int, stop: int,
                 add: bool) -> None:
    """Render frames [start, stop) of `synth` into `out` (overwrite, or add via `scratch`)."""
    while start < stop:
        if not add:
            _write(lib, synth, out[start:stop])
            return
        n = min(stop - start, scratch.shape[0])
        _write(lib, synth, scratch[:n])
        out[start:start + n] += scratch[:n]
        start += n
