"""The band accompanist at runtime: a chord model in ONNX Runtime, then an arranger that plays the
chords as a band (comping piano or guitar, bass, drums on channel 10) in the song's meter.

Chords: one label per beat (a quarter note; a bar's last beat may be shorter), root and quality
among major, minor, dominant 7 and diminished, or none (N_CHORDS classes, `chord_index`). The
model sees per-beat melody features (`beat_features`: the melody's pitch-class durations in the
beat and the pitch classes sounding at its start and its middle, all relative to the tonic of the melody's key,
the beat's place in the bar, the mode) and was trained on melodies moved to C major / C minor
(engine.music.melody_key(...).tonic_shift()); the chords are moved back.

Two graphs (engine.training.band.export): `chords_offline`, a bidirectional GRU over the whole
melody (per-beat log-probabilities), and `chords_causal`, a GRU over the beats heard so far that
predicts the chord of the next beat from its place in the bar. Offline the chords are decided per
span of the song's harmonic rhythm (half bars in 2/4, 4/4, 2/2, bars in 3/4 and 6/8: the slower
rhythm folk tunes are played with) by a Viterbi pass over the summed log-probabilities with a
change penalty and a tonic bonus on the final span (`decode_spans`; both chosen on the valid
chorales, in the card). Live, the chord of bar t is chosen one beat before bar t from the bars
heard so far (the bar before included as far as it was played) and held for the bar; each
observed bar is fed to the GRU, so the next bar's chord follows what was really played.

The arranger (`Arranger`) reads its patterns from engine.models.band_patterns (a table: drums,
bass and comping per meter and style); the comping chord is voiced nearest the previous voicing,
the bass takes root, fifth and approach notes, velocities follow accents and four-bar phrases.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import ModelError, UserInputError
from engine.models import band_patterns as P
from engine.models.card import ModelCard
from engine.models.runtime import load_card
from engine.music import ROLE_ACCOMPANIMENT, Key, Note, Song, Track, estimate_key, melody_key

log = logging.getLogger(__name__)

KIND = "band"
DEFAULT_MODEL = "band-gru"
QUALITIES = ("maj", "min", "dom7", "dim")
N_CHORDS = 1 + 12 * len(QUALITIES)  # 0 = no chord
N_MEL = 36  # pitch-class durations (12), pitch class at the beat's start (12) and middle (12)
N_POS = 4  # downbeat, place in the bar, half-bar beat, pickup bar
N_FEATURES = N_MEL + N_POS + 1  # + minor mode
STYLES = tuple(P.STYLES)
KEY_BARS = 8  # a live session re-estimates the key over this many observed bars, then keeps it
ROLES = ("chords", "bass", "drums")
DRUM_CHANNEL_ROLE = "drums"

Chord = tuple[int, int, str]  # (tick, root pitch class, quality) as engine.training.data.folk


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


def chord_index(root: int, quality: str | None) -> int:
    if quality is None or quality not in QUALITIES:
        return 0
    return 1 + (root % 12) * len(QUALITIES) + QUALITIES.index(quality)


def chord_label(index: int) -> tuple[int, str] | None:
    """(root pitch class, quality) of a class index; None for "no chord"."""
    if index <= 0:
        return None
    i = index - 1
    return i // len(QUALITIES), QUALITIES[i % len(QUALITIES)]


def chord_name(root: int, quality: str) -> str:
    names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    return names[root % 12] + {"maj": "", "min": "m", "dom7": "7", "dim": "dim"}[quality]


def transpose_index(index: int, semitones: int) -> int:
    lab = chord_label(index)
    return 0 if lab is None else chord_index(lab[0] + semitones, lab[1])


# -- beats and features (shared with engine.training.band) -------------------------------------
@dataclass(frozen=True, slots=True)
class Beat:
    start: int
    end: int
    bar: int  # index of its bar
    index: int  # beat number within the bar
    n_beats: int  # beats in the bar
    pickup: bool


def song_beats(song: Song, end: int) -> list[Beat]:
    """Quarter-note beats of every bar covering [0, end); a bar's last beat may be shorter."""
    tpb = song.ticks_per_beat
    bars = song.bars(max(end, 1))
    pickup = song.pickup_ticks
    out = []
    for b, (s, e, _) in enumerate(bars):
        n = max(1, -(-(e - s) // tpb))
        for i in range(n):
            out.append(Beat(s + i * tpb, min(s + (i + 1) * tpb, e), b, i, n,
                            bool(pickup and b == 0)))
    return out


def bar_beats(bar_ticks: int, tpb: int, bar: int = 0, pickup: bool = False) -> list[Beat]:
    n = max(1, -(-bar_ticks // tpb))
    return [Beat(i * tpb, min((i + 1) * tpb, bar_ticks), bar, i, n, pickup) for i in range(n)]


def position_features(beat: Beat) -> np.ndarray:
    half = beat.n_beats % 2 == 0 and beat.index == beat.n_beats // 2
    return np.array([beat.index == 0, beat.index / beat.n_beats, half, beat.pickup], np.float32)


def beat_features(notes: Sequence[Note], beats: Sequence[Beat], shift: int,
                  minor: bool) -> np.ndarray:
    """(len(beats), N_FEATURES) float32: see the module docstring. `notes` sorted by start,
    `shift` the semitones that move the melody's tonic to C."""
    x = np.zeros((len(beats), N_FEATURES), np.float32)
    if not beats:
        return x
    starts = np.array([n.start for n in notes], np.int64)
    ends = np.array([n.end for n in notes], np.int64)
    pcs = np.array([(n.pitch + shift) % 12 for n in notes], np.int64)
    for i, b in enumerate(beats):
        length = max(b.end - b.start, 1)
        if len(notes):
            ov = np.minimum(ends, b.end) - np.maximum(starts, b.start)
            m = ov > 0
            if m.any():
                np.add.at(x[i, :12], pcs[m], ov[m] / length)
                at = m & (starts <= b.start)
                first = np.flatnonzero(at)[-1] if at.any() else np.flatnonzero(m)[0]
                x[i, 12 + pcs[first]] = 1.0
                mid = (b.start + b.end) // 2
                now = np.flatnonzero(m & (starts <= mid) & (ends > mid))
                if len(now):
                    x[i, 24 + pcs[now[-1]]] = 1.0
        x[i, N_MEL:N_MEL + N_POS] = position_features(b)
        x[i, -1] = float(minor)
    return x


def causal_inputs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, next positions) of the causal GRU over a whole melody's beat features: a start
    step (zeros, the mode) then every beat but the last; step t predicts beat t from beats < t."""
    start = np.zeros((1, N_FEATURES), np.float32)
    start[0, -1] = x[0, -1]
    return np.concatenate([start, x[:-1]]), np.ascontiguousarray(x[:, N_MEL:N_MEL + N_POS])


# -- offline decoding --------------------------------------------------------------------------
def harmonic_spans(song: Song, end: int, beats: Sequence[Beat]) -> list[tuple[int, int]]:
    """(first beat, last beat + 1) of each span a chord holds: half bars in meters of an even
    number of quarters (2/4, 4/4, 2/2), whole bars otherwise (3/4, 6/8) and in a pickup."""
    out = []
    i = 0
    while i < len(beats):
        b = beats[i]
        j = i
        while j < len(beats) and beats[j].bar == b.bar:
            j += 1
        n = j - i
        if n >= 4 and n % 2 == 0 and not b.pickup:
            out += [(i, i + n // 2), (i + n // 2, j)]
        else:
            out.append((i, j))
        i = j
    return out


def spans_from_features(x: np.ndarray) -> list[tuple[int, int]]:
    """`harmonic_spans` from beat features alone (their downbeat and pickup flags)."""
    starts = [int(i) for i in np.flatnonzero(x[:, N_MEL] > 0.5)] + [len(x)]
    if starts[0] != 0:
        starts = [0] + starts
    out = []
    for a, b in zip(starts[:-1], starts[1:]):
        n = b - a
        if n >= 4 and n % 2 == 0 and x[a, N_MEL + 3] < 0.5:
            out += [(a, a + n // 2), (a + n // 2, b)]
        else:
            out.append((a, b))
    return out


# The chords of the key (normalised: C major / C minor, the minor with its leading tone):
# I ii iii IV V V7 vi vii-dim; i ii-dim III iv V V7 VI VII vii-dim.
DIATONIC = {
    False: ((0, "maj"), (2, "min"), (4, "min"), (5, "maj"), (7, "maj"), (7, "dom7"), (9, "min"),
            (11, "dim")),
    True: ((0, "min"), (2, "dim"), (3, "maj"), (5, "min"), (7, "maj"), (7, "dom7"), (8, "maj"),
           (10, "maj"), (11, "dim")),
}


def off_key_mask(minor: bool) -> np.ndarray:
    """(N_CHORDS,) 1 for the chords outside the normalised key's DIATONIC set (and "none")."""
    m = np.ones(N_CHORDS)
    for r, q in DIATONIC[bool(minor)]:
        m[chord_index(r, q)] = 0.0
    return m


def decode_spans(logp: np.ndarray, spans: Sequence[tuple[int, int]], *, change_penalty: float,
                 final_bonus: float, tonic: int = 0, minor: bool = False,
                 diatonic_prior: float = 0.0) -> list[int]:
    """The best chord per span: Viterbi over the spans' summed per-beat log-probabilities,
    `change_penalty` nats for each change of chord, `final_bonus` nats for the tonic triad (of
    the normalised key, root `tonic`) on the last span, `diatonic_prior` nats a beat taken off
    the chords outside the key (DIATONIC). Returns class indices."""
    if not spans:
        return []
    score = np.stack([logp[a:b].sum(axis=0) for a, b in spans])  # (S, C)
    if diatonic_prior:
        lengths = np.array([b - a for a, b in spans], np.float64)[:, None]
        score = score - diatonic_prior * lengths * off_key_mask(minor)[None]
    if final_bonus:
        score[-1, chord_index(tonic, "min" if minor else "maj")] += final_bonus
    S, C = score.shape
    back = np.zeros((S, C), np.int64)
    v = score[0].copy()
    for s in range(1, S):
        best = int(v.argmax())
        stay = v
        jump = v[best] - change_penalty
        back[s] = np.where(stay >= jump, np.arange(C), best)
        v = np.maximum(stay, jump) + score[s]
    path = [int(v.argmax())]
    for s in range(S - 1, 0, -1):
        path.append(int(back[s, path[-1]]))
    return path[::-1]


def decode_beats(logp: np.ndarray, log_trans: np.ndarray | None, weight: float) -> list[int]:
    """The best chord per beat: Viterbi over the per-beat log-probabilities plus `weight` x the
    chord-bigram log-probabilities `log_trans` (C, C) of the training labels (0: argmax)."""
    if log_trans is None or weight == 0 or len(logp) == 0:
        return [int(i) for i in logp.argmax(axis=1)]
    T, C = logp.shape
    trans = weight * log_trans
    v = logp[0].copy()
    back = np.zeros((T, C), np.int64)
    for t in range(1, T):
        cand = v[:, None] + trans
        back[t] = cand.argmax(axis=0)
        v = cand.max(axis=0) + logp[t]
    path = [int(v.argmax())]
    for t in range(T - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]


# -- the arranger ------------------------------------------------------------------------------
def _meter_name(num: int, den: int) -> str:
    return f"{num}/{den}"


def resolve_style(style: str | None, meter: str) -> str:
    if style in (None, "", "auto"):
        return P.AUTO_STYLE.get(meter, "pop")
    if style not in P.STYLES:
        raise UserInputError(f"style must be one of auto, {', '.join(P.STYLES)}; got {style!r}")
    return style


class Arranger:
    """Realises chords as a band, bar by bar; keeps the voicing and bass note it played last."""

    def __init__(self, style: str, tpb: int, seed: int = 0) -> None:
        self.style = P.STYLES[style]
        self.style_name = style
        self.tpb = tpb
        self.voicing: list[int] | None = None
        self.bass_last: int | None = None
        self.rng = np.random.default_rng(seed)

    # voicing: the chord's tones within COMP_RANGE, 3-4 notes, nearest the previous voicing
    def voice(self, root: int, quality: str) -> list[int]:
        tones = P.QUALITY_TONES[quality]
        pcs = [(root + t) % 12 for t in tones]
        lo, hi = P.COMP_RANGE
        cands = []
        for bottom in range(lo, hi - 6):
            if bottom % 12 not in pcs:
                continue
            v = [bottom]
            k = pcs.index(bottom % 12)
            while len(v) < len(pcs):
                k = (k + 1) % len(pcs)
                nxt = v[-1] + 1
                while nxt % 12 != pcs[k]:
                    nxt += 1
                v.append(nxt)
            if v[-1] <= hi:
                cands.append(v)
        if not cands:
            return [60 + (p - 60) % 12 for p in pcs]
        prev = self.voicing
        if prev is None:
            target = (lo + hi) / 2
            best = min(cands, key=lambda v: abs(np.mean(v) - target))
        else:
            best = min(cands, key=lambda v: sum(min(abs(p - q) for q in prev) for p in v)
                       + 0.5 * abs(np.mean(v) - np.mean(prev)))
        self.voicing = best
        return best

    def bass_pitch(self, root: int, degree: str, next_root: int | None) -> int:
        lo, hi = P.BASS_RANGE
        base = self.bass_last if self.bass_last is not None else 40

        def near(pc: int, ref: int) -> int:
            cands = [p for p in range(lo, hi + 1) if p % 12 == pc % 12]
            return min(cands, key=lambda p: (abs(p - ref), p))

        r = near(root, base)
        if degree == "fifth":
            p = r + 7 if r + 7 <= hi else r - 5
        elif degree == "third":
            p = r + 4 if r + 4 <= hi else r - 8
        elif degree == "octave":
            p = r + 12 if r + 12 <= hi else r
        elif degree == "approach" and next_root is not None and next_root % 12 != root % 12:
            target = near(next_root, r)
            p = target - 1 if target - 1 >= lo else target + 1
            if (p % 12) not in [(next_root + d) % 12 for d in (-2, -1, 1, 2)]:
                p = target + 2
        else:
            p = r
        p = min(max(p, lo), hi)
        if degree in ("root",):
            self.bass_last = p
        return p

    def _vel(self, v: float, bar: int, at: float) -> int:
        swell = 0.92 + 0.08 * np.sin(np.pi * ((bar % 4) + at / 4) / 4)
        jitter = self.rng.integers(-4, 5)
        return int(np.clip(round(v * self.style["scale"] * swell + jitter), 1, 127))

    def patterns(self, bar_ticks: int, meter: str) -> tuple[list, list, list, float]:
        """(drums, bass, comp, repeat) of a bar: the style's patterns for its meter, else
        "generic" repeated every `repeat` quarters."""
        name = self.style["meters"].get(meter)
        if name is None:
            return P.DRUMS["generic"], P.BASS["generic"], P.COMP["generic"], 1.0
        return P.DRUMS[name], P.BASS[name], P.COMP[name], bar_ticks / self.tpb + 1

    def bar(self, bar_ticks: int, meter: str, chords: Sequence[tuple[int, int | None]],
            next_root: int | None, bar_index: int, *, pickup: bool = False,
            final_end: int | None = None) -> tuple[list[Note], list[Note], list[Note]]:
        """Notes (comp, bass, drums) of one bar, ticks relative to its start. `chords`: (tick,
        class index) changes inside the bar (the first at 0; index 0 = rest). `final_end`: the
        melody ends here (the last bar: one held chord, root and a crash, cut at it)."""
        tpb = self.tpb
        comp: list[Note] = []
        bass: list[Note] = []
        drums: list[Note] = []
        q = lambda x: int(round(x * tpb))  # noqa: E731
        if pickup:
            for k in range(max(1, bar_ticks // tpb)):
                t = k * tpb
                if t < bar_ticks:
                    drums.append(Note(t, min(t + tpb // 4, bar_ticks), P.PICKUP["note"],
                                      P.PICKUP["velocity"] + k * P.PICKUP["rise"]))
            return comp, bass, drums

        def chord_at(t: int) -> int:
            cur = 0
            for tick, idx in chords:
                if tick <= t:
                    cur = idx
            return cur

        def next_change_root(t: int) -> int | None:
            for tick, idx in chords:
                if tick > t:
                    lab = chord_label(idx)
                    return lab[0] if lab else None
            return next_root

        if final_end is not None:
            end = max(1, min(final_end, bar_ticks))
            for drum, vel in P.ENDING["drums"]:
                drums.append(Note(0, min(end, tpb), drum, vel))
            lab = chord_label(chord_at(0))
            if lab is not None:
                for p in self.voice(*lab):
                    comp.append(Note(0, end, p, P.ENDING["comp_velocity"]))
                bp = self.bass_pitch(lab[0], "root", None)
                bass.append(Note(0, end, bp, P.ENDING["bass_velocity"]))
            return comp, bass, drums

        dr, bs, cp, repeat = self.patterns(bar_ticks, meter)
        offsets = [0.0] if repeat > bar_ticks / tpb else \
            [k * repeat for k in range(int(np.ceil(bar_ticks / tpb / repeat)))]
        for off in offsets:
            for at, note, vel in dr:
                t = q(off + at)
                if t < bar_ticks:
                    drums.append(Note(t, min(t + tpb // 4, bar_ticks), note,
                                      self._vel(vel, bar_index, off + at)))
            for at, ln, degree, vel in bs:
                t = q(off + at)
                if t >= bar_ticks:
                    continue
                lab = chord_label(chord_at(t))
                if lab is None:
                    continue
                e = min(q(off + at + ln), bar_ticks)
                # an approach note only where the chord changes at the note's end
                nr = next_change_root(t) if degree == "approach" else None
                deg = degree if (degree != "approach" or chord_at(e) != chord_at(t)
                                 or e >= bar_ticks) else "fifth"
                bass.append(Note(t, max(e - tpb // 16, t + 1), self.bass_pitch(lab[0], deg, nr),
                                 self._vel(vel, bar_index, off + at)))
            for at, ln, vel in cp:
                t = q(off + at)
                if t >= bar_ticks:
                    continue
                lab = chord_label(chord_at(t))
                if lab is None:
                    continue
                e = min(q(off + at + ln), bar_ticks)
                for t2, idx in chords:  # a chord change cuts the comping note
                    if t < t2 < e:
                        e = t2
                v = self._vel(vel, bar_index, off + at)
                strum = int(self.style["strum"])
                for k, p in enumerate(self.voice(*lab)):
                    s = min(t + k * strum, e - 1)
                    comp.append(Note(s, max(e - tpb // 16, s + 1), p, max(1, v - 2 * k)))
        return comp, bass, drums


# -- the model ---------------------------------------------------------------------------------
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
                               diatonic_prior=self.diatonic_prior)
        out: list[Chord] = []
        for (a, _), c in zip(spans, idx):
            lab = chord_label(transpose_index(c, -shift))
            if lab is not None and (not out or out[-1][1:] != lab):  # changes only
                out.append((beats[a].start, lab[0], lab[1]))
        return out

    def chord_names(self, song: Song, melody: Sequence[Note]) -> list[list[str]]:
        """The chord names the band plays, per bar of the melody (a bar with no change: the
        chord it holds), e.g. [["C"], ["F", "G7"], ...]."""
        chords = self.chords(song, melody)
        out = []
        cur = None
        for s, e, _ in song.bars(max(n.end for n in melody)):
            inside = [chord_name(r, q) for t, r, q in chords if s <= t < e]
            if inside:
                cur = inside[-1]
            out.append(inside or ([cur] if cur else ["-"]))
        return out

    def chord_labels(self, song: Song, melody: Sequence[Note]) -> list[tuple[int, str]]:
        """(tick, chord name) of every chord change (the studio draws them above the roll)."""
        return [(t, chord_name(r, q)) for t, r, q in self.chords(song, melody)]

    # -- offline --------------------------------------------------------------------------------
    def accompany(self, song: Song, *, melody_track: int | None = None,
                  style: str | None = None, seed: int | None = None, **_ignored) -> Song:
        """A copy of `song` with Chords, Bass and Drums tracks in its meter: silent under a
        pickup but for the drums' lead-in, ending with the melody."""
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
        chords = self.chords(out, melody.notes)
        parts = arrange(out, melody.notes, chords, style=style or self.style,
                        seed=0 if seed is None else seed)
        out.tracks.extend(parts)
        return out

    def session(self, *, temperature: float | None = None, seed: int | None = None,
                key: Key | None = None, **_ignored) -> BandSession:
        return BandSession(self, key=key, seed=seed)


@dataclass(frozen=True, slots=True)
class _Role:
    name: str
    is_drum: bool


def arrange(song: Song, melody: Sequence[Note], chords: Sequence[Chord], *,
            style: str | None = None, seed: int = 0) -> list[Track]:
    """Chords, Bass and Drums tracks playing `chords` (tick, root, quality) in the meter of
    `song`, up to the melody's end (the chord sounding there is the last bar's, held)."""
    end = max(n.end for n in melody)
    first = song.meter_at(song.pickup_ticks)
    meter0 = _meter_name(first.numerator, first.denominator)
    style = resolve_style(style, meter0)
    arr = Arranger(style, song.ticks_per_beat, seed)
    bars = song.bars(end)
    pickup = song.pickup_ticks
    ch = sorted(chords)
    comp, bass, drums = [], [], []
    for b, (s, e, m) in enumerate(bars):
        inside = [(max(t - s, 0), chord_index(r, q)) for t, r, q in ch if s <= t < e]
        before = [c for c in ch if c[0] < s]
        if not inside or inside[0][0] > 0:
            lead = chord_index(before[-1][1], before[-1][2]) if before else 0
            inside = [(0, lead), *inside]
        nxt = next((c for c in ch if c[0] >= e), None)
        final = e >= end
        c, bs, d = arr.bar(e - s, _meter_name(m.numerator, m.denominator), inside,
                           nxt[1] if nxt else None, b, pickup=bool(pickup and b == 0),
                           final_end=end - s if final else None)
        comp += [n.shifted(s) for n in c]
        bass += [n.shifted(s) for n in bs]
        drums += [n.shifted(s) for n in d]
    st = arr.style
    return [Track("Chords", st["comp_program"], False, ROLE_ACCOMPANIMENT, sorted(comp)),
            Track("Bass", st["bass_program"], False, ROLE_ACCOMPANIMENT, sorted(bass)),
            Track("Drums", 0, True, ROLE_ACCOMPANIMENT, sorted(drums))]


class BandSession:
    """A live band: the causal chord GRU over the beats heard, the arranger bar by bar. Bars
    are counted from the session start: `accompany_next` before each bar (with the notes of the
    bar before as far as they were played), `observe` once a bar was played."""

    def __init__(self, model: BandAccompanist, *, key: Key | None = None,
                 seed: int | None = None) -> None:
        self.m = model
        self._fixed_key = key
        self.key = key
        self._heard: list[Note] = []  # absolute ticks from the session start (bar lengths summed)
        self._bar_feats: list[tuple[list[Note], int, int]] = []  # (notes, bar_ticks, tpb)
        self._h = np.zeros((1, 1, model.hidden), np.float32)
        self._last_len: int | None = None
        self._arr: Arranger | None = None
        self._arr_key: tuple | None = None
        self._bar = 0
        self._seed = 0 if seed is None else seed
        self.n_observed = 0
        self.chord_names: list[str] = []  # the chord each planned bar got ("-" for none)
        self._tpb = 480
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
        for b, (notes, length, tpb) in enumerate(self._bar_feats):
            xs.append(beat_features(notes, bar_beats(length, tpb, b), shift, minor))
        x = np.concatenate(xs)
        _, self._h = self.m.causal_logp(x, np.zeros((len(x), N_POS), np.float32), h)

    def _update_key(self) -> None:
        if self._fixed_key is not None or self.n_observed > KEY_BARS or not self._heard:
            return
        k = estimate_key(self._heard)
        if k is not None and (self.key is None or (k.tonic, k.mode) != (self.key.tonic,
                                                                        self.key.mode)):
            self.key = k
            self._reset_state()

    def observe(self, melody_notes: Sequence[Note], bar_ticks: int, ticks_per_beat: int) -> None:
        notes = sorted(melody_notes)
        offset = sum(b[1] for b in self._bar_feats)
        self._heard.extend(n.shifted(offset) for n in notes)
        self._bar_feats.append((notes, bar_ticks, ticks_per_beat))
        self.n_observed += 1
        before = self.key
        self._update_key()
        if self.key is before or self.key == before:
            shift, minor = self._shift_minor()
            x = beat_features(notes, bar_beats(bar_ticks, ticks_per_beat, self.n_observed - 1),
                              shift, minor)
            _, self._h = self.m.causal_logp(x, np.zeros((len(x), N_POS), np.float32), self._h)

    def accompany_next(self, bar_ticks: int, ticks_per_beat: int, *,
                       melody_notes: Sequence[Note] | None = None,
                       pending: Sequence[Note] | None = None) -> list[list[Note]]:
        """Notes per role (chords, bass, drums) for the next bar, relative to its start. The
        chord is chosen before the bar is heard (`melody_notes`, when given, is not read): from
        the observed bars and `pending`, the bar before as far as it was played."""
        self._tpb = ticks_per_beat
        if self.key is None and pending:
            k = estimate_key(list(pending))
            if k is not None:
                self.key = k
                self._reset_state()
        shift, minor = self._shift_minor()
        nxt = position_features(bar_beats(bar_ticks, ticks_per_beat, self._bar)[0])[None]
        prev_len = self._last_len
        if pending and prev_len is not None and self._bar > self.n_observed:
            xb = beat_features(sorted(pending), bar_beats(prev_len, ticks_per_beat), shift, minor)
            pos = np.vstack([xb[1:, N_MEL:N_MEL + N_POS], nxt])
            lp = self.m.causal_logp(xb, pos, self._h)[0][-1]
        else:
            lp = self.m.head_logp(self._h, nxt)
        # no chord until a melody note and a key are there: the drums count the band in
        idx = int(np.argmax(lp[1:])) + 1 if self.key is not None else 0
        absolute = transpose_index(idx, -shift)
        lab = chord_label(absolute)
        self.chord_names.append(chord_name(*lab) if lab else "-")
        meter = _live_meter(bar_ticks, ticks_per_beat)
        style = resolve_style(self.m.style, meter)
        if self._arr is None or self._arr_key != (style, ticks_per_beat):
            self._arr = Arranger(style, ticks_per_beat, self._seed)
            self._arr_key = (style, ticks_per_beat)
        comp, bass, drums = self._arr.bar(bar_ticks, meter, [(0, absolute)], None, self._bar)
        self._bar += 1
        self._last_len = bar_ticks
        return [comp, bass, drums]


def _live_meter(bar_ticks: int, tpb: int) -> str:
    """The meter a live bar is played in: 4/4, 3/4, 2/4 by its quarters (three quarters: 3/4)."""
    q = bar_ticks / tpb
    for name, n in (("4/4", 4), ("3/4", 3), ("2/4", 2)):
        if abs(q - n) < 1e-6:
            return name
    return "other"
