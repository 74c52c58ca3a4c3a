"""Songs -> key-normalised bar tensors, per piece, for the three training stages.

Key normalisation: each piece is transposed so that the tonic of the key estimated *from its
melody alone* (engine.music.melody_key: Krumhansl-Schmuckler on the Aarden-Essen profiles,
the last note favoured as the tonic) becomes C: C major or C minor. The runtime only has the user's
melody, so it estimates the key the same way: training and use agree even where the estimate
differs from the key on the score. (Moving the relative keys together instead, C major /
A minor, leaves the model to guess which of C and A is home: an accompaniment trained that way
settled in neighbouring keys.) Augmentation then shifts pieces by up to
`TrainConfig.transpose` semitones (on the fly for the VAEs, a fixed set of shifts for the RNNs)
so the models also see melodies a little off the normalised key.

Tracks: the melody is the song's melody track (role "melody", else the highest non-drum track);
every other track becomes an accompaniment role named after it (lower-case), roles taken from the
first piece and matched by name in the others (a piece lacking a role gets an empty track).
Each track gets its own pitch window of `n_pitches` centred on its median pitch in the training
split (chorale voices differ by an octave or more); notes outside fold by octaves (see
engine.representation).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import UserInputError
from engine.music import ROLE_MELODY, Song, Track, melody_key
from engine.representation import ACTIVE, BarSpec, encode_song
from engine.training.accompanist.config import ModelConfig, TrackInfo

log = logging.getLogger(__name__)

# GM programs for the chorale voices when the data carries none (music21 parts come as piano):
# a string quartet-like ensemble is close to how chorales are heard and keeps voices distinct.
VOICE_PROGRAMS = {"soprano": 40, "alto": 41, "tenor": 42, "bass": 43}


@dataclass
class PieceBars:
    id: str
    split: str
    bars: np.ndarray  # bool (T, K, 2, S, P), key-normalised; track 0 = melody
    masks: np.ndarray  # float32 (T, S)
    shift: int  # semitones applied to normalise the key


@dataclass
class Prepared:
    tracks: list[TrackInfo]  # melody first, then the roles
    pieces: list[PieceBars]

    @property
    def roles(self) -> list[str]:
        return [t.name for t in self.tracks[1:]]

    def split(self, name: str) -> list[PieceBars]:
        return [p for p in self.pieces if p.split == name]

    def specs(self, cfg: ModelConfig) -> list[BarSpec]:
        return [BarSpec(cfg.steps_per_beat, cfg.max_bar_steps, t.low_pitch, cfg.n_pitches)
                for t in self.tracks]


def melody_and_roles(song: Song) -> tuple[Track, list[Track]]:
    mel = song.melody_track()
    if mel is None:
        raise UserInputError(f"{song.title or 'a song'}: no melody track")
    return mel, [t for t in song.tracks if t is not mel]


def normalising_shift(melody: Track) -> int:
    """Semitones that move the melody's tonic to C (see the module docstring)."""
    key = melody_key(melody.notes)
    return key.tonic_shift() if key is not None else 0


def tonal_profile(songs: Sequence[tuple[str, str, Song]],
                  split: str = "train") -> dict[str, list[float]]:
    """How the accompaniments of `split` share their sounding time among the 12 scale degrees
    (pitch classes counted from the melody's tonic, by `melody_key` as the model normalises),
    for major and for minor melodies: {"major": [12 shares], "minor": [...]}, each summing to 1.
    Drum tracks are left out. The runtime's tonal prior pulls the voices toward it."""
    hist = {"major": np.zeros(12), "minor": np.zeros(12)}
    for _, sp, song in songs:
        if sp != split:
            continue
        mel, roles = melody_and_roles(song)
        key = melody_key(mel.notes)
        if key is None:
            continue
        for t in roles:
            if t.is_drum:
                continue
            for n in t.notes:
                hist[key.mode][(n.pitch - key.tonic) % 12] += n.duration
    return {mode: (h / h.sum()).round(5).tolist() if h.sum() > 0 else [1 / 12] * 12
            for mode, h in hist.items()}


