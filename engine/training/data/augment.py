"""Key normalisation and transposition augmentation.

The PopMusicNet report named key normalisation as its main missing improvement: a model that sees
every piece in C major / A minor learns harmony once instead of twelve times. At use time the
runtime estimates the user's key with the same engine.music.estimate_key, transposes in, and
transposes the result back out.

Augmentation then transposes the *normalised* piece by a few semitones (default -5..+6, so every
one of the 12 keys is reachable once) while every voice stays inside a pitch window: a shift that
would push the bass below its range or the soprano above it teaches the model notes no one sings.
All meters are kept: nothing here touches time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from engine.music import Key, Song, estimate_key

#: Default augmentation shifts around the normalised key: all 12 transpositions.
DEFAULT_SHIFTS = tuple(range(-5, 7))

#: Measured ranges of the chorale voices (MIDI, in the corpus: S 57-81, A 53-74, T 48-69,
#: B 36-64), widened by 2 semitones so that a shift of a piece sitting at the edge of its voice's
#: range is still allowed when it stays singable.
CHORALE_VOICE_RANGES: dict[str, tuple[int, int]] = {
    "soprano": (55, 83),
    "alto": (51, 76),
    "tenor": (46, 71),
    "bass": (34, 66),
}

Window = tuple[int, int]


def normalise_key(song: Song, key: Key | None = None) -> tuple[Song, int]:
    """(a copy of `song` in C major / A minor, the semitones applied). `key` defaults to
    engine.music.estimate_key(song); an empty song comes back unshifted."""
    key = key if key is not None else estimate_key(song)
    if key is None:
        return song.copy(), 0
    shift = key.normalising_shift()
    return song.transposed(shift), shift


def track_ranges(song: Song) -> list[tuple[str, int, int] | None]:
    """(name, lowest, highest) pitch of each pitched track with notes, None for the others."""
    out: list[tuple[str, int, int] | None] = []
    for t in song.tracks:
        r = t.pitch_range() if not t.is_drum else None
        out.append((t.name, r[0], r[1]) if r else None)
    return out


def allowed_shifts(song: Song, shifts: Iterable[int] = DEFAULT_SHIFTS,
                   windows: Window | Mapping[str, Window] | Sequence[Window | None] | None = None
                   ) -> list[int]:
    """The shifts from `shifts` that keep every pitched note inside its window.

    `windows`: one (low, high) for all tracks; a mapping track name -> window (tracks not named
    are only held to MIDI 0..127); a sequence with one window (or None) per track; or None for
    MIDI 0..127 alone.
    """
    ranges = track_ranges(song)
    limits: list[Window] = []
    for i, r in enumerate(ranges):
        if r is None:
            continue
        name, lo, hi = r
        if windows is None:
            w = (0, 127)
        elif isinstance(windows, Mapping):
            w = windows.get(name, (0, 127))
        elif len(windows) == 2 and all(isinstance(x, (int, np.integer)) for x in windows):
            w = (int(windows[0]), int(windows[1]))  # type: ignore[index]
        else:
            w = windows[i] or (0, 127)  # type: ignore[index]
        limits.append((max(w[0], 0) - lo, min(w[1], 127) - hi))
    ok = []
    for s in shifts:
        if all(low <= s <= high for low, high in limits):
            ok.append(int(s))
    return ok


def transpositions(song: Song, shifts: Iterable[int] = DEFAULT_SHIFTS,
                   windows: Window | Mapping[str, Window] | Sequence[Window | None] | None = None
                   ) -> Iterator[tuple[int, Song]]:
    """(shift, transposed copy) for every allowed shift (0 included when allowed)."""
    for s in allowed_shifts(song, shifts, windows):
        yield s, (song.copy() if s == 0 else song.transposed(s))


def random_shift(song: Song, rng: np.random.Generator, shifts: Iterable[int] = DEFAULT_SHIFTS,
                 windows: Window | Mapping[str, Window] | Sequence[Window | None] | None = None
                 ) -> int:
    """One allowed shift drawn uniformly (0 when nothing else fits): for on-the-fly augmentation."""
    ok = allowed_shifts(song, shifts, windows)
    return int(rng.choice(ok)) if ok else 0


def transpose_notes(notes: np.ndarray, shift: int, drum_tracks: Sequence[int] = ()) -> np.ndarray:
    """Shift the pitch column of a Piece.notes array [track, start, end, pitch, velocity]
    (drum tracks untouched) without building Notes: the fast path for training loops."""
    out = notes.copy()
    if shift:
        mask = ~np.isin(out[:, 0], list(drum_tracks)) if drum_tracks else slice(None)
        out[mask, 3] += shift
        if out.size and (out[:, 3].min() < 0 or out[:, 3].max() > 127):
            raise ValueError(f"transposing by {shift} leaves MIDI 0..127")
    return out
