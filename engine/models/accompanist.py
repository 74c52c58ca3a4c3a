"""The accompanist at runtime: VAE-RNN graphs in ONNX Runtime, numpy in, notes out (never torch).

Per bar unit (see engine.representation): encode the melody bar to a latent, step each role's
RNN on (melody latent, the role's previous latent, the bar's step mask), decode the predicted
latent to onset/active probabilities, turn them into planes (a single-line voice: the most likely
line under the thresholds chosen on the validation split, stored in the card; see
`decode_lines`), then notes. The decoded bar is encoded again and
fed back as the role's previous latent, so the RNN conditions on what was actually played.

Keys: the model was trained on melodies whose tonic, estimated from the melody alone, was moved
to C (C major, C minor; cards of the older layout: C major / A minor); `accompany` estimates the
key of the whole melody the same way (its last note counted again, engine.music.melody_key), and
a live session estimates it from what it has observed (re-estimated over the first bars, then
fixed) unless given one. The accompaniment is transposed back.

Priors (nats added to or taken off the decoders' log-odds when a voice's line is decided, so the
model's strong choices still pass): the key prior keeps voices in the melody's scale, the onset
prior asks each new note to be surer, the ceiling keeps the voices under the melody, and offline
the cadence prior settles the final chord on the tonic (see AccompanimentSession).

Temperature: 0 decodes the predicted latent mean (deterministic). T > 0 adds Gaussian noise of
T x the RNN's residual standard deviation (measured on the validation split, in the card) to the
latent before decoding: variation in latent space stays musical, where per-cell Bernoulli noise
would scatter stray notes.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from engine.errors import ModelError, UserInputError
from engine.models import viterbi
from engine.models.card import ModelCard
from engine.models.runtime import load_card
from engine.music import (MAJOR_SCALE, MINOR_SCALE, ROLE_ACCOMPANIMENT, Key, Note, Song, Track,
                          estimate_key, melody_key)
from engine.representation import (ACTIVE, ONSET, BarSpec, bar_grid, bar_units, decode_bar,
                                   decode_notes, encode_bar, encode_notes, step_mask)

log = logging.getLogger(__name__)

KIND = "accompanist"
DEFAULT_MODEL = "accompanist-bach"
KEY_BARS = 8  # a live session re-estimates the key over this many observed bars, then keeps it
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


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warnings for large |x|


def decode_planes(on_logits: np.ndarray, ac_logits: np.ndarray, thr_onset: float,
                  thr_active: float, max_voices: int) -> np.ndarray:
    """Logits (..., S, P) -> bool planes (..., 2, S, P): a pitch sounds where its probability
    passes `thr_active` and it is among the `max_voices` likeliest of its step (chorale voices are
    single lines); it is re-struck where the onset probability passes `thr_onset`."""
    p_ac = sigmoid(ac_logits)
    active = p_ac > thr_active
    if max_voices < p_ac.shape[-1]:
        kth = -np.partition(-p_ac, max_voices - 1, axis=-1)[..., max_voices - 1:max_voices]
        active &= p_ac >= kth
    onset = (sigmoid(on_logits) > thr_onset) & active
    return np.stack([onset, active], axis=-3)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def decode_lines(on_logits: np.ndarray, ac_logits: np.ndarray, thr_onset: np.ndarray,
                 thr_active: np.ndarray, allowed: np.ndarray,
                 held: np.ndarray | None = None, *, compiled: bool = True) -> np.ndarray:
    """The most likely single line per row: logits (B, S, P) -> bool planes (B, 2, S, P).

    A voice's step either rests or sounds one pitch; a new pitch needs an onset, a held pitch
    needs none. Each step scores the active log-odds of its pitch against `thr_active`, each
    onset the onset log-odds against `thr_onset` (both per row: a pitch alone sounds where its
    probability passes the threshold, as in `decode_planes`), and Viterbi finds the best line
    for the bar. Deciding step by step instead (`decode_planes`) follows every flicker of the
    per-step argmax: measured on the valid chorales, it played 146% of Bach's notes, chopped
    into 16ths; this plays 98%. A note one step long is then not struck again on the same
    pitch (the two are joined): sampled latents made voices stutter (7.2% of the notes at
    temperature 0.75 were such repeats; Bach's voices: 0.01%; joined: 0.01%). (A Viterbi with a
    "just struck" state enforces it inside the search, at 2.4x the cost: 0.94 against 0.40 ms
    a bar; on test it gave the same figures.) `allowed`
    (S,) marks the steps inside the bar; `held` (B,) the pitch index each row still sounds at
    the bar line (-1: none), which may go on unstruck. `compiled`: the numba kernel of
    engine.models.viterbi when it is there (same planes, 12x faster), else this numpy loop.
    """
    B, S, P = ac_logits.shape
    emit = ac_logits.astype(np.float64) - _logit(np.asarray(thr_active, np.float64))[:, None, None]
    gain = on_logits.astype(np.float64) - _logit(np.asarray(thr_onset, np.float64))[:, None, None]
    line_planes = viterbi.kernel() if compiled else None
    if line_planes is not None:
        out = np.zeros((B, 2, S, P), bool)
        held = np.full(B, -1, np.int64) if held is None else np.asarray(held, np.int64)
        line_planes(emit, gain, np.asarray(allowed, bool), held, out)
        return out
    rows = np.arange(B)
    neg = -1e18
    score = np.full((B, P + 1), neg)  # states: pitch 0..P-1 sounding, P = rest
    score[:, P] = 0.0
    if held is not None:
        h = np.asarray(held)
        score[rows[h >= 0], h[h >= 0]] = 0.0
    struck = np.zeros((S, B, P), bool)  # the best way into (s, pitch) was an onset
    came = np.zeros((S, B), np.int64)  # the best state before s (onsets and rests come from it)
    new = np.empty((B, P))
    for s in range(S):
        a = score.argmax(axis=1)
        best = score[rows, a]
        came[s] = a
        np.add(best[:, None], gain[:, s], out=new)
        np.greater(new, score[:, :P], out=struck[s])
        np.maximum(new, score[:, :P], out=score[:, :P])
        score[:, :P] += emit[:, s]
        if not allowed[s]:
            score[:, :P] = neg
        score[:, P] = best
    out = np.zeros((B, 2, S, P), bool)
    state = score.argmax(axis=1)
    for b in range(B):
        q = int(state[b])
        for s in range(S - 1, -1, -1):
            if q == P:
                q = int(came[s, b])
                continue
            out[b, ACTIVE, s, q] = True
            if struck[s, b, q]:
                out[b, ONSET, s, q] = True
                q = int(came[s, b])
    onset = out[:, ONSET]
    if (onset[:, 1:] & onset[:, :-1]).any():  # join stutters, left to right
        for s in range(1, S):
            onset[:, s] &= ~onset[:, s - 1]
    return out


def _shift_notes(notes: Sequence[Note], semitones: int) -> list[Note]:
    if semitones == 0:
        return list(notes)
    out = []
    for n in notes:
        p = n.pitch + semitones
        while p < 0:
            p += 12
        while p > 127:
            p -= 12
        out.append(Note(n.start, n.end, p, n.velocity))
    return out


@dataclass
class _RoleInfo:
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

    def __init__(self, card: ModelCard, *, providers: str = "auto") -> None:
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
            self._roles = []
            for t in tracks[1:]:
                dec = rep["decoding"][t["name"]]
                self._roles.append(_RoleInfo(
                    t["name"], BarSpec.from_dict(t["spec"]), int(t["program"]),
                    bool(t.get("is_drum", False)), int(t.get("velocity", 80)),
                    float(dec["thr_onset"]), float(dec["thr_active"]), int(dec["max_voices"]),
                    np.asarray(dec.get("resid_std", [1.0] * self.latent), np.float32)))
            self.default_temperature = float(rep.get("default_temperature", 0.0))
            self.default_key_prior = float(rep.get("default_key_prior", 0.0))
            self.default_onset_prior = float(rep.get("default_onset_prior", 0.0))
            self.default_tonal_prior = float(rep.get("default_tonal_prior", 0.0))
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
        self.roles = tuple(r.name for r in self._roles)
        self.programs = tuple(r.program for r in self._roles)
        self.max_bar_steps = self._mel_spec.max_bar_steps
        self._providers = providers
        self._enc_mel = card.open(f"enc_{self.melody_name}", providers=providers)
        self._mel_rnn = card.open("melody_rnn", providers=providers)
        # Every role's RNN step + decoder in one graph, every role's re-encoder in another
        # (two calls a bar instead of nine: each call re-takes the GIL), every role's RNN step
        # alone in a third (a live bar's replay); engine.training.accompanist.fuse. Cards
        # without them run the per-role graphs, which a slim card (the bundled one) lacks.
        fused = all(c in card.files for c in ("roles_decode", "roles_encode"))
        self._fused = ((card.open("roles_decode", providers=providers),
                        card.open("roles_encode", providers=providers)) if fused else None)
        if self._fused is not None and "melody_out" not in self._fused[0].outputs:
            log.info("accompanist %s: fused graphs of an older layout, running the per-role "
                     "graphs (re-fuse: python -m engine.training.accompanist.fuse CARD)", self.name)
            self._fused = None
        self._roles_rnn = (card.open("roles_rnn", providers=providers)
                           if self._fused is not None and "roles_rnn" in card.files else None)
        if self._fused is None:
            for r in self.roles:  # fail now, not on the first bar
                for kind in ("enc", "dec", "rnn"):
                    card.component_path(f"{kind}_{r}")
        self.uses_prev_last = [
            (f"{r}.prev_last" in self._fused[0].inputs) if self._fused is not None
            else ("prev_last" in self._dec[i].inputs) for i, r in enumerate(self.roles)]
        self.provider = self._enc_mel.provider
        viterbi.warm_up()  # compile the line decision now, not on the first live bar
        log.info("accompanist %s: roles %s, running on %s", self.name, ", ".join(self.roles),
                 self.provider)

    # the per-role graphs and the melody decoder, opened when first needed (cards without
    # fused graphs, the tests): the fused graphs hold them
    @functools.cached_property
    def _dec_mel(self):
        return self.card.open(f"dec_{self.melody_name}", providers=self._providers)

    @functools.cached_property
    def _enc(self) -> list:
        return [self.card.open(f"enc_{r}", providers=self._providers) for r in self.roles]

    @functools.cached_property
    def _dec(self) -> list:
        return [self.card.open(f"dec_{r}", providers=self._providers) for r in self.roles]

    @functools.cached_property
    def _rnn(self) -> list:
        return [self.card.open(f"rnn_{r}", providers=self._providers) for r in self.roles]

    def normalising_shift(self, key: Key) -> int:
        """Semitones that move `key` to the key the model was trained in."""
        return key.tonic_shift() if self.tonic_normalised else key.normalising_shift()

    def melody_key(self, notes: Sequence[Note]) -> Key | None:
        """The key of a whole melody, estimated the way the model's training estimated it."""
        return melody_key(notes) if self.tonic_normalised else estimate_key(notes)

    @classmethod
    def load(cls, name: str | None = None, *, providers: str = "auto") -> Accompanist:
        """A model by name or card path; None = the bundled default (else the first installed)."""
        if name is None:
            try:
                card = load_card(DEFAULT_MODEL, kind=KIND)
            except ModelError:
                card = load_card(None, kind=KIND)
        else:
            card = load_card(name, kind=KIND)
        return cls(card, providers=providers)

    # -- offline ------------------------------------------------------------------------------
    def accompany(self, song: Song, *, melody_track: int | None = None,
                  temperature: float | None = None, seed: int | None = None,
                  key_prior: float | None = None, onset_prior: float | None = None,
                  tonal_prior: float | None = None) -> Song:
        """A copy of `song` with one new track per role covering the whole melody."""
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
        key = self.melody_key(melody.notes)
        sess = self.session(temperature=temperature, seed=seed, key=key, key_prior=key_prior,
                            onset_prior=onset_prior, tonal_prior=tonal_prior)
        grid = bar_grid(out, self._mel_spec, end=melody.end)
        mel_bars = encode_notes(_shift_notes(melody.notes, sess.shift), grid, self._mel_spec)
        masks = grid.masks(self.max_bar_steps)
        per_role = [np.zeros((len(grid), 2, self.max_bar_steps, r.spec.n_pitches), bool)
                    for r in self._roles]
        for i in range(len(grid)):
            final = i == len(grid) - 1
            planes = sess._accompany_unit(masks[i][None], mel_planes=mel_bars[i], final=final)
            sess._observe_unit(mel_bars[i], masks[i][None])
            for k, p in enumerate(planes):
                per_role[k][i] = p
        for k, r in enumerate(self._roles):
            notes = decode_notes(per_role[k], grid, r.spec, velocity=r.velocity)
            if not r.is_drum:
                notes = _shift_notes(notes, -sess.shift)
            out.tracks.append(Track(r.name.capitalize(), r.program, r.is_drum,
                                    ROLE_ACCOMPANIMENT, notes))
        return out

    def session(self, *, temperature: float | None = None, seed: int | None = None,
                key: Key | None = None, key_prior: float | None = None,
                onset_prior: float | None = None,
                tonal_prior: float | None = None) -> AccompanimentSession:
        """A streaming session (for the live engine); `key` fixes the key instead of estimating
        it from the observed melody."""
        return AccompanimentSession(self, temperature=temperature, seed=seed, key=key,
                                    key_prior=key_prior, onset_prior=onset_prior,
                                    tonal_prior=tonal_prior)


