"""The band accompanist at runtime: a chord model in ONNX Runtime, then an arranger that plays the
chords as a band (comping piano or guitar, bass, drums on channel 10) in the song's meter.

Three modules: engine.models.band_chords (the chord classes, the per-beat melody features and
the decoding), engine.models.band_arranger (the chords played as a band, from the pattern table
engine.models.band_patterns), and this one, the model: the graphs, whole-song accompaniment and
the live session.

Two graphs (engine.training.band.export): `chords_offline`, a bidirectional GRU over the whole
melody (per-beat log-probabilities), and `chords_causal`, a GRU over the beats heard so far that
predicts the chord of the next beat from its place in the bar (`chords_head`: its last step
alone). Offline the chords are decided per harmonic span (`band_chords.decode_spans`, with the
change penalty, final bonus, diatonic and tonic priors of the card). Live, the chord of bar t is
chosen one beat before bar t from the bars heard so far (the bar before included as far as it
was played) and held for the bar; each observed bar is fed to the GRU, so the next bar's chord
follows what was really played (the live chord is the causal GRU's argmax, without the
priors). The arranger lays out each bar length and meter once (engine.models.band_arranger).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import ModelError, UserInputError
from engine.models import band_patterns as P
from engine.models.band_arranger import Arranger, arrange, live_meter, resolve_style
from engine.models.band_chords import (N_CHORDS, N_FEATURES, N_MEL, N_POS, Chord, bar_beats,
                                       beat_features, causal_inputs, chord_label, chord_name,
                                       decode_beats, decode_spans, harmonic_spans,
                                       position_features, song_beats, transpose_index)
from engine.models.card import ModelCard
from engine.models.runtime import load_card
from engine.music import (LIVE_KEY_BARS, Key, Note, Song, heard_key, melody_key,
                          pitch_class_histogram)

log = logging.getLogger(__name__)

KIND = "band"
DEFAULT_MODEL = "band-gru"
STYLES = tuple(P.STYLES)
ROLES = ("chords", "bass", "drums")
DRUM_CHANNEL_ROLE = "drums"


def is_band_model(name) -> bool:
    """Whether `name` (a model name, card path or "band", optionally "band:STYLE") asks for a
    band model: "band", a "band:STYLE", or a card of kind "band"."""
    if name is None:
        return False
    text = str(name)
    if text == "band" or text.startswith("band:"):
        return True
    try:
        return load_card(text).kind == KIND
    except ModelError:
        return False



class BandAccompanist:
    """A loaded band model: chords from ONNX graphs, the band from the arranger."""

    def __init__(self, card: ModelCard, *, providers: str = "auto", style: str | None = None) \
            -> None:
        if card.kind != KIND:
            raise ModelError(f"model {card.name!r} is a {card.kind}, not a {KIND} model")
        self.card = card
        self.name = card.name
        rep = card.representation
        try:
            if int(rep["n_features"]) != N_FEATURES or int(rep["n_chords"]) != N_CHORDS:
                raise ValueError("features or chord classes differ from this program's")
            self.hidden = int(rep["hidden"])
            dec = rep["decoding"]
            self.change_penalty = float(dec["change_penalty"])
            self.final_bonus = float(dec["final_bonus"])
            self.diatonic_prior = float(dec.get("diatonic_prior", 0.0))
            self.tonic_prior = float(dec.get("tonic_prior", 0.0))
            self.bigram_weight = float(dec.get("bigram_weight", 0.0))
            trans = dec.get("log_bigrams")
            self.log_bigrams = (np.asarray(trans, np.float64).reshape(N_CHORDS, N_CHORDS)
                                if trans is not None else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model {card.name!r}: card representation is incomplete ({exc})") \
                from None
        self._offline = card.open("chords_offline", providers=providers)
        self._causal = card.open("chords_causal", providers=providers)
        self._head = card.open("chords_head", providers=providers)
        self.provider = self._offline.provider
        self.style = style  # None/"auto": by meter
        self.roles = ROLES
        self._roles = tuple(_Role(r, r == DRUM_CHANNEL_ROLE) for r in ROLES)
        st = P.STYLES[resolve_style(style, "4/4")]
        self.programs = (st["comp_program"], st["bass_program"], 0)

    @property
    def drums(self) -> tuple[bool, ...]:
        """Per role (`roles`), whether it is played on the GM drum channel."""
        return tuple(r.is_drum for r in self._roles)

    @classmethod
    def load(cls, name: str | None = None, *, providers: str = "auto",
             style: str | None = None) -> BandAccompanist:
        """A band model by name or card path; None or "band" = the bundled one; "band:STYLE"
        (the live engine's model name) picks the style too."""
        if name is not None and str(name).startswith("band:"):
            style = style or str(name).split(":", 1)[1]
            name = None
        if style is not None:
            resolve_style(style, "4/4")  # a bad style fails here, with the list
        card = load_card(DEFAULT_MODEL if name in (None, "band") else name, kind=KIND)
        return cls(card, providers=providers, style=style)

    # -- chords ---------------------------------------------------------------------------------
    def beat_logp(self, x: np.ndarray) -> np.ndarray:
        """(T, C) per-beat log-probabilities from the bidirectional graph."""
        out = self._offline.run({"x": x[None].astype(np.float32)})["logp"]
        return out[0]

    def causal_logp(self, x: np.ndarray, next_pos: np.ndarray, h: np.ndarray) \
            -> tuple[np.ndarray, np.ndarray]:
        out = self._causal.run({"x": x[None].astype(np.float32),
                                "next_pos": next_pos[None].astype(np.float32), "h": h})
        return out["logp"][0], out["h_out"]

    def causal_sequence(self, x: np.ndarray) -> np.ndarray:
        """(T, C) the causal GRU's chord for every beat of a melody, each from the beats before
        it (what the live path hears)."""
        xin, pos = causal_inputs(x)
        return self.causal_logp(xin, pos, np.zeros((1, 1, self.hidden), np.float32))[0]

    def head_logp(self, h: np.ndarray, next_pos: np.ndarray) -> np.ndarray:
        """(C,) the causal model's chord for the beat at `next_pos` from the state `h`."""
        return self._head.run({"h": h, "next_pos": next_pos.astype(np.float32)})["logp"][0]

    def chords(self, song: Song, melody: Sequence[Note], *, key: Key | None = None,
               per_beat: bool = False) -> list[Chord]:
        """The chord sequence of a whole melody as (tick, root, quality), absolute pitch classes;
        one per harmonic span (`per_beat`: one per beat, argmax, no smoothing); "no chord"
        spans are left out."""
        notes = sorted(melody)
        end = max(n.end for n in notes)
        key = key or melody_key(notes)
        shift = key.tonic_shift()
        minor = key.mode == "minor"
        beats = song_beats(song, end)
        logp = self.beat_logp(beat_features(notes, beats, shift, minor))
        logp[:, 0] = -1e9  # the band always plays a chord
        if per_beat:
            idx = decode_beats(logp, self.log_bigrams, self.bigram_weight)
            spans = [(i, i + 1) for i in range(len(beats))]
        else:
            spans = harmonic_spans(song, end, beats)
            idx = decode_spans(logp, spans, change_penalty=self.change_penalty,
                               final_bonus=self.final_bonus, tonic=0, minor=minor,
                               diatonic_prior=self.diatonic_prior, tonic_prior=self.tonic_prior)
        out: list[Chord] = []
        for (a, _), c in zip(spans, idx):
            lab = chord_label(transpose_index(c, -shift))
            if lab is not None and (not out or out[-1][1:] != lab):  # changes only
                out.append((beats[a].start, lab[0], lab[1]))
        return out

    def chord_names(self, song: Song, melody: Sequence[Note], *, key: Key | None = None,
                    chords: Sequence[Chord] | None = None) -> list[list[str]]:
        """The chord names the band plays, per bar of the melody (a bar with no change: the
        chord it holds), e.g. [["C"], ["F", "G7"], ...]; `key`: see `chords`; `chords`: the
        ones already decided (`accompany_with_chords`), else decided here."""
        if chords is None:
            chords = self.chords(song, melody, key=key)
        out = []
        cur = None
        for s, e, _ in song.bars(max(n.end for n in melody)):
            inside = [chord_name(r, q) for t, r, q in chords if s <= t < e]
            if inside:
                cur = inside[-1]
            out.append(inside or ([cur] if cur else ["-"]))
        return out

    def chord_labels(self, song: Song, melody: Sequence[Note], *, key: Key | None = None,
                     chords: Sequence[Chord] | None = None) -> list[tuple[int, str]]:
        """(tick, chord name) of every chord change (the studio draws them above the roll);
        `key`, `chords`: see `chord_names`."""
        if chords is None:
            chords = self.chords(song, melody, key=key)
        return [(t, chord_name(r, q)) for t, r, q in chords]

    # -- offline --------------------------------------------------------------------------------
    def accompany(self, song: Song, *, melody_track: int | None = None,
                  style: str | None = None, seed: int | None = None,
                  key: Key | None = None, **_ignored) -> Song:
        """A copy of `song` with Chords, Bass and Drums tracks in its meter: silent under a
        pickup but for the drums' lead-in, ending with the melody; in `key` when it is named,
        else in the key estimated from the melody."""
        return self.accompany_with_chords(song, melody_track=melody_track, style=style,
                                          seed=seed, key=key)[0]

    def accompany_with_chords(self, song: Song, *, melody_track: int | None = None,
                              style: str | None = None, seed: int | None = None,
                              key: Key | None = None, **_ignored) -> tuple[Song, list[Chord]]:
        """`accompany`, and the chords it plays (`chords`), for printing or drawing them
        without deciding them again."""
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
        chords = self.chords(out, melody.notes, key=key)
        parts = arrange(out, melody.notes, chords, style=style or self.style,
                        seed=0 if seed is None else seed)
        out.tracks.extend(parts)
        return out, chords

    def session(self, *, temperature: float | None = None, seed: int | None = None,
                key: Key | None = None, **_ignored) -> BandSession:
        return BandSession(self, key=key, seed=seed)


@dataclass(frozen=True, slots=True)
class _Role:
    name: str
    is_drum: bool


class ChordFollower:
    """The live chord of each bar: the causal chord GRU over the beats heard. Bars are counted
    from the session start: `next_chord` before each bar (with the notes of the bar before as
    far as they were played), `observe` once a bar was played. The key is named (at the start
    or by `set_key`), or estimated from the notes heard over the first LIVE_KEY_BARS bars
    (engine.music.heard_key: the melody's pitch classes and its first note; the
    chords are absolute: a later estimate moves the GRU's input, not the chords already
    chosen). The band's live session plays these chords; the choir's live chord prior follows
    them."""

    def __init__(self, model: BandAccompanist, *, key: Key | None = None) -> None:
        self.m = model
        self._fixed_key = key
        self.key = key
        self._hist = np.zeros(12)  # the observed bars' pitch-class durations
        self._first_pitch: int | None = None  # the first note heard
        # (notes, bar_ticks, tpb, meter) of every observed bar
        self._bar_feats: list[tuple[list[Note], int, int, tuple[int, int] | None]] = []
        self._h = np.zeros((1, 1, model.hidden), np.float32)
        # (bar_ticks, meter) of the bar last planned; None before the first
        self._last_bar: tuple[int, tuple[int, int] | None] | None = None
        self.n_planned = 0
        self.n_observed = 0
        self._reset_state()

    def _shift_minor(self) -> tuple[int, bool]:
        if self.key is None:
            return 0, False
        return self.key.tonic_shift(), self.key.mode == "minor"

    def _bos(self) -> np.ndarray:
        x = np.zeros((1, N_FEATURES), np.float32)
        x[0, -1] = float(self._shift_minor()[1])
        return x

    def _reset_state(self) -> None:
        """Replay every observed bar from the start (the key changed)."""
        h = np.zeros((1, 1, self.m.hidden), np.float32)
        shift, minor = self._shift_minor()
        xs = [self._bos()]
        for b, (notes, length, tpb, meter) in enumerate(self._bar_feats):
            xs.append(beat_features(notes, bar_beats(length, tpb, b, meter=meter), shift, minor))
        x = np.concatenate(xs)
        _, self._h = self.m.causal_logp(x, np.zeros((len(x), N_POS), np.float32), h)

    def _update_key(self) -> None:
        if self._fixed_key is not None or self.n_observed > LIVE_KEY_BARS \
                or np.count_nonzero(self._hist) < 4:
            return
        k = heard_key(self._hist, first_pitch=self._first_pitch)
        if k is not None and (self.key is None or (k.tonic, k.mode) != (self.key.tonic,
                                                                        self.key.mode)):
            self.key = k
            self._reset_state()

    def set_key(self, key: Key) -> None:
        """Follow `key` from now on (the caller estimates it its own way)."""
        self._fixed_key = key
        if self.key is None or (key.tonic, key.mode) != (self.key.tonic, self.key.mode):
            self.key = key
            self._reset_state()

    def observe(self, melody_notes: Sequence[Note], bar_ticks: int, ticks_per_beat: int, *,
                meter: tuple[int, int] | None = None) -> None:
        """Commit one played bar (times relative to its start); `meter` (numerator,
        denominator) where the engine knows it (6/8 is felt in dotted quarters), else the
        beats are quarters."""
        notes = sorted(melody_notes)
        if self._first_pitch is None and notes:
            self._first_pitch = min(notes, key=lambda n: (n.start, -n.pitch)).pitch
        self._hist += pitch_class_histogram(notes)
        self._bar_feats.append((notes, bar_ticks, ticks_per_beat, meter))
        self.n_observed += 1
        before = self.key
        self._update_key()
        if self.key is before or self.key == before:
            shift, minor = self._shift_minor()
            x = beat_features(notes, bar_beats(bar_ticks, ticks_per_beat, self.n_observed - 1,
                                               meter=meter), shift, minor)
            _, self._h = self.m.causal_logp(x, np.zeros((len(x), N_POS), np.float32), self._h)

    def next_chord(self, bar_ticks: int, ticks_per_beat: int, *,
                   pending: Sequence[Note] | None = None,
                   meter: tuple[int, int] | None = None) -> int:
        """The chord class (absolute pitch classes, engine.models.band_chords) of the next bar,
        chosen before it is heard: the causal GRU's likeliest, from the observed bars and
        `pending`, the bar before as far as it was played. 0 (no chord) until a melody note
        and a key are there."""
        if self.key is None and pending:
            notes = sorted(pending)
            first = min(notes, key=lambda n: (n.start, -n.pitch)).pitch
            k = heard_key(pitch_class_histogram(notes), first_pitch=first)
            if k is not None:
                self.key = k
                self._reset_state()
        shift, minor = self._shift_minor()
        nxt = position_features(bar_beats(bar_ticks, ticks_per_beat, self.n_planned,
                                          meter=meter)[0])[None]
        if pending and self._last_bar is not None and self.n_planned > self.n_observed:
            prev_len, prev_meter = self._last_bar
            xb = beat_features(sorted(pending), bar_beats(prev_len, ticks_per_beat,
                                                          meter=prev_meter), shift, minor)
            pos = np.vstack([xb[1:, N_MEL:N_MEL + N_POS], nxt])
            lp = self.m.causal_logp(xb, pos, self._h)[0][-1]
        else:
            lp = self.m.head_logp(self._h, nxt)
        idx = int(np.argmax(lp[1:])) + 1 if self.key is not None else 0
        self.n_planned += 1
        self._last_bar = (bar_ticks, meter)
        return transpose_index(idx, -shift)


class BandSession:
    """A live band: the chords of a ChordFollower, the arranger bar by bar. Bars are counted
    from the session start: `accompany_next` before each bar (with the notes of the bar before
    as far as they were played), `observe` once a bar was played."""

    def __init__(self, model: BandAccompanist, *, key: Key | None = None,
                 seed: int | None = None) -> None:
        self.m = model
        self.chords = ChordFollower(model, key=key)
        self._arr: Arranger | None = None
        self._arr_key: tuple | None = None
        self._seed = 0 if seed is None else seed
        self.chord_names: list[str] = []  # the chord each planned bar got ("-" for none)

    @property
    def key(self) -> Key | None:
        """The key named, or the one estimated so far."""
        return self.chords.key

    @property
    def n_observed(self) -> int:
        return self.chords.n_observed

    def observe(self, melody_notes: Sequence[Note], bar_ticks: int, ticks_per_beat: int, *,
                meter: tuple[int, int] | None = None) -> None:
        """Commit one played bar (see ChordFollower.observe)."""
        self.chords.observe(melody_notes, bar_ticks, ticks_per_beat, meter=meter)

    def accompany_next(self, bar_ticks: int, ticks_per_beat: int, *,
                       melody_notes: Sequence[Note] | None = None,
                       pending: Sequence[Note] | None = None,
                       meter: tuple[int, int] | None = None) -> list[list[Note]]:
        """Notes per role (chords, bass, drums) for the next bar, relative to its start, in
        `meter` where the engine knows it (else the meter its length suggests). The chord is
        chosen before the bar is heard (`melody_notes`, when given, is not read; see
        ChordFollower.next_chord); before the first one the drums count the band in."""
        bar = self.chords.n_planned
        absolute = self.chords.next_chord(bar_ticks, ticks_per_beat, pending=pending,
                                          meter=meter)
        lab = chord_label(absolute)
        self.chord_names.append(chord_name(*lab) if lab else "-")
        meter_name = live_meter(bar_ticks, ticks_per_beat, meter)
        style = resolve_style(self.m.style, meter_name)
        if self._arr is None or self._arr_key != (style, ticks_per_beat):
            self._arr = Arranger(style, ticks_per_beat, self._seed)
            self._arr_key = (style, ticks_per_beat)
        comp, bass, drums = self._arr.bar(bar_ticks, meter_name, [(0, absolute)], None, bar)
        return [comp, bass, drums]
