"""Audio training data: corpus top voices rendered through FluidSynth, as log-mel windows.

Each piece's top voice (the same line the MIDI classifiers see, so texture does not give the
label away) is rendered for `seconds` seconds with a GM program drawn from `PROGRAMS`, a tempo
drawn from 80-140 BPM (on the normalised beat: notation pulse does not leak), a random key, and
a random starting point for training pieces. Rendering uses pyfluidsynth directly: a single
melody on one channel needs no Song, and this runs ~200x realtime (ENVIRONMENT.md).
Features are engine.audio_features.log_semitone, the runtime's own function.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from engine import audio_features as af
from engine.models.classifier import pitch_shift, time_factor, top_voice
from engine.training.classify import corpus
from engine.training.classify.metrics import PieceSet

log = logging.getLogger(__name__)

# piano, harpsichord, vibraphone, church organ, nylon guitar, violin, cello, strings, choir,
# trumpet, oboe, clarinet, flute, recorder
PROGRAMS = (0, 6, 11, 19, 24, 40, 42, 48, 52, 56, 68, 71, 73, 74)
DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


def find_soundfont(explicit: str | Path | None = None) -> Path:
    try:  # the io team's finder when it is there
        from engine.synth import find_soundfont as _find  # type: ignore[attr-defined]

        return Path(_find(explicit))
    except ImportError:
        pass
    for p in [explicit, DEFAULT_SOUNDFONT, Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")]:
        if p and Path(p).exists():
            return Path(p)
    raise FileNotFoundError("no GM soundfont found in /usr/share/sounds/sf2")


class MelodyRenderer:
    """One FluidSynth instance rendering single melodies offline (mono float32)."""

    def __init__(self, sample_rate: int = af.SAMPLE_RATE, soundfont: str | Path | None = None):
        import fluidsynth

        self.sample_rate = sample_rate
        self.synth = fluidsynth.Synth(samplerate=float(sample_rate), gain=0.6)
        self.sfid = self.synth.sfload(str(find_soundfont(soundfont)))
        if self.sfid < 0:
            raise RuntimeError("FluidSynth could not load the soundfont")

    def render(self, notes: Sequence[tuple[float, float, int, int]], program: int,
               seconds: float) -> np.ndarray:
        """notes: (on_s, off_s, pitch, velocity). Returns `seconds` of mono audio."""
        sr, synth = self.sample_rate, self.synth
        synth.system_reset()
        synth.program_select(0, self.sfid, 0, int(program))
        events = []
        for on, off, pitch, vel in notes:
            if on >= seconds:
                continue
            events.append((on, 1, int(pitch), int(vel)))
            events.append((min(off, seconds), 0, int(pitch), 0))
        events.sort()
        total = int(seconds * sr)
        chunks, pos = [], 0
        for t, kind, pitch, vel in events:
            frame = min(int(t * sr), total)
            if frame > pos:
                chunks.append(np.asarray(synth.get_samples(frame - pos), dtype=np.int16))
                pos = frame
            if kind:
                synth.noteon(0, pitch, vel)
            else:
                synth.noteoff(0, pitch)
        if pos < total:
            chunks.append(np.asarray(synth.get_samples(total - pos), dtype=np.int16))
        synth.all_notes_off(0)
        stereo = np.concatenate(chunks).reshape(-1, 2).astype(np.float32) / 32768.0
        return stereo.mean(axis=1)

    def close(self) -> None:
        self.synth.delete()


def melody_events(piece: corpus.Piece, rng: np.random.Generator, seconds: float,
                  random_start: bool) -> list[tuple[float, float, int, int]]:
    """The piece's top voice as timed events: normalised time, random tempo and key."""
    s, e, p = top_voice(piece.start, piece.end, piece.pitch)
    shift = pitch_shift(s, e, p) + int(rng.integers(-6, 6))
    factor = time_factor(s)
    bpm = float(rng.uniform(80, 140))
    sec = 60.0 / bpm * factor
    on, off = (s - s.min()) * sec, (e - s.min()) * sec
    if random_start and on[-1] > seconds:
        candidates = np.flatnonzero(on <= on[-1] - seconds)
        t0 = on[int(rng.choice(candidates))] if candidates.size else 0.0
        on, off = on - t0, off - t0
        keep = on >= 0
        on, off, p = on[keep], off[keep], p[keep]
    pitches = np.clip(p.astype(int) + shift, 24, 108)
    vel = rng.integers(70, 111, size=len(pitches))
    return list(zip(on.tolist(), (off * 0.97).tolist(), pitches.tolist(), vel.tolist()))