def prepare(songs: Sequence[tuple[str, str, Song]], cfg: ModelConfig,
            roles: Sequence[str] | None = None,
            windows: Sequence[int] | None = None) -> Prepared:
    """(id, split, song) triples -> per-piece bar tensors on per-track windows (chosen from the
    training split, or `windows`: the low pitch per track, to match a trained model)."""
    if not songs:
        raise UserInputError("no training pieces")
    if roles is None:
        _, acc = melody_and_roles(songs[0][2])
        roles = [t.name.lower() for t in acc]
    if not roles:
        raise UserInputError("the training songs have no accompaniment tracks")
    normalised: list[tuple[str, str, Song, int, list[Track]]] = []
    for pid, split, song in songs:
        mel, acc = melody_and_roles(song)
        by_name = {t.name.lower(): t for t in acc}
        tracks = [mel] + [by_name.get(r, Track(r)) for r in roles]
        shift = normalising_shift(mel)
        try:
            tracks = [Track(t.name, t.program, t.is_drum, t.role,
                            [n if t.is_drum else n.shifted(semitones=shift) for n in t.notes])
                      for t in tracks]
        except ValueError:  # a note would leave MIDI 0..127: keep the piece as it is
            shift = 0
        normalised.append((pid, split, song, shift, tracks))

    infos = []
    for k, name in enumerate(["melody"] + list(roles)):
        pitches = np.array([n.pitch for _, sp, _, _, tr in normalised if sp == "train"
                            for n in tr[k].notes] or
                           [n.pitch for *_, tr in normalised for n in tr[k].notes] or [60])
        low = int(np.clip(int(np.median(pitches)) - cfg.n_pitches // 2, 0, 128 - cfg.n_pitches))
        if windows is not None:
            low = int(windows[k])
        first = next((tr[k] for *_, tr in normalised if tr[k].notes), normalised[0][4][k])
        programs = [tr[k].program for *_, tr in normalised if tr[k].notes]
        program = max(set(programs), key=programs.count) if programs else 0
        if program == 0:
            program = VOICE_PROGRAMS.get(name if k else first.name.lower(), 0)
        vels = [n.velocity for *_, tr in normalised for n in tr[k].notes]
        infos.append(TrackInfo(name=first.name.lower() if k == 0 else name, low_pitch=low,
                               program=program, is_drum=first.is_drum,
                               velocity=int(np.median(vels)) if vels else 80))
    specs = [BarSpec(cfg.steps_per_beat, cfg.max_bar_steps, t.low_pitch, cfg.n_pitches)
             for t in infos]
    pieces = []
    for pid, split, song, shift, tracks in normalised:
        mel = tracks[0]
        if not mel.notes:
            continue
        tmp = Song(tracks, song.ticks_per_beat, song.tempos, song.meters, song.title)
        end = max(t.end for t in tracks)
        per_track, grid = [], None
        for k, spec in enumerate(specs):
            b, grid = encode_song(tmp, spec, [tracks[k]], end=end)
            per_track.append(b[:, 0])
        bars = np.stack(per_track, axis=1)
        if len(grid) == 0:
            continue
        pieces.append(PieceBars(pid, split, bars, grid.masks(cfg.max_bar_steps), shift))
    for k, info in enumerate(infos):
        poly = np.concatenate([p.bars[:, k, ACTIVE].sum(axis=-1).ravel() for p in pieces
                               if p.split == "train"] or [np.zeros(1)])
        sounding = poly[poly > 0]
        info.max_voices = int(np.clip(np.percentile(sounding, 99), 1, 4)) if sounding.size else 1
    log.info("prepared %d pieces, tracks %s", len(pieces), [t.name for t in infos])
    return Prepared(infos, pieces)


def shift_planes(x: np.ndarray, semitones: int) -> np.ndarray:
    """Shift along the last (pitch) axis, zero-filling; notes pushed out of the window drop."""
    if semitones == 0:
        return x
    out = np.zeros_like(x)
    if semitones > 0:
        out[..., semitones:] = x[..., :-semitones]
    else:
        out[..., :semitones] = x[..., -semitones:]
    return out


def toy_songs(n: int, seed: int = 0, meters: Sequence[tuple[int, int]] = ((4, 4), (3, 4)),
              n_bars: int = 8) -> list[tuple[str, str, Song]]:
    """Tiny four-voice songs made in code (for tests and smoke runs, never for a shipped model):
    a stepwise melody over a I-IV-V-I bass with two inner voices on chord tones."""
    from engine.music import MeterChange, Note

    rng = np.random.default_rng(seed)
    chords = [(0, 4, 7), (5, 9, 0), (7, 11, 2), (0, 4, 7)]
    out = []
    splits = ("train", "train", "train", "valid", "test")
    for i in range(n):
        num, den = meters[i % len(meters)]
        tpb = 480
        bar = num * tpb * 4 // den
        tonic = int(rng.integers(0, 12))
        voices: list[list[Note]] = [[], [], [], []]
        pitch = 72
        for b in range(n_bars):
            root = chords[b % 4]
            t0 = b * bar
            for beat in range(bar // tpb):
                pitch = int(np.clip(pitch + rng.choice([-2, -1, 1, 2]), 65, 79))
                voices[0].append(Note(t0 + beat * tpb, t0 + (beat + 1) * tpb, pitch + tonic - 6))
            voices[1].append(Note(t0, t0 + bar, 60 + root[1] + tonic - 6))
            voices[2].append(Note(t0, t0 + bar, 55 + root[2] % 12 + tonic - 6))
            voices[3].append(Note(t0, t0 + bar, 43 + root[0] + tonic - 6))
        names = ("soprano", "alto", "tenor", "bass")
        tracks = [Track(nm, role=ROLE_MELODY if k == 0 else "accompaniment", notes=v)
                  for k, (nm, v) in enumerate(zip(names, voices))]
        out.append((f"toy{i}", splits[i % len(splits)],
                    Song(tracks, tpb, meters=[MeterChange(0, num, den)], title=f"toy {i}")))
    return out
