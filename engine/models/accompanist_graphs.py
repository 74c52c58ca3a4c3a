"""The accompanist's ONNX graphs behind one interface, and the names of their inputs and outputs.

A card holds the melody's graphs (encoder `enc_MELODY`, decoder `dec_MELODY`, RNN `melody_rnn`)
and the roles' graphs in one of two layouts:

- per role (`enc_ROLE`, `dec_ROLE`, `rnn_ROLE`), as training exports them: `PerRoleGraphs`,
  three calls per role and bar;
- fused (`roles_decode`, `roles_encode`, `roles_rnn`; engine.training.accompanist.fuse, which
  composes them from the per-role graphs with the names below): `FusedGraphs`, two calls a
  known bar for all roles at once. The bundled card ships these alone.

Both answer the same questions the session asks (`AccompanistGraphs`): encode a melody bar, step
the melody RNN, step and decode every role (`decode_roles`), re-encode what every role played
(`encode_roles`), replay the role RNNs on a melody latent (`step_roles`), and replay them on a
bar just observed (`observe_and_step_roles`). Both give the same bars for the same inputs
(tests/test_accompanist.py); the numerics are the per-role graphs' own, composed.

Nothing here imports torch; fuse.py (training) imports the names from here.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from engine.models.card import ModelCard
from engine.models.line_decoding import sigmoid

log = logging.getLogger(__name__)

# -- names ------------------------------------------------------------------------------------
# card components
DECODE, ENCODE, RNN = "roles_decode", "roles_encode", "roles_rnn"
FUSED = (DECODE, ENCODE, RNN)
MELODY_RNN = "melody_rnn"
ENC, DEC, ROLE_RNN = "enc", "dec", "rnn"  # per-role components: f"{ENC}_{role}" (`component`)

# inputs and outputs of the exported graphs (per role and the melody's): a role's own ones in
# the fused graphs are prefixed by the role (`role_io`)
PLANES, MASK, MELODY, MU = "planes", "mask", "melody", "mu"  # encoders: planes -> mu
Z = "z"  # decoders: z (+ mask, melody, prev_last) -> onset_logits, active_logits
ONSET_LOGITS, ACTIVE_LOGITS, PREV_LAST = "onset_logits", "active_logits", "prev_last"
Z_MEL, Z_PREV, H, H_OUT = "z_mel", "z_prev", "h", "h_out"  # role RNN -> z, h_out
MASK_PREV, Z_NEXT = "mask_prev", "z_next"  # melody RNN: z_prev, mask_prev, h -> z_next, h_out
# the fused graphs' own (see fuse.py)
KNOWN, Z_MEL_OUT, MELODY_OUT = "known", "z_mel_out", "melody_out"
NOISE, PLAYED = "noise", "played"
MELODY_STATE = "melody"  # the prefix of the melody RNN's state in the fused graphs


def component(kind: str, role: str) -> str:
    """A per-role graph's card component: ENC, DEC or ROLE_RNN of `role`."""
    return f"{kind}_{role}"


def prefix(role: str) -> str:
    return f"{role}."


def role_io(role: str, name: str) -> str:
    """A role's own input or output `name` in the fused graphs."""
    return prefix(role) + name


MELODY_H = role_io(MELODY_STATE, H)
MELODY_Z_NEXT = role_io(MELODY_STATE, Z_NEXT)
MELODY_H_OUT = role_io(MELODY_STATE, H_OUT)


# -- results ----------------------------------------------------------------------------------
class Decoded(NamedTuple):
    """Every role's step and decoder on one bar."""

    logits: list[tuple[np.ndarray, np.ndarray]]  # per role (onset, active) logits (S, P)
    h: list[np.ndarray]  # per role its RNN's new state (1, 1, H)
    z_mel: np.ndarray  # (1, L) the melody latent the roles stepped on
    melody: np.ndarray  # (1, 2, S, Pm) float32: the bar the decoders heard