def piece_windows(renderer: MelodyRenderer, piece: corpus.Piece, rng: np.random.Generator,
                  seconds: float, window_frames: int, hop_frames: int,
                  random_start: bool) -> np.ndarray:
    program = int(rng.choice(PROGRAMS))
    audio = renderer.render(melody_events(piece, rng, seconds, random_start), program, seconds)
    spec = af.log_semitone(audio, renderer.sample_rate)
    return af.spectrogram_windows(spec, window_frames, hop_frames)


def audio_sets(pieces: Sequence[corpus.Piece], labels: Sequence[str], *, seconds: float = 15.0,
               window_frames: int = 108, hop_frames: int = 54, train_renders: int = 2,
               seed: int = 0, cache_dir: Path | None = None) -> dict[str, PieceSet]:
    """Rendered log-mel windows (uint8) per split, cached as npz under `cache_dir`."""
    key = hashlib.md5(repr((sorted((p.group, p.source, len(p.pitch)) for p in pieces),
                            tuple(labels), seconds, window_frames, hop_frames, train_renders,
                            seed, af.N_FFT, af.HOP, "semitone", af.LOW_MIDI, af.N_BANDS)).encode()).hexdigest()[:12]
    cache = cache_dir / f"audio_{key}.npz" if cache_dir else None
    if cache and cache.exists():
        return _load_sets(cache)
    rng = np.random.default_rng(seed)
    index = {lab: i for i, lab in enumerate(labels)}
    splits = corpus.assign_splits(list(pieces))
    renderer = MelodyRenderer()
    out: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in ("train", "valid", "test")}
    try:
        for piece, split in zip(pieces, splits):
            if piece.label not in index or len(piece.pitch) < 8:
                continue
            n = train_renders if split == "train" else 1
            w = np.concatenate([piece_windows(renderer, piece, rng, seconds, window_frames,
                                              hop_frames, random_start=split == "train")
                                for _ in range(n)])
            ws, ys, ns = out[split]
            ws.append((w * 255).round().astype(np.uint8))
            ys.append(index[piece.label])
            ns.append(piece.group)
    finally:
        renderer.close()
    sets = {s: PieceSet(ws, np.array(ys, dtype=np.int64), ns) for s, (ws, ys, ns) in out.items()}
    if cache:
        _save_sets(sets, cache)
    return sets


def _save_sets(sets: dict[str, PieceSet], path: Path) -> None:
    from engine.fileio import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for s, ps in sets.items():
        arrays[f"{s}_x"] = np.concatenate(ps.windows) if ps.windows else np.zeros((0,))
        arrays[f"{s}_n"] = np.array([len(w) for w in ps.windows], dtype=np.int64)
        arrays[f"{s}_y"] = ps.labels
        arrays[f"{s}_g"] = np.array(ps.names)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def _load_sets(path: Path) -> dict[str, PieceSet]:
    out = {}
    with np.load(path) as z:
        for s in ("train", "valid", "test"):
            x, n = z[f"{s}_x"], z[f"{s}_n"]
            bounds = np.concatenate([[0], np.cumsum(n)])
            out[s] = PieceSet([x[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
                              z[f"{s}_y"], [str(g) for g in z[f"{s}_g"]])
    return out
