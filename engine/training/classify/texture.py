"""Texture changes of a corpus piece, so that a classifier has to hear style rather than count
voices: in the corpus every folk tune is one line and every other style several parts.

- `accompanied`: a one-part piece (a folk tune) with its per-bar triads (`corpus.Piece.chords`,
  the naive I IV V vi ii rule in the tune's key: rule-made, not a human's harmonisation)
  realised as a chord part in the octave below the melody plus a bass on the root; the chords
  held, struck on every beat, or arpeggiated, the bass held or on every other beat;
- `top_line`: a several-part piece reduced to its top part (the melody track alone);
- `melody_bass`: its top part and its lowest part;
- `dropped_parts`: a random non-empty subset of its parts.

Training (`datasets.piece_sets(texture=...)`) draws these for the train split; `popmusicnet eval
classifiers` shows every test piece with its texture changed (`OOD_SETS`). Numpy only.
"""

from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np

from engine.training.classify.corpus import Piece

#: Chord rhythms and bass rhythms an accompaniment is drawn from.
CHORD_STYLES = ("held", "beats", "arpeggio")
BASS_STYLES = ("held", "half")


def _piece(piece: Piece, start, end, pitch, part) -> Piece:
    order = np.lexsort((pitch, start))
    return Piece(piece.label, piece.group, piece.source, np.asarray(start, np.float64)[order],
                 np.asarray(end, np.float64)[order], np.asarray(pitch, np.int16)[order],
                 np.asarray(part, np.int16)[order])


def _below(pc: int, ceiling: int) -> int:
    """The highest pitch of pitch class `pc` at or below `ceiling`."""
    return ceiling - ((ceiling - pc) % 12)


def accompanied(piece: Piece, rng: np.random.Generator, chord_style: str | None = None,
                bass_style: str | None = None) -> Piece:
    """The piece (one part) with a chord part (1) and a bass part (2) from its `chords`; the
    piece itself when it has no chords."""
    if piece.chords is None or not len(piece.chords) or len(piece.parts()) != 1:
        return piece
    chord_style = chord_style or str(rng.choice(CHORD_STYLES))
    bass_style = bass_style or str(rng.choice(BASS_STYLES))
    med = int(np.median(piece.pitch))
    top = med - 3 - int(rng.integers(0, 4))  # chord tones end a little below the melody's middle
    bass_top = top - 12 - int(rng.integers(0, 5))
    beat = 1.0
    s_out, e_out, p_out, k_out = ([piece.start], [piece.end], [piece.pitch.astype(np.int64)],
                                  [np.zeros(len(piece.pitch), np.int64)])
    t0, t1 = float(piece.start.min()), float(piece.end.max())
    for a, b, root, minor in piece.chords:
        a, b = max(float(a), t0), min(float(b), t1)
        if b - a < 1e-6:
            continue
        root = int(root)
        tones = sorted(_below(pc, top) for pc in (root, root + (3 if minor else 4), root + 7))
        if chord_style == "held":
            hits = [(a, b, tones)]
        else:
            times = np.arange(a, b - 1e-6, beat)
            ends = np.minimum(times + beat, b)
            if chord_style == "beats":
                hits = [(s, e, tones) for s, e in zip(times, ends)]
            else:  # arpeggio: root, third, fifth, third ...
                cycle = [tones[0], tones[1], tones[2], tones[1]]
                hits = [(s, e, [cycle[i % 4]]) for i, (s, e) in enumerate(zip(times, ends))]
        for s, e, ps in hits:
            s_out.append(np.full(len(ps), s))
            e_out.append(np.full(len(ps), e))
            p_out.append(np.array(ps, np.int64))
            k_out.append(np.ones(len(ps), np.int64))
        bass = _below(root, bass_top)
        if bass_style == "held" or b - a <= 2 * beat:
            bs = [(a, b)]
        else:
            times = np.arange(a, b - 1e-6, 2 * beat)
            bs = list(zip(times, np.minimum(times + 2 * beat, b)))
        s_out.append(np.array([s for s, _ in bs]))
        e_out.append(np.array([e for _, e in bs]))
        p_out.append(np.full(len(bs), bass, np.int64))
        k_out.append(np.full(len(bs), 2, np.int64))
    return _piece(piece, np.concatenate(s_out), np.concatenate(e_out), np.concatenate(p_out),
                  np.concatenate(k_out))


def _parts_piece(piece: Piece, parts: list[int]) -> Piece:
    keep = np.isin(piece.part, parts) if piece.part is not None else np.ones(len(piece.pitch),
                                                                              bool)
    return _piece(piece, piece.start[keep], piece.end[keep], piece.pitch[keep],
                  piece.part[keep] if piece.part is not None else np.zeros(int(keep.sum())))


def top_line(piece: Piece) -> Piece:
    """The top part alone (as a file with one track)."""
    return _parts_piece(piece, [piece.top_part()])


def bottom_part(piece: Piece) -> int:
    """The part with the lowest mean pitch (the bass)."""
    if piece.part is None:
        return 0
    return min(piece.parts(), key=lambda k: (float(piece.pitch[piece.part == k].mean()), -k))


def melody_bass(piece: Piece) -> Piece:
    """The top part and the lowest part (the piece itself when it has one part)."""
    return _parts_piece(piece, sorted({piece.top_part(), bottom_part(piece)}))


def dropped_parts(piece: Piece, rng: np.random.Generator) -> Piece:
    """A random non-empty subset of the parts (each kept with probability 1/2)."""
    parts = piece.parts()
    keep = [k for k in parts if rng.random() < 0.5] or [int(rng.choice(parts))]
    return _parts_piece(piece, keep)


def training_texture(piece: Piece, rng: np.random.Generator) -> Piece:
    """One texture change drawn for a training piece: a one-part piece accompanied; a piece of
    several parts reduced to its top line, to top line + bass, or to a random subset of parts."""
    if len(piece.parts()) == 1:
        return accompanied(piece, rng)
    pick = rng.random()
    if pick < 0.35:
        return top_line(piece)
    if pick < 0.7:
        return melody_bass(piece)
    return dropped_parts(piece, rng)


def piece_rng(piece: Piece, salt: str = "") -> np.random.Generator:
    """A generator that depends on the piece alone (the same test set whoever builds it)."""
    h = hashlib.md5(f"{salt}|{piece.label}|{piece.group}|{piece.source}|{len(piece.pitch)}"
                    .encode())
    return np.random.default_rng(int(h.hexdigest()[:12], 16))


def _folk_chords(p: Piece) -> Piece:
    return accompanied(p, piece_rng(p, "chords"))


def _swapped(p: Piece) -> Piece:
    return _folk_chords(p) if len(p.parts()) == 1 else top_line(p)


#: The out-of-distribution test sets: each test piece with its texture changed, read as a whole
#: file. Name -> (what it does, the change).
OOD_SETS: dict[str, tuple[str, Callable[[Piece], Piece]]] = {
    "folk + chords": ("folk tunes with rule-made chords and bass; the other pieces as they are",
                      _folk_chords),
    "one line": ("pieces of several parts reduced to their top part; folk tunes as they are",
                 lambda p: top_line(p) if len(p.parts()) > 1 else p),
    "melody + bass": ("pieces of several parts reduced to top part + bass; folk tunes with "
                      "chords and bass", lambda p: melody_bass(p) if len(p.parts()) > 1
                      else _folk_chords(p)),
    "swapped": ("folk tunes with chords and bass, every other piece reduced to its top part: "
                "the texture of the training data inverted", _swapped),
}
