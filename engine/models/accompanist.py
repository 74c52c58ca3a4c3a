"""The accompanist at runtime: VAE-RNN graphs in ONNX Runtime, numpy in, notes out (never torch).

Per bar unit (see engine.representation): encode the melody bar to a latent, step each role's
RNN on (melody latent, the role's previous latent, the bar's step mask), decode the predicted
latent to onset/active probabilities, turn them into planes (a single-line voice: the most likely
line under the thresholds chosen on the validation split, stored in the card; see
`decode_lines`), then notes. The decoded bar is encoded again and
fed back as the role's previous latent, so the RNN conditions on what was actually played.

Keys: the model was trained on melodies whose tonic, estimated from the melody alone, was moved
to C (C major, C minor; cards of the older layout: C major / A minor); `accompany` estimates the
key of the whole melody the same way (its last note favoured as the tonic,
engine.music.melody_key), and a live session estimates it from what it has observed
(re-estimated over the first bars, then fixed) unless given one. The accompaniment is
transposed back.

Priors (nats added to or taken off the decoders' log-odds when a voice's line is decided, so the
model's strong choices still pass): the key prior keeps voices in the melody's scale, the onset
prior asks each new note to be surer, the ceiling keeps the voices under the melody, and offline
the cadence prior settles the final chord on the tonic, and the tonal prior leans the voices on
the key's main degrees, and the chord prior has them follow the chords the band's chord model
(engine.models.band) plans for the whole melody (engine.models.accompanist_priors).

Modules: this one loads the card and accompanies a whole song; engine.models.accompanist_graphs
runs the card's ONNX graphs (fused or per role, one interface); a streaming session
(engine.models.accompanist_session) holds the RNN states of one performance, offline or live;
engine.models.accompanist_priors shapes the decoders' log-odds; engine.models.line_decoding
(with engine.models.viterbi) turns them into a voice's line.

Temperature: 0 decodes the predicted latent mean (deterministic). T > 0 adds Gaussian noise of
T x the RNN's residual standard deviation (measured on the validation split, in the card) to the
latent before decoding: variation in latent space stays musical, where per-cell Bernoulli noise
would scatter stray notes.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import ModelError, UserInputError
from engine.models import viterbi
from engine.models.accompanist_graphs import AccompanistGraphs, open_graphs
from engine.models.accompanist_priors import ChordPlan
from engine.models.accompanist_session import AccompanimentSession, shift_notes
from engine.models.card import ModelCard
from engine.models.runtime import load_card
from engine.music import ROLE_ACCOMPANIMENT, Key, Note, Song, Track, estimate_key, melody_key
from engine.representation import BarSpec, bar_grid, decode_notes, encode_notes

if TYPE_CHECKING:
    from engine.models.band import BandAccompanist

log = logging.getLogger(__name__)

KIND = "accompanist"
DEFAULT_MODEL = "accompanist-bach"
PRIOR_NAMES = ("key_prior", "onset_prior", "tonal_prior", "chord_prior")


@dataclass
class RoleInfo:
    name: str
    spec: BarSpec
    program: int
    is_drum: bool
    velocity: int
    thr_onset: float
    thr_active: float
    max_voices: int
    resid_std: np.ndarray

    @functools.cached_property
    def pitch_classes(self) -> np.ndarray:
        """(P,) the pitch class of each pitch of the window."""
        return (self.spec.low_pitch + np.arange(self.spec.n_pitches)) % 12

    def off_key(self, scale: frozenset[int]) -> np.ndarray:
        """(P,) 1.0 where the window's pitch is outside `scale` (normalised pitch classes).
        Drums: none."""
        off = ~np.isin(self.pitch_classes, sorted(scale))
        return (off & (not self.is_drum)).astype(np.float32)


class Accompanist:
    """A loaded accompanist model (one ONNX session per graph)."""

    def __init__(self, card: ModelCard, *, providers: str = "auto",
                 graphs: str = "auto") -> None:
        """`graphs`: "auto" (the fused graphs where the card has them), "fused" or "per_role"
        (engine.models.accompanist_graphs)."""
        if card.kind != KIND:
            raise ModelError(f"model {card.name!r} is a {card.kind}, not an {KIND}")
        self.card = card
        self.name = card.name
        rep = card.representation
        try:
            self.latent = int(rep["latent"])
            self.rnn_hidden = int(rep["rnn_hidden"])
            tracks = rep["tracks"]
            melody = tracks[0]
            self._mel_spec = BarSpec.from_dict(melody["spec"])
            roles = []
            for t in tracks[1:]:
                dec = rep["decoding"][t["name"]]
                roles.append(RoleInfo(
                    t["name"], BarSpec.from_dict(t["spec"]), int(t["program"]),
                    bool(t.get("is_drum", False)), int(t.get("velocity", 80)),
                    float(dec["thr_onset"]), float(dec["thr_active"]), int(dec["max_voices"]),
                    np.asarray(dec.get("resid_std", [1.0] * self.latent), np.float32)))
            self._role_infos = tuple(roles)
            self.default_temperature = float(rep.get("default_temperature", 0.0))
            # a live session plans each bar before it is heard: its own default, chosen on
            # valid by `eval accompanist` for the live path (cards without one: the same)
            self.default_live_temperature = float(rep.get("default_live_temperature",
                                                          self.default_temperature))
            self.default_key_prior = float(rep.get("default_key_prior", 0.0))
            self.default_onset_prior = float(rep.get("default_onset_prior", 0.0))
            self.default_tonal_prior = float(rep.get("default_tonal_prior", 0.0))
            self.default_chord_prior = float(rep.get("default_chord_prior", 0.0))
            # the live path's priors, chosen on valid for it (cards without: the same): live,
            # the key is estimated from the bars heard and a bar's chord guessed before it
            live = rep.get("default_live_priors") or {}
            self.default_live_priors = {name: float(live.get(name, getattr(self, "default_"
                                                                           + name)))
                                        for name in PRIOR_NAMES}
            self.tonal_profile = {mode: np.asarray(v, np.float64) for mode, v in
                                  (rep.get("tonal_profile") or {}).items()}
            if any(v.shape != (12,) or (v < 0).any() for v in self.tonal_profile.values()):
                raise ValueError("tonal_profile needs 12 shares >= 0 per mode")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model {card.name!r}: card representation is incomplete ({exc})") \
                from None
        # "tonic": melodies were normalised to C major / C minor; else C major / A minor
        self.tonic_normalised = rep.get("key_normalisation") == "tonic"
        self.melody_name = melody["name"]
        self.roles = tuple(r.name for r in roles)
        self.programs = tuple(r.program for r in roles)
        self.drums = tuple(r.is_drum for r in roles)
        self.max_bar_steps = self._mel_spec.max_bar_steps
        # every role's RNN step + decoder in one graph, every re-encoder in another (two calls
        # a bar instead of nine: each call re-takes the GIL), or the per-role graphs
        self._graphs = open_graphs(card, kind=graphs, providers=providers)
        self._providers = providers
        self._chords = None  # the chord model, loaded when the chord prior asks for it
        self.provider = self._graphs.provider
        viterbi.warm_up()  # compile the line decision now, not on the first live bar
        log.info("accompanist %s: roles %s, running on %s", self.name, ", ".join(self.roles),
                 self.provider)

    @property
    def graphs(self) -> AccompanistGraphs:
        """The card's ONNX graphs (fused or per role) behind one interface."""
        return self._graphs

    @property
    def role_infos(self) -> tuple[RoleInfo, ...]:
        """Per accompaniment role: its window, program, decoding thresholds."""
        return self._role_infos

    @property
    def uses_prev_last(self) -> list[bool]:
        """Per role: its decoder takes what the role still sounds at the bar line."""
        return self._graphs.uses_prev_last

    @property
    def mel_spec(self) -> BarSpec:
        """The melody's bar window."""
        return self._mel_spec

    def normalising_shift(self, key: Key) -> int:
        """Semitones that move `key` to the key the model was trained in."""
        return key.tonic_shift() if self.tonic_normalised else key.normalising_shift()

    def melody_key(self, notes: Sequence[Note]) -> Key | None:
        """The key of a whole melody, estimated the way the model's training estimated it."""
        return melody_key(notes) if self.tonic_normalised else estimate_key(notes)

    @classmethod
    def load(cls, name: str | None = None, *, providers: str = "auto",
             graphs: str = "auto") -> Accompanist:
        """A model by name or card path; None = the bundled default (else the first installed);
        `graphs`: see the constructor."""
        if name is None:
            try:
                card = load_card(DEFAULT_MODEL, kind=KIND)
            except ModelError:
                card = load_card(None, kind=KIND)
        else:
            card = load_card(name, kind=KIND)
        return cls(card, providers=providers, graphs=graphs)

    # -- offline ------------------------------------------------------------------------------
    def accompany(self, song: Song, *, melody_track: int | None = None,
                  temperature: float | None = None, seed: int | None = None,
                  key_prior: float | None = None, onset_prior: float | None = None,
                  tonal_prior: float | None = None, chord_prior: float | None = None,
                  key: Key | None = None) -> Song:
        """A copy of `song` with one new track per role covering the whole melody; in `key`
        when the player names it, else in the key estimated from the whole melody."""
        return self.accompany_with_chords(
            song, melody_track=melody_track, temperature=temperature, seed=seed,
            key_prior=key_prior, onset_prior=onset_prior, tonal_prior=tonal_prior,
            chord_prior=chord_prior, key=key)[0]

    def accompany_with_chords(self, song: Song, *, melody_track: int | None = None,
                              temperature: float | None = None, seed: int | None = None,
                              key_prior: float | None = None, onset_prior: float | None = None,
                              tonal_prior: float | None = None, chord_prior: float | None = None,
                              key: Key | None = None) -> tuple[Song, list]:
        """`accompany`, and the chords the voices followed ((tick, root, quality) changes,
        engine.models.band_chords; none without the chord prior), for printing or drawing."""
        out = song.copy()
        if melody_track is not None:
            if not 0 <= melody_track < len(out.tracks):
                raise UserInputError(f"melody track {melody_track} does not exist (the song has "
                                     f"{len(out.tracks)} tracks, numbered from 0)")
            melody = out.tracks[melody_track]
        else:
            melody = out.melody_track()
        if melody is None or not melody.notes:
            raise UserInputError("the song has no melody notes to accompany")
        key = key or self.melody_key(melody.notes)
        if temperature is None:
            temperature = self.default_temperature
        # the offline defaults (a bare session takes the live ones)
        key_prior, onset_prior, tonal_prior, chord_prior = (
            getattr(self, "default_" + name) if given is None else given
            for name, given in zip(PRIOR_NAMES, (key_prior, onset_prior, tonal_prior,
                                                 chord_prior)))
        sess = self.session(temperature=temperature, seed=seed, key=key, key_prior=key_prior,
                            onset_prior=onset_prior, tonal_prior=tonal_prior,
                            chord_prior=chord_prior)
        grid = bar_grid(out, self._mel_spec, end=melody.end)
        plans, chords = [None] * len(grid), []
        if sess.priors.chord_prior > 0 and (band := self.chord_model()) is not None:
            chords = band.chords(out, melody.notes, key=key)
            plans = chord_plans(grid, chords, sess.shift, self.max_bar_steps)
        mel_bars = encode_notes(shift_notes(melody.notes, sess.shift), grid, self._mel_spec)
        masks = grid.masks(self.max_bar_steps)
        per_role = [np.zeros((len(grid), 2, self.max_bar_steps, r.spec.n_pitches), bool)
                    for r in self.role_infos]
        for i in range(len(grid)):
            final = i == len(grid) - 1
            planes = sess.accompany_unit(masks[i][None], mel_planes=mel_bars[i], final=final,
                                         chord=plans[i])
            sess.observe_unit(mel_bars[i], masks[i][None])
            for k, p in enumerate(planes):
                per_role[k][i] = p
        for k, r in enumerate(self.role_infos):
            notes = decode_notes(per_role[k], grid, r.spec, velocity=r.velocity)
            if not r.is_drum:
                notes = shift_notes(notes, -sess.shift)
            out.tracks.append(Track(r.name.capitalize(), r.program, r.is_drum,
                                    ROLE_ACCOMPANIMENT, notes))
        return out, chords

    def session(self, *, temperature: float | None = None, seed: int | None = None,
                key: Key | None = None, key_prior: float | None = None,
                onset_prior: float | None = None, tonal_prior: float | None = None,
                chord_prior: float | None = None) -> AccompanimentSession:
        """A streaming session (for the live engine; its temperature and priors default to the
        card's live ones); `key` fixes the key instead of estimating it from the observed
        melody."""
        return AccompanimentSession(self, temperature=temperature, seed=seed, key=key,
                                    key_prior=key_prior, onset_prior=onset_prior,
                                    tonal_prior=tonal_prior, chord_prior=chord_prior)

    def chord_names(self, song: Song, melody: Sequence[Note], *,
                    chords: Sequence[tuple[int, int, str]]) -> list[list[str]]:
        """The names of `chords` (the ones `accompany_with_chords` followed) per bar, as the
        band names its own (BandAccompanist.chord_names); [] where none were followed."""
        band = self.chord_model() if chords else None
        return band.chord_names(song, melody, chords=chords) if band else []

    def chord_labels(self, song: Song, melody: Sequence[Note], *,
                     chords: Sequence[tuple[int, int, str]]) -> list[tuple[int, str]]:
        """(tick, chord name) of every change of `chords`, for the roll; [] where none."""
        band = self.chord_model() if chords else None
        return band.chord_labels(song, melody, chords=chords) if band else []

    def chord_model(self) -> BandAccompanist | None:
        """The band's chord model the chord prior follows (loaded once); None, with a warning,
        where no band model is installed (the voices then go without the chord prior)."""
        if self._chords is None:
            from engine.models.band import BandAccompanist

            try:
                self._chords = BandAccompanist.load(providers=self._providers)
            except ModelError as exc:
                log.warning("no chord model for the chord prior, the voices go without it (%s)",
                            exc)
                self._chords = False
        return self._chords or None


def chord_plans(grid, chords: Sequence[tuple[int, int, str]], shift: int,
                steps: int) -> list[ChordPlan]:
    """Per bar unit of `grid`, the plan of the chords (tick, root, quality; absolute pitch
    classes, each until the next) sounding at each of its `steps` steps, moved `shift`
    semitones into the normalised key."""
    ticks = np.array([c[0] for c in chords], np.int64)
    plans = []
    for i in range(len(grid)):
        at = grid.start[i] + (np.arange(steps) - grid.offset[i]) * grid.ticks_per_beat \
            // grid.steps_per_beat
        idx = np.searchsorted(ticks, at, side="right") - 1
        plans.append(ChordPlan.of_steps([chords[j][1:] if j >= 0 else None for j in idx],
                                        shift))
    return plans
