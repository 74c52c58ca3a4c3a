"""A streaming accompaniment session: the role RNN states of one performance, bar by bar.

`Accompanist.accompany` drives one over a whole song (each bar's melody known, the cadence
at the end); the live engine drives one ahead of each bar (`accompany_next`, the melody of that
bar not played yet) and confirms it once played (`observe`), replaying the role RNNs on what was
really played. The priors on the decoders' log-odds are applied here (key, tonal, onset,
ceiling, cadence; engine.models.accompanist_priors). The graphs are called through
engine.models.accompanist_graphs, the same way whether the card's are fused or per role.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from engine.errors import UserInputError
from engine.models.band_chords import chord_label
from engine.models.line_decoding import decide
from engine.models.voice_leading import highest_line
from engine.models.accompanist_priors import ChordPlan, Priors
from engine.music import LIVE_KEY_BARS, Key, Note, estimate_key, fold_octaves, melody_key
from engine.representation import ACTIVE, ONSET, bar_units, decode_bar, encode_bar, step_mask

if TYPE_CHECKING:
    from engine.models.accompanist import Accompanist
    from engine.models.band import ChordFollower

# Semitones under the last observed bar's lowest melody note that the voices of a bar not played
# yet stay below: the tune may dip lower. Measured live on the valid chorales: a voice above the
# melody 3.6% of the time at 0, 1.9% at 3 (Bach's voices 0.2%).
LIVE_CEILING_MARGIN = 3

def shift_notes(notes: Sequence[Note], semitones: int) -> list[Note]:
    if semitones == 0:
        return list(notes)
    return [Note(n.start, n.end, fold_octaves(n.pitch + semitones), n.velocity) for n in notes]


class _Ahead(NamedTuple):
    """A known bar accompanied just before it is observed: what the graphs already computed
    for `observe` (see _roles_step)."""

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
    z_mel: np.ndarray | None  # None until the graphs have encoded a known bar
    mask: np.ndarray
    known: bool
    played: list[np.ndarray] = field(default_factory=list)


class AccompanimentSession:
    """RNN states for one performance. Bar units are counted from the session start: the live
    engine calls `accompany_next` ahead of each bar and `observe` once the bar was played."""

    def __init__(self, model: Accompanist, *, temperature: float | None = None,
                 seed: int | None = None, key: Key | None = None,
                 key_prior: float | None = None, onset_prior: float | None = None,
                 tonal_prior: float | None = None, chord_prior: float | None = None) -> None:
        self.m = model
        self.graphs = model.graphs
        # defaults: the live ones, temperature and priors (the session plans bars before they
        # are heard; `accompany` passes the offline ones)
        self.temperature = (model.default_live_temperature if temperature is None
                            else float(temperature))
        if self.temperature < 0:
            raise UserInputError(f"temperature must be >= 0, got {self.temperature:g}")
        live = model.default_live_priors
        self.priors = Priors(
            model, key_prior=live["key_prior"] if key_prior is None else key_prior,
            onset_prior=live["onset_prior"] if onset_prior is None else onset_prior,
            tonal_prior=live["tonal_prior"] if tonal_prior is None else tonal_prior,
            chord_prior=live["chord_prior"] if chord_prior is None else chord_prior)
        self.rng = np.random.default_rng(seed)
        # live, the chords the chord prior follows: the band's causal chord model, made by the
        # first `observe` or `accompany_next` (offline, `Accompanist.accompany` plans them over
        # the whole melody and passes them per unit)
        self._chords: ChordFollower | None = None
        self._key: Key | None = None
        self._fixed_key = key is not None
        self.shift = 0
        if key is not None:
            self._set_key(key)
        # the melody's last sounding pitch (normalised) and the lowest pitch of the last
        # observed bar: the ceiling of the voices where the melody is not known yet
        self._mel_last: int | None = None
        self._mel_floor: int | None = None
        self._last_planes: np.ndarray | None = None  # the last observed bar's melody planes
        self._heard: list[Note] = []
        self._first_pitch: int | None = None  # the first note heard (the live key finder's cue)
        self._enc_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._units_cache: tuple[tuple, list] | None = None
        self._ahead: _Ahead | None = None
        self._masks: dict[int, np.ndarray] = {}
        L, H = model.latent, model.rnn_hidden
        R = len(model.roles)
        self._h = [np.zeros((1, 1, H), np.float32) for _ in range(R)]
        self._z_prev = [np.zeros((1, L), np.float32) for _ in range(R)]
        # what each role still sounds at the last bar line (decoders that take it: newer cards)
        self._prev_last = [np.zeros((1, r.spec.n_pitches), np.float32) for r in model.role_infos]
        self._mel_tail = -1  # the melody's pitch at the last step of the bar before (-1: none)
        self._pending: dict[int, _Pending] = {}
        self.n_observed = 0
        self.n_accompanied = 0
        zero_l, zero_s = np.zeros((1, L), np.float32), np.zeros((1, model.max_bar_steps),
                                                                np.float32)
        self._mel_h = np.zeros((1, 1, H), np.float32)
        self._mel_pred, self._mel_h = self._mel_step(zero_l, zero_s, self._mel_h)

    # -- graph calls --------------------------------------------------------------------------
    def _mel_step(self, z, mask, h):
        return self.graphs.step_melody(z, mask, h)

    def _encode_mel(self, planes: np.ndarray, mask: np.ndarray) -> np.ndarray:
        # offline, accompany_next and observe see the same bar: encode it once
        cached = self._enc_cache
        if cached is not None and np.array_equal(cached[0], planes) and \
                np.array_equal(cached[1], mask):
            return cached[2]
        z = self.graphs.encode_melody(planes[None].astype(np.float32), mask)
        self._enc_cache = (planes.copy(), mask.copy(), z)
        return z

    # -- public API ---------------------------------------------------------------------------
    def observe(self, melody_notes: Sequence[Note], bar_ticks: int, ticks_per_beat: int, *,
                meter: tuple[int, int] | None = None) -> None:
        """Commit one finished melody bar (times relative to the bar start). `meter`: the
        chords' beats (6/8 in dotted quarters); the choir's units are cut from the bar's
        length."""
        if (chords := self._follower()) is not None:
            chords.observe(melody_notes, bar_ticks, ticks_per_beat, meter=meter)
        self._update_key(melody_notes)
        for tick, planes, mask in self._units(melody_notes, bar_ticks, ticks_per_beat):
            self.observe_unit(planes, mask)

    def accompany_next(self, bar_ticks: int, ticks_per_beat: int, *,
                       melody_notes: Sequence[Note] | None = None,
                       pending: Sequence[Note] | None = None,
                       meter: tuple[int, int] | None = None) -> list[list[Note]]:
        """Notes per role for the next bar, times relative to its start (`meter`: as in
        `observe`). With the chord prior, the voices follow the chord the chord model chooses
        for the bar before hearing it (engine.models.band.ChordFollower)."""
        out: list[list[Note]] = [[] for _ in self.m.roles]
        plan = None
        if (chords := self._follower()) is not None:
            chord = chord_label(chords.next_chord(bar_ticks, ticks_per_beat, pending=pending,
                                                  meter=meter))
            if chord is not None:
                plan = ChordPlan.of_steps([chord] * self.m.max_bar_steps, self.shift)
        pend_planes = None
        if melody_notes is None and pending is not None:
            pend_planes = encode_bar(shift_notes(pending, self.shift), bar_ticks,
                                     ticks_per_beat, self.m.mel_spec)
        for tick, planes, mask in self._units(melody_notes or [], bar_ticks, ticks_per_beat):
            length = int(mask.sum())
            got = self.accompany_unit(mask, mel_planes=planes if melody_notes is not None
                                       else None, pending_planes=pend_planes, chord=plan)
            pend_planes = None
            for k, (r, p) in enumerate(zip(self.m.role_infos, got)):
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
        spec = self.m.mel_spec
        if bar_ticks <= 0 or tpb <= 0:
            raise UserInputError(f"bar_ticks and ticks_per_beat must be positive, "
                                 f"got {bar_ticks}, {tpb}")
        shifted = shift_notes(notes, self.shift)
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
        if self._fixed_key or self.n_observed >= LIVE_KEY_BARS:
            return
        if not self._heard and notes:
            self._first_pitch = min(notes, key=lambda n: (n.start, -n.pitch)).pitch
        self._heard.extend(notes)
        # the melody so far, without a last note yet but with its first; older cards: the
        # estimate they trained on
        key = (melody_key(self._heard, final=False, first_pitch=self._first_pitch)
               if self.m.tonic_normalised else estimate_key(self._heard))
        if key is not None and len({n.pitch % 12 for n in self._heard}) >= 4:
            self._set_key(key)

    def _set_key(self, key: Key) -> None:
        self._key = key
        self.shift = self.m.normalising_shift(key)
        self.priors.set_key(key, self.shift)
        if self._chords is not None:  # the chords in the voices' key
            self._chords.set_key(key)

    def _follower(self) -> ChordFollower | None:
        """The live chord follower, made on first use where the chord prior asks for one."""
        if self._chords is None and self.priors.chord_prior > 0 and \
                (band := self.m.chord_model()) is not None:
            from engine.models.band import ChordFollower

            self._chords = ChordFollower(band, key=self._key)
        return self._chords

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

    def accompany_unit(self, mask: np.ndarray, *, mel_planes: np.ndarray | None = None,
                       pending_planes: np.ndarray | None = None,
                       final: bool = False, chord: ChordPlan | None = None) -> list[np.ndarray]:
        """The planes (normalised key) of every role for the next bar unit (`mask` (1, S)): on
        its melody `mel_planes` when known, else on a guess. `final`: the melody ends in it
        (known offline): its last note gets a cadence (CADENCE_PRIOR)."""
        k = self.n_accompanied
        z_mel = None  # a known bar: the graphs encode it (filled in by _roles_step)
        if mel_planes is not None:
            melody = mel_planes[None].astype(np.float32)
        elif (guess := self._melody_guess(pending_planes, mask)) is not None:
            # not played yet: the decoders hear a guess (`_melody_guess`); the bar is replayed
            # on the real melody when it is observed
            melody = guess[None].astype(np.float32)
        else:
            # nothing heard yet: the decoders hear the melody RNN's expected bar (the graphs
            # decode it: probabilities)
            melody, z_mel = None, self._predict_melody(k, pending_planes, mask)
        entry = _Pending([h.copy() for h in self._h], [z.copy() for z in self._z_prev],
                         z_mel, mask, mel_planes is not None)
        ceiling = self._ceiling(mel_planes, mask)
        cadence = None
        if final and mel_planes is not None:
            struck = np.flatnonzero(mel_planes[ONSET].any(axis=1))
            cadence = int(struck[-1]) if struck.size else 0
        planes = self._roles_step(mask, melody=melody, z_mel=z_mel, entry=entry,
                                  ahead=mel_planes is not None and k == self.n_observed,
                                  ceiling=ceiling, cadence=cadence, heard=mel_planes,
                                  chord=chord)
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
        note of the last bar observed less LIVE_CEILING_MARGIN; nothing heard yet: no limit."""
        S = mask.shape[1]
        if mel_planes is None:
            return np.full(S, 127 if self._mel_floor is None
                           else self._mel_floor - LIVE_CEILING_MARGIN)
        act = mel_planes[ACTIVE]
        sounding = act.any(axis=1)
        top = self.m.mel_spec.low_pitch + act.shape[1] - 1 - np.argmax(act[:, ::-1], axis=1)
        # carry the last sounding pitch through rests: index of the latest sounding step
        idx = np.maximum.accumulate(np.where(sounding, np.arange(S), -1))
        before = 127 if self._mel_last is None else self._mel_last
        return np.where(idx >= 0, top[np.maximum(idx, 0)], before)

    def _noise(self, i: int, shape) -> np.ndarray | None:
        if self.temperature <= 0:
            return None
        return (self.temperature * self.m.role_infos[i].resid_std
                * self.rng.standard_normal(shape)).astype(np.float32)

    def _roles_step(self, mask, *, melody: np.ndarray | None = None,
                    z_mel: np.ndarray | None = None, entry: _Pending | None = None,
                    ahead: bool = False, ceiling: np.ndarray | None = None,
                    cadence: int | None = None,
                    heard: np.ndarray | None = None,
                    chord: ChordPlan | None = None) -> list[np.ndarray]:
        """Every role's bar: RNN step, decode, decide, re-encode what was decided. The melody
        bar known: its planes `melody` (1, 2, S, Pm) (its latent `z_mel`, when given, else the
        graphs encode it); else predicted as `z_mel` (see AccompanistGraphs.decode_roles).
        `ahead`: it is the next bar to be observed; the re-encoding also steps the melody RNN
        on it, kept for `observe` (two graph calls a known bar in all, fused). `ceiling`,
        `cadence`: see `_decide`; `heard`: the bar's melody planes when it is known (not a
        guess): the voices keep from parallels with it."""
        g = self.graphs
        noise = [self._noise(i, z.shape) for i, z in enumerate(self._z_prev)]
        dec = g.decode_roles(mask, self._z_prev, self._h, self._prev_last, noise,
                             melody=melody, z_mel=z_mel)
        if entry is not None:
            entry.z_mel = dec.z_mel
        line = None if heard is None else highest_line(heard[ACTIVE], self.m.mel_spec.low_pitch)
        planes = self._decide(dec.logits, mask, ceiling, cadence, line, chord)
        enc = g.encode_roles(planes, mask, dec.melody, dec.z_mel, self._mel_h if ahead else None)
        if ahead:
            self._ahead = _Ahead(dec.melody, mask, self._mel_h, dec.z_mel, enc.mel_next,
                                 enc.mel_h)
        last = int(np.flatnonzero(mask[0])[-1]) if mask.any() else 0
        self._mel_tail = -1 if line is None else int(line[last])
        for i in range(len(planes)):
            self._h[i], self._z_prev[i] = dec.h[i], enc.played[i]
            self._prev_last[i] = planes[i][ACTIVE, last][None].astype(np.float32)
            if entry is not None:
                entry.played.append(enc.played[i])
        return planes

    def _decide(self, logits, mask, ceiling: np.ndarray | None = None,
                cadence: int | None = None,
                melody: np.ndarray | None = None,
                chord: ChordPlan | None = None) -> list[np.ndarray]:
        """Planes per role from its logits, the priors taken off first (Priors.apply);
        `melody`: the bar's melody line when known (line_decoding.decide)."""
        return decide(self.m.role_infos, self.priors.apply(logits, ceiling, cadence, chord),
                      mask[0] > 0,
                      self._prev_last, melody, self._mel_tail)

    def observe_unit(self, planes: np.ndarray, mask: np.ndarray) -> None:
        """Commit the melody `planes` (normalised key) of the next bar unit to be observed."""
        j = self.n_observed
        act = planes[ACTIVE]
        self._last_planes = planes
        if act.any():
            low = self.m.mel_spec.low_pitch
            pitches = low + np.flatnonzero(act.any(axis=0))
            self._mel_floor = int(pitches.min())
            last_step = act[np.flatnonzero(act.any(axis=1))[-1]]
            self._mel_last = int(low + np.flatnonzero(last_step)[-1])
        ahead, self._ahead = self._ahead, None
        entry = self._pending.pop(j, None)
        replay = entry is not None and not entry.known
        if (ahead is not None and ahead.mel_h_in is self._mel_h
                and np.array_equal(ahead.mask, mask) and np.array_equal(ahead.melody[0], planes)):
            # accompanied with this very bar known: the graphs already encoded it and stepped
            # the melody RNN on it
            z_true, self._mel_pred, self._mel_h = ahead.z_mel, ahead.mel_pred, ahead.mel_h
        elif replay:
            # The accompaniment used a predicted melody: encode the bar, step the melody RNN,
            # replay the role RNNs on the real one (fused: one call), then the bars after it.
            z_true, self._mel_pred, self._mel_h, hs = self.graphs.observe_and_step_roles(
                planes[None].astype(np.float32), mask, self._mel_h, entry.z_prev_in,
                entry.pre_h, entry.mask)
            entry.z_mel, entry.known = z_true, True
            self._replay([self._pending[i] for i in sorted(self._pending) if i > j], hs)
        else:
            z_true = self._encode_mel(planes, mask)
            self._mel_pred, self._mel_h = self._mel_step(z_true, mask, self._mel_h)
        if entry is None and j >= self.n_accompanied:
            # Not accompanied (session start, a skipped bar): advance the roles on the truth.
            self._roles_step(mask, melody=planes[None].astype(np.float32), z_mel=z_true,
                             heard=planes)
            self.n_accompanied = j + 1
        self.n_observed = j + 1

    def _replay(self, entries: list[_Pending], hs: list[np.ndarray]) -> None:
        """Run the role RNNs again over `entries` (on their melody latents) from role states
        `hs`, so the next bar starts from what was actually played."""
        for e in entries:
            e.pre_h = list(hs)
            hs = self.graphs.step_roles(e.z_mel, e.z_prev_in, e.mask, hs)
        self._h = list(hs)
