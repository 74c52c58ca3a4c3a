"""The priors a session puts on the accompanist's decoders before a voice's line is decided:
nats added to or taken off the onset/active log-odds, so that the model's strong choices still
pass. Key, tonal, onset and chord priors are decoding settings (their defaults, offline and live,
chosen on the valid split by `popmusicnet eval accompanist`, stored in the card); the ceiling and
the cadence are fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from engine.errors import UserInputError
from engine.models.band_patterns import QUALITY_TONES
from engine.music import MAJOR_SCALE, MINOR_SCALE, Key

if TYPE_CHECKING:
    from engine.models.accompanist import Accompanist, RoleInfo

# Nats taken off the log-odds of an accompaniment pitch above the melody note sounding at that
# step (the voices sing under the tune; measured on the test chorales: Bach's voices go above
# the soprano 0.3% of the time).
CEILING_PRIOR = 8.0
# Nats taken off the log-odds of a pitch outside the tonic triad (the bass: outside the tonic)
# under the melody's final note, when the end of the melody is known (offline); half as many
# added to the triad's (the tonic's) own.
CADENCE_PRIOR = 6.0
# The tonal prior's penalty of a scale degree, log(share of the commonest degree / its share) in
# the training accompaniments (ModelCard representation "tonal_profile"), stops growing here:
# a degree the training voices never sounded is not ruled out.
TONAL_CLIP = 3.0
# The chord prior: its nats are taken off the log-odds of the pitches outside the planned chord
# and added to the chord tones' (onsets: this share of them). Pushed out alone, the voices fell
# silent where the model wanted another note (measured on the valid chorales at 2 nats: 11.1
# notes a bar, Bach 12.6); pulled in at full strength they re-struck chord tones (14.5);
# this share: 12.7.
CHORD_ONSET_PULL = 0.25
# The chord prior's bass: this share of its nats also taken off the log-odds of a chord tone
# that is not the chord's root (the bass says the root; inversions still pass).
BASS_ROOT_SHARE = 0.5


class ChordPlan(NamedTuple):
    """The chords planned under one bar unit, per step, in the normalised key: `tones` (S, 12)
    the pitch classes of the chord sounding at each step (every one where none is planned),
    `root` (S,) its root (-1: none)."""

    tones: np.ndarray
    root: np.ndarray

    @classmethod
    def of_steps(cls, chords: Sequence[tuple[int, str] | None], shift: int) -> ChordPlan:
        """The plan of per-step chords (root pitch class, quality: engine.models.band_chords;
        None: no chord), moved `shift` semitones into the normalised key."""
        tones = np.ones((len(chords), 12), bool)
        root = np.full(len(chords), -1, np.int64)
        for s, chord in enumerate(chords):
            if chord is not None:
                root[s] = (chord[0] + shift) % 12
                tones[s] = False
                tones[s, [(root[s] + d) % 12 for d in QUALITY_TONES[chord[1]]]] = True
        return cls(tones, root)


def _setting(name: str, given: float | None, default: float) -> float:
    value = default if given is None else float(given)
    if value < 0:
        raise UserInputError(f"{name} must be >= 0, got {value:g}")
    return value


class Priors:
    """The priors of one session, in the normalised key (the melody's tonic moved to C).

    Key prior: nats per step taken off the log-odds of pitches outside the melody's key when a
    voice is decided (0: none). The model, fed back its own bars, can drift into a neighbouring
    key and stay there (measured: an alto on E-flat for 55% of an A-minor chorale); the prior
    keeps it home, and the model's strong chromatic notes (leading tones, secondary dominants)
    still pass.

    Tonal prior: nats per unit of a scale degree's penalty (up to TONAL_CLIP) taken off a
    pitch's log-odds (0: none). The key prior only tells the scale from the rest; inside the
    scale the voices, fed back their own bars, settle as happily on the dominant or the relative
    minor as on the tonic, and the accompaniment alone is then heard in that key (measured on
    the valid chorales: 70% in the melody's tonic without it, Bach's own voices 67%). This prior
    leans each degree toward its share of the training accompaniments, where the tonic and the
    dominant sound most. Cards without a profile: none.

    Both apply once the key is known. Onset prior: nats taken off every onset's log-odds (0:
    none). Sampled latents (temperature > 0) spread the onset probabilities over more steps, and
    the voices break into short notes (measured on valid at T 0.75: 15.0 notes a bar, Bach 12.6);
    the prior asks each new note to be that much surer.

    Chord prior: nats per step taken off the log-odds of the pitches outside the chord planned
    under that step (`ChordPlan`) and added to the chord tones' (CHORD_ONSET_PULL of them to
    their onsets; the bass also leans to the root, BASS_ROOT_SHARE), 0: none. The voices,
    learned bar by bar, have no harmonic rhythm of their own; with it they follow the chords
    the band's chord model plans for the melody.
    """

    def __init__(self, model: Accompanist, *, key_prior: float | None = None,
                 onset_prior: float | None = None, tonal_prior: float | None = None,
                 chord_prior: float | None = None) -> None:
        self.m = model
        self.key_prior = _setting("key prior", key_prior, model.default_key_prior)
        self.onset_prior = _setting("onset prior", onset_prior, model.default_onset_prior)
        self.tonal_prior = _setting("tonal prior", tonal_prior, model.default_tonal_prior)
        self.chord_prior = _setting("chord prior", chord_prior, model.default_chord_prior)
        self.key_known = False
        self.key_pen: list[np.ndarray] = []  # per role (P,): nats off each pitch's log-odds
        self.tonic_pc = 0  # the key's tonic, normalised (C)
        self.triad = frozenset({0, 4, 7})  # the tonic triad, normalised
        pitched = [r for r in model.role_infos if not r.is_drum] or list(model.role_infos)
        self.lowest = min(pitched, key=lambda r: r.spec.low_pitch)  # the bass

    def set_key(self, key: Key, shift: int) -> None:
        """The melody's key, moved by `shift` semitones into the model's normalised key."""
        m = self.m
        self.key_known = True
        self.tonic_pc = (key.tonic + shift) % 12
        # the older cards' key prior keeps C major / A minor's white keys whatever the mode
        scale = MINOR_SCALE if key.mode == "minor" and m.tonic_normalised else MAJOR_SCALE
        off_key = [r.off_key(frozenset((self.tonic_pc + d) % 12 for d in scale))
                   if m.tonic_normalised else r.off_key(frozenset(MAJOR_SCALE))
                   for r in m.role_infos]
        degree_pen = np.zeros(12)
        profile = m.tonal_profile.get(key.mode) if m.tonic_normalised else None
        if profile is not None and self.tonal_prior > 0:
            with np.errstate(divide="ignore"):
                degree_pen = np.minimum(np.log(profile.max()) - np.log(profile), TONAL_CLIP)
        self.key_pen = [(self.key_prior * off + self.tonal_prior * degree_pen[
                            (r.pitch_classes - self.tonic_pc) % 12] * (not r.is_drum))
                        .astype(np.float32) for off, r in zip(off_key, m.role_infos)]
        third = 3 if key.mode == "minor" else 4
        self.triad = frozenset((self.tonic_pc + d) % 12 for d in (0, third, 7))

    def apply(self, logits: Sequence[tuple[np.ndarray, np.ndarray]],
              ceiling: np.ndarray | None = None,
              cadence: int | None = None,
              chord: ChordPlan | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every role's (onset, active) logits (S, P) with the priors taken off: key, tonal and
        onset; `ceiling` (S,): the highest pitch (normalised) each step may take without
        CEILING_PRIOR off; `cadence`: from this step on the melody holds its final note, under
        which the bass takes the tonic and the others the tonic triad (CADENCE_PRIOR off the
        rest)."""
        logits = list(logits)
        if self.key_known and (self.key_prior > 0 or self.tonal_prior > 0):
            logits = [(on, ac - pen) for pen, (on, ac) in zip(self.key_pen, logits)]
        if self.onset_prior > 0:
            logits = [(on - self.onset_prior, ac) for on, ac in logits]
        if chord is not None and self.chord_prior <= 0:
            chord = None
        if ceiling is not None or cadence is not None or chord is not None:
            logits = [self._shape(r, on, ac, ceiling, cadence, chord)
                      for r, (on, ac) in zip(self.m.role_infos, logits)]
        return logits

    def _shape(self, r: RoleInfo, on: np.ndarray, ac: np.ndarray, ceiling: np.ndarray | None,
               cadence: int | None, chord: ChordPlan | None = None) \
            -> tuple[np.ndarray, np.ndarray]:
        """One role's logits with the ceiling, the cadence and the chord taken off (see
        `apply`)."""
        if r.is_drum:
            return on, ac
        pen = np.zeros(ac.shape, np.float32)
        if ceiling is not None:
            pitches = r.spec.low_pitch + np.arange(r.spec.n_pitches)
            pen += CEILING_PRIOR * (pitches[None, :] > ceiling[:, None])
        if cadence is not None:
            # the chord's own notes are pulled in as the others are pushed out, so that a voice
            # closes on one of them rather than falling silent
            wanted = np.isin(r.pitch_classes,
                             sorted({self.tonic_pc} if r is self.lowest else self.triad))
            pen[cadence:] += CADENCE_PRIOR * np.where(wanted, -0.5, 1.0)
        pull = None
        if chord is not None:
            # chord tones pulled in, the rest pushed out; unplanned steps: neither
            tones = chord.tones[:, r.pitch_classes]  # (S, P)
            inside = tones & (chord.root >= 0)[:, None]
            pen += self.chord_prior * ~tones
            pull = self.chord_prior * inside
            if r is self.lowest:
                not_root = chord.root[:, None] != r.pitch_classes[None, :]
                pen += (self.chord_prior * BASS_ROOT_SHARE) * (inside & not_root)
        if pull is None:
            return on - pen, ac - pen
        return on - pen + CHORD_ONSET_PULL * pull, ac - pen + pull