class Encoded(NamedTuple):
    """What every role played, encoded; the melody RNN stepped on the bar when asked."""

    played: list[np.ndarray]  # per role (1, L): its next previous latent
    mel_next: np.ndarray | None  # the melody RNN's prediction of the next bar's latent
    mel_h: np.ndarray | None  # its new state


# -- the interface ----------------------------------------------------------------------------
class AccompanistGraphs:
    """The melody's graphs, shared by both layouts, and the role calls each layout answers."""

    kind = ""

    def __init__(self, card: ModelCard, *, providers: str = "auto") -> None:
        rep = card.representation
        tracks = rep["tracks"]
        self.card = card
        self.providers = providers
        self.melody_name = tracks[0]["name"]
        self.roles = tuple(t["name"] for t in tracks[1:])
        self.latent = int(rep["latent"])
        self.rnn_hidden = int(rep["rnn_hidden"])
        spec = tracks[0]["spec"]
        self.enc_melody = card.open(component(ENC, self.melody_name), providers=providers)
        self.melody_rnn = card.open(MELODY_RNN, providers=providers)
        self.provider = self.enc_melody.provider
        self._zero_latent = np.zeros((1, self.latent), np.float32)
        self._zero_planes = np.zeros((1, 2, int(spec["max_bar_steps"]), int(spec["n_pitches"])),
                                     np.float32)
        self._zero_mel_h = np.zeros((1, 1, self.rnn_hidden), np.float32)
        self.uses_prev_last: list[bool] = []  # per role: its decoder takes `prev_last`

    def encode_melody(self, planes: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Melody planes (B, 2, S, Pm) float32 -> its latents (B, L)."""
        return self.enc_melody.run({PLANES: planes, MASK: mask})[MU]

    def step_melody(self, z: np.ndarray, mask: np.ndarray,
                    h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The melody RNN stepped on a bar's latent: (the next bar's latent, the new state)."""
        out = self.melody_rnn.run({Z_PREV: z, MASK_PREV: mask, H: h})
        return out[Z_NEXT], out[H_OUT]

    def decode_roles(self, mask: np.ndarray, z_prev: Sequence[np.ndarray],
                     h: Sequence[np.ndarray], prev_last: Sequence[np.ndarray],
                     noise: Sequence[np.ndarray | None], *, melody: np.ndarray | None = None,
                     z_mel: np.ndarray | None = None) -> Decoded:
        """Every role's RNN step (from `z_prev`, `h`) and decoder on one bar (`mask` (1, S)).
        The melody known: its planes `melody` (1, 2, S, Pm) float32, its latent encoded here
        unless given as `z_mel`. Not known: its predicted latent `z_mel`, and the decoders hear
        the melody decoder's probabilities for it. `noise` per role (1, L) is added to the
        predicted latent (None: none); `prev_last` (1, P) per role: what it still sounds at
        the bar line."""
        raise NotImplementedError

    def encode_roles(self, planes: Sequence[np.ndarray], mask: np.ndarray,
                     melody: np.ndarray, z_mel: np.ndarray,
                     mel_h: np.ndarray | None = None) -> Encoded:
        """Every role's decided planes (2, S, P) encoded (heard over `melody`); with `mel_h`,
        the melody RNN also stepped on `z_mel` from that state."""
        raise NotImplementedError

    def step_roles(self, z_mel: np.ndarray, z_prev: Sequence[np.ndarray], mask: np.ndarray,
                   h: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Every role's RNN stepped alone on the melody latent `z_mel`: the new states."""
        raise NotImplementedError

    def observe_and_step_roles(self, melody: np.ndarray, mask: np.ndarray, mel_h: np.ndarray,
                               z_prev: Sequence[np.ndarray], h: Sequence[np.ndarray],
                               roles_mask: np.ndarray
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
        """A bar just observed, `melody` (1, 2, S, Pm) float32: its latent, the melody RNN
        stepped on it from `mel_h` (next latent, state), and every role's RNN replayed on it
        (over the bar as it was accompanied, `roles_mask`)."""
        z = self.encode_melody(melody, mask)
        mel_next, mel_h = self.step_melody(z, mask, mel_h)
        return z, mel_next, mel_h, self.step_roles(z, z_prev, roles_mask, h)


class PerRoleGraphs(AccompanistGraphs):
    """enc_ROLE, dec_ROLE, rnn_ROLE and the melody decoder, opened when first needed."""

    kind = "per_role"

    def __init__(self, card: ModelCard, *, providers: str = "auto") -> None:
        super().__init__(card, providers=providers)
        for r in self.roles:  # fail now, not on the first bar
            for kind in (ENC, DEC, ROLE_RNN):
                card.component_path(component(kind, r))
        self.uses_prev_last = [PREV_LAST in d.inputs for d in self.dec]

    def _open(self, kind: str) -> list:
        return [self.card.open(component(kind, r), providers=self.providers) for r in self.roles]

    @functools.cached_property
    def dec_melody(self):
        return self.card.open(component(DEC, self.melody_name), providers=self.providers)

    @functools.cached_property
    def enc(self) -> list:
        return self._open(ENC)

    @functools.cached_property
    def dec(self) -> list:
        return self._open(DEC)

    @functools.cached_property
    def rnn(self) -> list:
        return self._open(ROLE_RNN)

    def decode_roles(self, mask, z_prev, h, prev_last, noise, *, melody=None, z_mel=None):
        if melody is not None:
            if z_mel is None:
                z_mel = self.encode_melody(melody, mask)
        else:
            dec = self.dec_melody.run({Z: z_mel, MASK: mask})
            melody = sigmoid(np.stack([dec[ONSET_LOGITS], dec[ACTIVE_LOGITS]], axis=1))
            melody = melody.astype(np.float32)
        logits, hs = [], []
        for i in range(len(self.roles)):
            res = self.rnn[i].run({Z_MEL: z_mel, Z_PREV: z_prev[i], MASK: mask, H: h[i]})
            z = res[Z]
            if noise[i] is not None:
                z = z + noise[i]
            feeds = {Z: z, MASK: mask, MELODY: melody}
            if self.uses_prev_last[i]:
                feeds[PREV_LAST] = prev_last[i]
            dec = self.dec[i].run(feeds)
            logits.append((dec[ONSET_LOGITS][0], dec[ACTIVE_LOGITS][0]))
            hs.append(res[H_OUT])
        return Decoded(logits, hs, z_mel, melody)

    def encode_roles(self, planes, mask, melody, z_mel, mel_h=None):
        played = [self.enc[i].run({PLANES: planes[i][None].astype(np.float32), MASK: mask,
                                   MELODY: melody})[MU] for i in range(len(self.roles))]
        if mel_h is None:
            return Encoded(played, None, None)
        return Encoded(played, *self.step_melody(z_mel, mask, mel_h))

    def step_roles(self, z_mel, z_prev, mask, h):
        return [self.rnn[i].run({Z_MEL: z_mel, Z_PREV: z_prev[i], MASK: mask, H: h[i]})[H_OUT]
                for i in range(len(self.roles))]


class FusedGraphs(AccompanistGraphs):
    """roles_decode, roles_encode and (where the card has it) roles_rnn: every role at once.
    A card without roles_rnn replays the role RNNs through its per-role graphs."""

    kind = "fused"

    def __init__(self, card: ModelCard, *, providers: str = "auto") -> None:
        super().__init__(card, providers=providers)
        self.decode = card.open(DECODE, providers=providers)
        self.encode = card.open(ENCODE, providers=providers)
        self.rnn = card.open(RNN, providers=providers) if RNN in card.files else None
        self.uses_prev_last = [role_io(r, PREV_LAST) in self.decode.inputs for r in self.roles]

    @property
    def current(self) -> bool:
        """False: fused graphs of an older layout (no `melody_out`)."""
        return MELODY_OUT in self.decode.outputs

    @functools.cached_property
    def _per_role(self) -> PerRoleGraphs:
        return PerRoleGraphs(self.card, providers=self.providers)

    def decode_roles(self, mask, z_prev, h, prev_last, noise, *, melody=None, z_mel=None):
        known = melody is not None
        feeds = {Z_MEL: self._zero_latent if z_mel is None else z_mel, MASK: mask,
                 MELODY: melody if known else self._zero_planes, KNOWN: np.array([[known]])}
        for i, r in enumerate(self.roles):
            feeds[role_io(r, Z_PREV)] = z_prev[i]
            feeds[role_io(r, H)] = h[i]
            feeds[role_io(r, NOISE)] = noise[i] if noise[i] is not None \
                else np.zeros_like(z_prev[i])
            if self.uses_prev_last[i]:
                feeds[role_io(r, PREV_LAST)] = prev_last[i]
        res = self.decode.run(feeds)
        logits = [(res[role_io(r, ONSET_LOGITS)][0], res[role_io(r, ACTIVE_LOGITS)][0])
                  for r in self.roles]
        return Decoded(logits, [res[role_io(r, H_OUT)] for r in self.roles], res[Z_MEL_OUT],
                       res[MELODY_OUT])

    def encode_roles(self, planes, mask, melody, z_mel, mel_h=None):
        feeds = {MASK: mask, MELODY: melody, Z_MEL: z_mel,
                 MELODY_H: self._zero_mel_h if mel_h is None else mel_h}
        for r, p in zip(self.roles, planes):
            feeds[role_io(r, PLANES)] = p[None].astype(np.float32)
        res = self.encode.run(feeds)
        played = [res[role_io(r, PLAYED)] for r in self.roles]
        if mel_h is None:
            return Encoded(played, None, None)
        return Encoded(played, res[MELODY_Z_NEXT], res[MELODY_H_OUT])

    def _rnn_feeds(self, z_mel, melody, mask, mel_h, z_prev, h) -> dict[str, np.ndarray]:
        known = melody is not None
        feeds = {Z_MEL: self._zero_latent if known else z_mel, MASK: mask,
                 KNOWN: np.array([[known]]), MELODY_H: mel_h,
                 MELODY: melody if known else self._zero_planes}
        for i, r in enumerate(self.roles):
            feeds[role_io(r, Z_PREV)] = z_prev[i]
            feeds[role_io(r, H)] = h[i]
        return feeds

    def step_roles(self, z_mel, z_prev, mask, h):
        if self.rnn is None:
            return self._per_role.step_roles(z_mel, z_prev, mask, h)
        res = self.rnn.run(self._rnn_feeds(z_mel, None, mask, self._zero_mel_h, z_prev, h))
        return [res[role_io(r, H_OUT)] for r in self.roles]

    def observe_and_step_roles(self, melody, mask, mel_h, z_prev, h, roles_mask):
        if self.rnn is None:
            return super().observe_and_step_roles(melody, mask, mel_h, z_prev, h, roles_mask)
        # one call: encode the bar, step the melody RNN, replay the roles on it (the graph
        # takes one mask: the bar's as it was accompanied)
        res = self.rnn.run(self._rnn_feeds(None, melody, roles_mask, mel_h, z_prev, h))
        return (res[Z_MEL_OUT], res[MELODY_Z_NEXT], res[MELODY_H_OUT],
                [res[role_io(r, H_OUT)] for r in self.roles])


def open_graphs(card: ModelCard, *, kind: str = "auto",
                providers: str = "auto") -> AccompanistGraphs:
    """The card's graphs: `kind` "fused", "per_role", or "auto" (the fused ones where the card
    has them in the current layout, else the per-role ones)."""
    if kind not in ("auto", "fused", "per_role"):
        raise ValueError(f"graphs must be auto, fused or per_role, not {kind!r}")
    has_fused = all(c in card.files for c in (DECODE, ENCODE))
    if kind == "fused" or (kind == "auto" and has_fused):
        fused = FusedGraphs(card, providers=providers)
        if fused.current or kind == "fused":
            return fused
        log.info("accompanist %s: fused graphs of an older layout, running the per-role "
                 "graphs (re-fuse: python -m engine.training.accompanist.fuse CARD)", card.name)
    return PerRoleGraphs(card, providers=providers)