class _Ahead(NamedTuple):
    """A known bar accompanied just before it is observed: what the fused graphs already
    computed for `observe` (see _roles_step)."""

    melody: np.ndarray  # (1, 2, S, P) the bar's planes
    mask: np.ndarray
    mel_h_in: np.ndarray  # the melody RNN state it stepped from
    z_mel: np.ndarray
    mel_pred: np.ndarray
    mel_h: np.ndarray


@dataclass
class _Pending:
    """An accompaniment step not yet confirmed by the observed melody: enough to replay it."""

    pre_h: list[np.ndarray]
    z_prev_in: list[np.ndarray]
    z_mel: np.ndarray
    mask: np.ndarray
    known: bool
    played: list[np.ndarray] = field(default_factory=list)


class AccompanimentSession:
    """RNN states for one performance. Bar units are counted from the session start: the live
    engine calls `accompany_next` ahead of each bar and `observe` once the bar was played."""

    def __init__(self, model: Accompanist, *, temperature: float | None = None,
                 seed: int | None = None, key: Key | None = None,
                 key_prior: float | None = None, onset_prior: float | None = None,
                 tonal_prior: float | None = None) -> None:
        self.m = model
        self.temperature = model.default_temperature if temperature is None else float(temperature)
        if self.temperature < 0:
            raise UserInputError(f"temperature must be >= 0, got {self.temperature:g}")
        # Key prior: nats per step taken off the log-odds of pitches outside the melody's key
        # when a voice is decided (0: none). The model, fed back its own bars, can drift into a
        # neighbouring key and stay there (measured: an alto on E-flat for 55% of an A-minor
        # chorale); the prior keeps it home, and the model's strong chromatic notes (leading
        # tones, secondary dominants) still pass. Its default is chosen on the valid split by
        # `popmusicnet eval accompanist`, with the temperature. Only applied once the key is known.
        self.key_prior = model.default_key_prior if key_prior is None else float(key_prior)
        if self.key_prior < 0:
            raise UserInputError(f"key prior must be >= 0, got {self.key_prior:g}")
        # Onset prior: nats taken off every onset's log-odds (0: none). Sampled latents
        # (temperature > 0) spread the onset probabilities over more steps, and the voices
        # break into short notes (measured on valid at T 0.75: 15.0 notes a bar, Bach 12.6);
        # the prior asks each new note to be that much surer. Chosen with the others on valid.
        self.onset_prior = model.default_onset_prior if onset_prior is None \
            else float(onset_prior)
        if self.onset_prior < 0:
            raise UserInputError(f"onset prior must be >= 0, got {self.onset_prior:g}")
        # Tonal prior: nats per unit of a scale degree's penalty (TONAL_CLIP) taken off a
        # pitch's log-odds once the key is known (0: none). The key prior only tells the scale
        # from the rest; inside the scale the voices, fed back their own bars, settle as happily
        # on the dominant or the relative minor as on the tonic, and the accompaniment alone is
        # then heard in that key (measured on the valid chorales at tonal prior 0: 70% in the
        # melody's tonic; Bach's voices 67%, and 92% at tonal prior 1). This prior leans each
        # degree toward its share of the training accompaniments, where the tonic and dominant
        # sound most. Chosen on valid with the others; cards without a profile: none.
        self.tonal_prior = model.default_tonal_prior if tonal_prior is None \
            else float(tonal_prior)
        if self.tonal_prior < 0:
            raise UserInputError(f"tonal prior must be >= 0, got {self.tonal_prior:g}")
        self.rng = np.random.default_rng(seed)
        self._fixed_key = key is not None
        self._key_known = False
        self.shift = 0
        self._key_pen: list[np.ndarray] = []  # per role (P,): nats off each pitch's log-odds
        self._tonic_pc = 0  # the key's tonic, normalised (C)
        self._triad = frozenset({0, 4, 7})  # the tonic triad, normalised
        if key is not None:
            self._set_key(key)
        # the melody's last sounding pitch (normalised) and the lowest pitch of the last
        # observed bar: the ceiling of the voices where the melody is not known yet
        self._mel_last: int | None = None
        self._mel_floor: int | None = None
        self._last_planes: np.ndarray | None = None  # the last observed bar's melody planes
        self._heard: list[Note] = []
        self._enc_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._units_cache: tuple[tuple, list] | None = None
        self._ahead: _Ahead | None = None
        self._zero_latent = np.zeros((1, model.latent), np.float32)
        self._zero_planes = np.zeros((1, 2, model.max_bar_steps, model._mel_spec.n_pitches),
                                     np.float32)
        self._masks: dict[int, np.ndarray] = {}
        L, H = model.latent, model.rnn_hidden
        R = len(model.roles)
        self._h = [np.zeros((1, 1, H), np.float32) for _ in range(R)]
        self._z_prev = [np.zeros((1, L), np.float32) for _ in range(R)]
        # what each role still sounds at the last bar line (decoders that take it: newer cards)
        self._prev_last = [np.zeros((1, r.spec.n_pitches), np.float32) for r in model._roles]
        self._uses_prev = model.uses_prev_last
        self._pending: dict[int, _Pending] = {}
        self.n_observed = 0
        self.n_accompanied = 0
        zero_l, zero_s = np.zeros((1, L), np.float32), np.zeros((1, model.max_bar_steps),
                                                                np.float32)
        self._mel_h = np.zeros((1, 1, H), np.float32)
        self._mel_pred, self._mel_h = self._mel_step(zero_l, zero_s, self._mel_h)

    # -- graph calls --------------------------------------------------------------------------
    def _mel_step(self, z, mask, h):
        out = self.m._mel_rnn.run({"z_prev": z, "mask_prev": mask, "h": h})
        return out["z_next"], out["h_out"]

    def _encode_mel(self, planes: np.ndarray, mask: np.ndarray) -> np.ndarray:
        # offline, accompany_next and observe see the same bar: encode it once
        cached = self._enc_cache
        if cached is not None and np.array_equal(cached[0], planes) and \
                np.array_equal(cached[1], mask):
            return cached[2]
        z = self.m._enc_mel.run({"planes": planes[None].astype(np.float32), "mask": mask})["mu"]
        self._enc_cache = (planes.copy(), mask.copy(), z)
        return z

    # -- public API ---------------------------------------------------------------------------
    def observe(self, melody_notes: Sequence[Note], bar_ticks: int, ticks_per_beat: int) -> None:
        """Commit one finished melody bar (times relative to the bar start)."""
        self._update_key(melody_notes)
        for tick, planes, mask in self._units(melody_notes, bar_ticks, ticks_per_beat):
            self._observe_unit(planes, mask)

    def accompany_next(self, bar_ticks: int, ticks_per_beat: int, *,
                       melody_notes: Sequence[Note] | None = None,
                       pending: Sequence[Note] | None = None) -> list[list[Note]]:
        """Notes per role for the next bar, times relative to its start."""
        out: list[list[Note]] = [[] for _ in self.m.roles]
        pend_planes = None
        if melody_notes is None and pending is not None:
            pend_planes = encode_bar(_shift_notes(pending, self.shift), bar_ticks,
                                     ticks_per_beat, self.m._mel_spec)
        for tick, planes, mask in self._units(melody_notes or [], bar_ticks, ticks_per_beat):
            length = int(mask.sum())
            got = self._accompany_unit(mask, mel_planes=planes if melody_notes is not None
                                       else None, pending_planes=pend_planes)
            pend_planes = None
            for k, (r, p) in enumerate(zip(self.m._roles, got)):
                out[k].extend(decode_bar(p, length, ticks_per_beat, r.spec, velocity=r.velocity,
                                         start_tick=tick,
                                         transpose=0 if r.is_drum else -self.shift))
        return out

    # -- internals ----------------------------------------------------------------------------
    def _units(self, notes: Sequence[Note], bar_ticks: int, tpb: int):
        """(tick, planes, mask) of each unit of a bar. The live engine and `latency` pass the
        same bar to `accompany_next` and then `observe`: the last bar's units are kept."""
        key = (tuple(notes), bar_ticks, tpb, self.shift)
        if self._units_cache is not None and self._units_cache[0] == key:
            return self._units_cache[1]
        spec = self.m._mel_spec
        if bar_ticks <= 0 or tpb <= 0:
            raise UserInputError(f"bar_ticks and ticks_per_beat must be positive, "
                                 f"got {bar_ticks}, {tpb}")
        shifted = _shift_notes(notes, self.shift)
        units = bar_units(bar_ticks, tpb, spec)
        out = []
        for j, (tick, length) in enumerate(units):
            end = units[j + 1][0] if j + 1 < len(units) else bar_ticks
            inside = [Note(n.start - tick, n.end - tick, n.pitch, n.velocity)
                      for n in shifted if tick <= n.start < end]
            planes = encode_bar(inside, end - tick, tpb, spec)
            planes.flags.writeable = False
            out.append((tick, planes, self._mask(length)))
        self._units_cache = (key, out)
        return out

    def _mask(self, length: int) -> np.ndarray:
        mask = self._masks.get(length)
        if mask is None:  # a few lengths per session; shared, so read-only
            mask = self._masks[length] = step_mask(length, 0, self.m.max_bar_steps)[None]
            mask.flags.writeable = False
        return mask

    def _update_key(self, notes: Sequence[Note]) -> None:
        if self._fixed_key or self.n_observed >= KEY_BARS:
            return
        self._heard.extend(notes)
        # the melody so far, without a last note yet; older cards: the estimate they trained on
        key = (melody_key(self._heard, final=False) if self.m.tonic_normalised
               else estimate_key(self._heard))
        if key is not None and len({n.pitch % 12 for n in self._heard}) >= 4:
            self._set_key(key)

    def _set_key(self, key: Key) -> None:
        m = self.m
        self.shift = m.normalising_shift(key)
        self._key_known = True
        self._tonic_pc = (key.tonic + self.shift) % 12
        # the older cards' key prior keeps C major / A minor's white keys whatever the mode
        scale = MINOR_SCALE if key.mode == "minor" and m.tonic_normalised else MAJOR_SCALE
        off_key = [r.off_key(frozenset((self._tonic_pc + d) % 12 for d in scale))
                   if m.tonic_normalised else r.off_key(frozenset(MAJOR_SCALE))
                   for r in m._roles]
        degree_pen = np.zeros(12)
        profile = m.tonal_profile.get(key.mode) if m.tonic_normalised else None
        if profile is not None and self.tonal_prior > 0:
            with np.errstate(divide="ignore"):
                degree_pen = np.minimum(np.log(profile.max()) - np.log(profile), TONAL_CLIP)
        self._key_pen = [(self.key_prior * off + self.tonal_prior * degree_pen[
                             (r.pitch_classes - self._tonic_pc) % 12] * (not r.is_drum))
                         .astype(np.float32) for off, r in zip(off_key, m._roles)]
        third = 3 if key.mode == "minor" else 4
        self._triad = frozenset((self._tonic_pc + d) % 12 for d in (0, third, 7))

    def _predict_melody(self, k: int, pending_planes: np.ndarray | None,
                        mask: np.ndarray) -> np.ndarray:
        """The melody latent of unit k when it has not been played: the melody RNN rolled on
        from the last observed unit (over `pending` notes of the unit before, if given)."""
        pred, h = self._mel_pred, self._mel_h
        for j in range(self.n_observed, k):
            z = pred
            if j == k - 1 and pending_planes is not None:
                z = self._encode_mel(pending_planes, mask)
            pred, h = self._mel_step(z, mask, h)
        return pred

    def _accompany_unit(self, mask: np.ndarray, *, mel_planes: np.ndarray | None = None,
                        pending_planes: np.ndarray | None = None,
                        final: bool = False) -> list[np.ndarray]:
        """The planes of every role for the next unit. `final`: the melody ends in it (known
        offline): its last note gets a cadence (CADENCE_PRIOR)."""
        k = self.n_accompanied
        if mel_planes is not None:
            # the fused graph encodes a known bar itself (z_mel None: filled in by _roles_step)
            z_mel = self._encode_mel(mel_planes, mask) if self.m._fused is None else None
            known = True
            cond = mel_planes[None].astype(np.float32)
        elif (guess := self._melody_guess(pending_planes, mask)) is not None:
            # not played yet: the decoders hear a guess (`_melody_guess`); the bar is replayed
            # on the real melody when it is observed
            z_mel = self._encode_mel(guess, mask) if self.m._fused is None else None
            known = True
            cond = guess[None].astype(np.float32)
        else:
            # nothing heard yet: the decoders hear the melody RNN's expected bar (probabilities;
            # the fused graph decodes it itself)
            z_mel, known = self._predict_melody(k, pending_planes, mask), False
            if self.m._fused is None:
                dec = self.m._dec_mel.run({"z": z_mel, "mask": mask})
                cond = sigmoid(np.stack([dec["onset_logits"], dec["active_logits"]], axis=1))
                cond = cond.astype(np.float32)
            else:
                cond = self._zero_planes
        entry = _Pending([h.copy() for h in self._h], [z.copy() for z in self._z_prev],
                         z_mel, mask, known and mel_planes is not None)
        ceiling = self._ceiling(mel_planes, mask)
        cadence = None
        if final and mel_planes is not None:
            struck = np.flatnonzero(mel_planes[ONSET].any(axis=1))
            cadence = int(struck[-1]) if struck.size else 0
        planes = self._roles_step(z_mel, mask, cond, entry, known=known,
                                  ahead=mel_planes is not None and k == self.n_observed,
                                  ceiling=ceiling,
                                  cadence=cadence)
        if k >= self.n_observed:
            self._pending[k] = entry
        self.n_accompanied += 1
        return planes

    def _melody_guess(self, pending_planes: np.ndarray | None,
                      mask: np.ndarray) -> np.ndarray | None:
        """What the decoders hear as the melody of a bar not played yet: the bar before it (what
        was played of it, `pending_planes`, else the last observed bar), its last sounding pitch
        held to the end of this bar. None: nothing heard yet.

        Why not the melody RNN's prediction: decoded, its expected bar is a blur of weak
        probabilities, and decoders trained on real melodies answer a blur with few, uncertain
        notes that drift out of the key (measured live on the valid chorales: accompaniment alone
        in the melody's tonic 16%, 7.8 notes a bar). The bar before, held, is a real melody in
        the right key and register: 72% and 11.3 notes a bar. A sustained last pitch alone (no
        bar before) measured 39%."""
        src = pending_planes if pending_planes is not None and pending_planes[ACTIVE].any() \
            else self._last_planes
        if src is None:
            return None
        guess = np.array(src, dtype=bool)
        act = guess[ACTIVE]
        sounding = np.flatnonzero(act.any(axis=1))
        if sounding.size:
            act[sounding[-1] + 1:int(mask.sum())] = act[sounding[-1]]
        return guess

    def _ceiling(self, mel_planes: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
        """(S,) per step the highest pitch (normalised) the voices may take: the melody note
        sounding then (through rests, the one before); a melody not played yet: the lowest
        note of the last bar observed; nothing heard yet: no limit."""
        S = mask.shape[1]
        if mel_planes is None:
            return np.full(S, 127 if self._mel_floor is None else self._mel_floor)
        act = mel_planes[ACTIVE]
        sounding = act.any(axis=1)
        top = self.m._mel_spec.low_pitch + act.shape[1] - 1 - np.argmax(act[:, ::-1], axis=1)
        # carry the last sounding pitch through rests: index of the latest sounding step
        idx = np.maximum.accumulate(np.where(sounding, np.arange(S), -1))
        before = 127 if self._mel_last is None else self._mel_last
        return np.where(idx >= 0, top[np.maximum(idx, 0)], before)

    def _noise(self, i: int, shape) -> np.ndarray | None:
        if self.temperature <= 0:
            return None
        return (self.temperature * self.m._roles[i].resid_std
                * self.rng.standard_normal(shape)).astype(np.float32)

    def _roles_step(self, z_mel, mask, cond, entry: _Pending | None, *, known: bool,
                    ahead: bool = False, ceiling: np.ndarray | None = None,
                    cadence: int | None = None) -> list[np.ndarray]:
        """Every role's bar: RNN step, decode, decide, re-encode what was decided. `known`: the
        melody bar `cond` was played (the fused graph encodes it itself: `z_mel` may be None),
        else it is predicted as `z_mel` (the fused graph decodes it itself: `cond` is unused).
        `ahead`: it is the next bar to be observed; the fused re-encoder also steps the melody
        RNN on it, kept for `observe` (two graph calls a known bar in all). `ceiling`, `cadence`:
        see `_decide`."""
        m = self.m
        R = len(m._roles)
        if m._fused is not None:
            feeds = {"z_mel": self._zero_latent if z_mel is None else z_mel, "mask": mask,
                     "melody": cond, "known": np.array([[known]])}
            for i, r in enumerate(m._roles):
                noise = self._noise(i, self._z_prev[i].shape)
                feeds[f"{r.name}.z_prev"] = self._z_prev[i]
                feeds[f"{r.name}.h"] = self._h[i]
                feeds[f"{r.name}.noise"] = (noise if noise is not None
                                            else np.zeros_like(self._z_prev[i]))
                if self._uses_prev[i]:
                    feeds[f"{r.name}.prev_last"] = self._prev_last[i]
            res = m._fused[0].run(feeds)
            logits = [(res[f"{r.name}.onset_logits"][0], res[f"{r.name}.active_logits"][0])
                      for r in m._roles]
            hs = [res[f"{r.name}.h_out"] for r in m._roles]
            z_mel, cond = res["z_mel_out"], res["melody_out"]
            if entry is not None:
                entry.z_mel = z_mel
        else:
            logits, hs = [], []
            for i in range(R):
                on, ac, h = self._role_logits(i, z_mel, mask, cond)
                logits.append((on, ac))
                hs.append(h)
        planes = self._decide(logits, mask, ceiling, cadence)
        if m._fused is not None:
            feeds = {"mask": mask, "melody": cond, "z_mel": z_mel, "melody.h": self._mel_h}
            for r, p in zip(m._roles, planes):
                feeds[f"{r.name}.planes"] = p[None].astype(np.float32)
            res = m._fused[1].run(feeds)
            played = [res[f"{r.name}.played"] for r in m._roles]
            if ahead:
                self._ahead = _Ahead(cond, mask, self._mel_h, z_mel, res["melody.z_next"],
                                     res["melody.h_out"])
        else:
            played = [m._enc[i].run({"planes": planes[i][None].astype(np.float32),
                                     "mask": mask, "melody": cond})["mu"] for i in range(R)]
        last = int(np.flatnonzero(mask[0])[-1]) if mask.any() else 0
        for i in range(R):
            self._h[i], self._z_prev[i] = hs[i], played[i]
            self._prev_last[i] = planes[i][ACTIVE, last][None].astype(np.float32)
            if entry is not None:
                entry.played.append(played[i])
        return planes

    def _role_logits(self, i: int, z_mel, mask, cond):
        m = self.m
        res = m._rnn[i].run({"z_mel": z_mel, "z_prev": self._z_prev[i], "mask": mask,
                             "h": self._h[i]})
        z = res["z"]
        noise = self._noise(i, z.shape)
        if noise is not None:
            z = z + noise
        feeds = {"z": z, "mask": mask, "melody": cond}
        if self._uses_prev[i]:
            feeds["prev_last"] = self._prev_last[i]
        dec = m._dec[i].run(feeds)
        return dec["onset_logits"][0], dec["active_logits"][0], res["h_out"]

    def _decide(self, logits, mask, ceiling: np.ndarray | None = None,
                cadence: int | None = None) -> list[np.ndarray]:
        """Planes per role from its logits: single-line roles by `decode_lines` (all at once),
        others by `decode_planes`. The priors first: key, tonal and onset (see __init__); `ceiling`
        (S,): the highest pitch (normalised) each step may take without CEILING_PRIOR off;
        `cadence`: from this step on the melody holds its final note, under which the lowest
        role takes the tonic and the others the tonic triad (CADENCE_PRIOR off the rest)."""
        roles = self.m._roles
        inside = mask[0] > 0
        if self._key_known and (self.key_prior > 0 or self.tonal_prior > 0):
            logits = [(on, ac - pen) for pen, (on, ac) in zip(self._key_pen, logits)]
        if self.onset_prior > 0:
            logits = [(on - self.onset_prior, ac) for on, ac in logits]
        if ceiling is not None or cadence is not None:
            logits = [self._shape(r, on, ac, ceiling, cadence, r is self._lowest)
                      for r, (on, ac) in zip(roles, logits)]
        out: list[np.ndarray | None] = [None] * len(roles)
        lines = [i for i, r in enumerate(roles) if r.max_voices == 1]
        if lines:
            held = np.array([int(np.argmax(self._prev_last[i][0])) if self._prev_last[i].any()
                             else -1 for i in lines])
            got = decode_lines(np.stack([logits[i][0] for i in lines]),
                               np.stack([logits[i][1] for i in lines]),
                               np.array([roles[i].thr_onset for i in lines]),
                               np.array([roles[i].thr_active for i in lines]), inside, held)
            for k, i in enumerate(lines):
                out[i] = got[k]
        for i, r in enumerate(roles):
            if out[i] is None:
                p = decode_planes(logits[i][0], logits[i][1], r.thr_onset, r.thr_active,
                                  r.max_voices)
                out[i] = p & inside[None, :, None]
        return out

    def _shape(self, r: _RoleInfo, on: np.ndarray, ac: np.ndarray, ceiling: np.ndarray | None,
               cadence: int | None, lowest: bool) -> tuple[np.ndarray, np.ndarray]:
        """One role's logits with the ceiling and the cadence taken off (see `_decide`)."""
        if r.is_drum:
            return on, ac
        pen = np.zeros(ac.shape, np.float32)
        if ceiling is not None:
            pitches = r.spec.low_pitch + np.arange(r.spec.n_pitches)
            pen += CEILING_PRIOR * (pitches[None, :] > ceiling[:, None])
        if cadence is not None:
            # the chord's own notes are pulled in as the others are pushed out, so that a voice
            # closes on one of them rather than falling silent
            wanted = np.isin(r.pitch_classes, sorted({self._tonic_pc} if lowest else self._triad))
            pen[cadence:] += CADENCE_PRIOR * np.where(wanted, -0.5, 1.0)
        return on - pen, ac - pen

    @functools.cached_property
    def _lowest(self) -> _RoleInfo:
        """The bass: the pitched role with the lowest window."""
        pitched = [r for r in self.m._roles if not r.is_drum] or list(self.m._roles)
        return min(pitched, key=lambda r: r.spec.low_pitch)

    def _observe_unit(self, planes: np.ndarray, mask: np.ndarray) -> None:
        m = self.m
        j = self.n_observed
        act = planes[ACTIVE]
        self._last_planes = planes
        if act.any():
            pitches = self.m._mel_spec.low_pitch + np.flatnonzero(act.any(axis=0))
            self._mel_floor = int(pitches.min())
            last_step = act[np.flatnonzero(act.any(axis=1))[-1]]
            self._mel_last = int(self.m._mel_spec.low_pitch + np.flatnonzero(last_step)[-1])
        ahead, self._ahead = self._ahead, None
        entry = self._pending.pop(j, None)
        replay = entry is not None and not entry.known
        hs = None
        if (ahead is not None and ahead.mel_h_in is self._mel_h
                and np.array_equal(ahead.mask, mask) and np.array_equal(ahead.melody[0], planes)):
            # accompanied with this very bar known: the fused graphs already encoded it and
            # stepped the melody RNN on it
            z_true, self._mel_pred, self._mel_h = ahead.z_mel, ahead.mel_pred, ahead.mel_h
        elif replay and m._roles_rnn is not None:
            # one call: encode the bar, step the melody RNN, replay the roles on it
            res = m._roles_rnn.run(self._replay_feeds(entry, entry.pre_h, planes=planes))
            z_true, self._mel_pred, self._mel_h = (res["z_mel_out"], res["melody.z_next"],
                                                   res["melody.h_out"])
            hs = [res[f"{r}.h_out"] for r in m.roles]
        else:
            z_true = self._encode_mel(planes, mask)
            self._mel_pred, self._mel_h = self._mel_step(z_true, mask, self._mel_h)
        if entry is None and j >= self.n_accompanied:
            # Not accompanied (session start, a skipped bar): advance the roles on the truth.
            self._roles_step(z_true, mask, planes[None].astype(np.float32), None, known=True)
            self.n_accompanied = j + 1
        elif replay:
            # The accompaniment used a predicted melody: replay the role RNNs on the real one.
            entry.z_mel, entry.known = z_true, True
            later = [self._pending[i] for i in sorted(self._pending) if i > j]
            if hs is None:
                self._replay([entry, *later], entry.pre_h)
            else:
                self._replay(later, hs)
        self.n_observed = j + 1

    def _replay_feeds(self, e: _Pending, hs: list[np.ndarray],
                      planes: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """roles_rnn's inputs for entry `e` from role states `hs`: on the melody `planes`
        (encoded in the graph, the melody RNN stepped) or on e.z_mel (melody outputs unused)."""
        known = planes is not None
        feeds = {"z_mel": self._zero_latent if known else e.z_mel, "mask": e.mask,
                 "known": np.array([[known]]), "melody.h": self._mel_h,
                 "melody": (planes[None].astype(np.float32) if known else self._zero_planes)}
        for i, r in enumerate(self.m.roles):
            feeds[f"{r}.z_prev"] = e.z_prev_in[i]
            feeds[f"{r}.h"] = hs[i]
        return feeds

    def _replay(self, entries: list[_Pending], hs: list[np.ndarray]) -> None:
        """Run the role RNNs again over `entries` (on their melody latents) from role states
        `hs`, so the next bar starts from what was actually played."""
        m = self.m
        for e in entries:
            e.pre_h = list(hs)
            if m._roles_rnn is not None:
                res = m._roles_rnn.run(self._replay_feeds(e, hs))
                hs = [res[f"{r}.h_out"] for r in m.roles]
            else:
                hs = [m._rnn[i].run({"z_mel": e.z_mel, "z_prev": e.z_prev_in[i],
                                     "mask": e.mask, "h": hs[i]})["h_out"]
                      for i in range(len(m.roles))]
        self._h = list(hs)
