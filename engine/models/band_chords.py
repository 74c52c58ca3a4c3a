"""The band's chords: chord classes, the per-beat melody features the chord networks read, and
the decoding of their log-probabilities into the chords the band plays (numpy only; the networks
run in engine.models.band).

Chords: one label per beat (a quarter note, a dotted quarter in 6/8, 9/8 and 12/8:
`beat_ticks`; a bar's last beat may be shorter), root and quality among major, minor,
dominant 7 and diminished, or none (N_CHORDS classes, `chord_index`). The
networks see per-beat melody features (`beat_features`: the melody's pitch-class durations in
the beat and the pitch classes sounding at its start and its middle, all relative to the tonic
of the melody's key, the beat's place in the bar, the mode) and were trained on melodies moved
to C major / C minor (engine.music.melody_key(...).tonic_shift()); the chords are moved back.

Offline the chords are decided per span of the song's harmonic rhythm (half bars in 4/4, 2/2
and 12/8, bars in 2/4, 3/4 and 6/8: the slower rhythm folk tunes are played with) by a Viterbi
pass over the summed log-probabilities (`decode_spans`) with a change penalty, a tonic bonus on
the final span, a diatonic prior (nats a beat off the chords outside the key) and a tonic prior
(nats a beat times `key_fit`, the log-odds of the chord's tones under the key's profile: a pull
toward the chords that say the melody's key, the tonic triad most); chosen on the valid
chorales (the tonic prior and the final bonus also on folk tunes no evaluation scores) and
kept in the card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.models.band_patterns import QUALITY_TONES
from engine.music import KEY_PROFILES, PITCH_NAMES, Note, Song

QUALITIES = ("maj", "min", "dom7", "dim")
N_CHORDS = 1 + 12 * len(QUALITIES)  # 0 = no chord
N_MEL = 36  # pitch-class durations (12), pitch class at the beat's start (12) and middle (12)
N_POS = 4  # downbeat, place in the bar, half-bar beat, pickup bar
N_FEATURES = N_MEL + N_POS + 1  # + minor mode

Chord = tuple[int, int, str]  # (tick, root pitch class, quality) as engine.training.data.folk


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
    return PITCH_NAMES[root % 12] + {"maj": "", "min": "m", "dom7": "7", "dim": "dim"}[quality]


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


def beat_ticks(meter: tuple[int, int] | None, tpb: int) -> int:
    """The beat a bar is felt in: a dotted quarter in the compound meters (6/8, 9/8, 12/8: a
    jig is felt in two, not in three quarters that cut its second beat in half), else a
    quarter. `meter` (numerator, denominator); None: a quarter."""
    if meter is not None:
        n, d = meter
        if d == 8 and n % 3 == 0 and n >= 6:
            return tpb * 3 // 2
    return tpb


def song_beats(song: Song, end: int) -> list[Beat]:
    """The beats (`beat_ticks` of each bar's meter) of every bar covering [0, end); a bar's last
    beat may be shorter."""
    tpb = song.ticks_per_beat
    bars = song.bars(max(end, 1))
    pickup = song.pickup_ticks
    out = []
    for b, (s, e, m) in enumerate(bars):
        out += bar_beats(e - s, tpb, b, bool(pickup and b == 0),
                         meter=(m.numerator, m.denominator), start=s)
    return out


def bar_beats(bar_ticks: int, tpb: int, bar: int = 0, pickup: bool = False, *,
              meter: tuple[int, int] | None = None, start: int = 0) -> list[Beat]:
    """The beats of one bar of `bar_ticks` starting at `start`, in `meter` (`beat_ticks`)."""
    step = beat_ticks(meter, tpb)
    n = max(1, -(-bar_ticks // step))
    return [Beat(start + i * step, start + min((i + 1) * step, bar_ticks), bar, i, n, pickup)
            for i in range(n)]


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
    """(first beat, last beat + 1) of each span a chord holds: half bars in bars of four or more
    beats, an even number (4/4, 2/2, 12/8), whole bars otherwise (2/4, 3/4, 6/8) and in a
    pickup."""
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


def key_fit(minor: bool, profiles: str = "kk") -> np.ndarray:
    """(N_CHORDS,) how well each chord says the normalised key (C major / C minor): the mean,
    over the chord's tones, of the log-odds of the tone under the key's profile (the profile's
    value over its mean; engine.music.KEY_PROFILES). The tonic triad scores highest; "none" 0."""
    profile = np.asarray(KEY_PROFILES[profiles][1 if minor else 0], np.float64)
    logodds = np.log(profile / profile.mean())
    fit = np.zeros(N_CHORDS)
    for c in range(1, N_CHORDS):
        root, quality = chord_label(c)
        fit[c] = float(np.mean([logodds[(root + t) % 12] for t in QUALITY_TONES[quality]]))
    return fit


def key_priors(minor: bool, diatonic_prior: float, tonic_prior: float) -> np.ndarray:
    """(N_CHORDS,) nats added to every beat's log-probabilities: `diatonic_prior` off the chords
    outside the key, `tonic_prior` x `key_fit`."""
    prior = np.zeros(N_CHORDS)
    if diatonic_prior:
        prior -= diatonic_prior * off_key_mask(minor)
    if tonic_prior:
        prior += tonic_prior * key_fit(minor)
    return prior


def decode_spans(logp: np.ndarray, spans: Sequence[tuple[int, int]], *, change_penalty: float,
                 final_bonus: float, tonic: int = 0, minor: bool = False,
                 diatonic_prior: float = 0.0, tonic_prior: float = 0.0) -> list[int]:
    """The best chord per span: Viterbi over the spans' summed per-beat log-probabilities,
    `change_penalty` nats for each change of chord, `final_bonus` nats for the tonic triad (of
    the normalised key, root `tonic`) on the last span, `diatonic_prior` and `tonic_prior` nats a
    beat (`key_priors`). Returns class indices."""
    if not spans:
        return []
    score = np.stack([logp[a:b].sum(axis=0) for a, b in spans])  # (S, C)
    if diatonic_prior or tonic_prior:
        lengths = np.array([b - a for a, b in spans], np.float64)[:, None]
        score = score + lengths * key_priors(minor, diatonic_prior, tonic_prior)[None]
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


