"""The musical checks of `popmusicnet eval accompanist`, each scored the same way for the model
and for a human reference: surface checks and key, cadence and voicing against Bach's own lower
voices (engine.evaluation.metrics), the live path replayed through the live engine on a virtual
clock, folk melodies the model never saw (some with human chord symbols), and a classifier that
tries to tell Bach's voices from the model's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from engine.evaluation import metrics
from engine.evaluation.metrics import consonance_share, coverage, in_scale_share
from engine.models.band_patterns import QUALITY_TONES
from engine.music import Key, Note, Song

CHECKS = ("in_scale", "consonance", "bars_covered", "downbeats")  # surface checks vs Bach


class Decoding(NamedTuple):
    """The decoding settings a musical check runs with (engine.models.accompanist's session
    arguments of the same names)."""

    temperature: float
    key_prior: float
    onset_prior: float = 0.0
    tonal_prior: float = 0.0
    chord_prior: float = 0.0

    def kwargs(self, seed: int) -> dict:
        return {**self._asdict(), "seed": seed}

    def label(self) -> str:
        return "/".join(f"{v:g}" for v in self)


def musical_checks(song: Song, melody: Sequence[Note], acc: Sequence[Note]) -> dict[str, float]:
    """The four shares of CHECKS, plus how much is played: notes per bar of the melody's span
    and the mean note length in beats (no target: they show whether a decoding plays as many
    notes as the voices it learned from)."""
    bars, downbeats = coverage(song, melody, acc)
    n_bars = len([b for b in song.bars(max((n.end for n in melody), default=0))]) or 1
    tpb = song.ticks_per_beat
    return {"in_scale": in_scale_share(melody, acc), "consonance": consonance_share(melody, acc),
            "bars_covered": bars, "downbeats": downbeats,
            "notes_per_bar": len(acc) / n_bars,
            "note_beats": (sum(n.duration for n in acc) / len(acc) / tpb) if acc
            else float("nan")}


# -- harmony: key, cadence, voicing (what a listener hears) -----------------------------------
# Shares where the model should do at least as well as Bach's own voices scored the same way.
HARMONY = ("same_tonic", "same_signature", "bass_tonic")
ABOVE_MELODY_MAX = 0.02  # a voice above the melody: at most this share of its sounding time


def harmony_checks(song: Song, melody: Sequence[Note], parts: Sequence[Sequence[Note]],
                   reference: Sequence[Sequence[Note]] | None = None,
                   key: Key | None = None) -> dict[str, float]:
    """Key, cadence and voicing figures of an accompaniment (`parts`: its voices, the lowest
    last) against the melody's `key` (default: engine.evaluation.metrics.analyse_key of the
    melody alone; the chorales pass the key of Bach's whole score, see `score_key`), and
    `same_tonic_melody_alone` against the melody analysed alone; with `reference` (Bach's
    voices) also the per-beat harmony agreement with it."""
    acc = [n for p in parts for n in p]
    alone = metrics.analyse_key(melody)
    key = key or alone
    tpb = song.ticks_per_beat
    end = max((n.end for n in melody), default=0)
    start = min((n.start for n in melody), default=0)
    out = {**metrics.key_agreement(key, acc), **metrics.cadence(key, parts[-1] if parts else [],
                                                                acc),
           "same_tonic_melody_alone": metrics.key_agreement(alone, acc)["same_tonic"],
           "above_melody": metrics.above_melody(melody, acc, tpb // 4),
           **metrics.parallels([melody, *parts], tpb // 2, start, end)}
    for i, part in enumerate(parts):  # voice ranges: the lowest and highest note of each voice
        if part:
            out[f"voice{i}_low"] = float(min(n.pitch for n in part))
            out[f"voice{i}_high"] = float(max(n.pitch for n in part))
    if reference is not None:
        out.update(metrics.harmony_agreement(acc, [n for p in reference for n in p], start, end,
                                             tpb))
    return out


def score_key(song: Song) -> Key | None:
    """The key a chorale is heard in: analyse_key of every note of the score (the melody with
    Bach's voices). The melody analysed alone names the same tonic in only 77% of the valid
    chorales (a soprano dwells on the dominant and the mediant): as the reference for an
    accompaniment's key it marks Bach's own voices wrong in a third of the pieces."""
    return metrics.analyse_key([n for t in song.tracks if not t.is_drum for n in t.notes])


def replay_live(accompanist, song: Song, melody: Sequence[Note]):
    """Play `melody` into the live engine on a virtual clock (the song's first full meter,
    100 BPM, no count-in; a pickup comes at the end of a bar of rest, as a player comes in after
    the count-in): each bar is planned one beat before it sounds, from the bars before it.
    Returns (the engine's stats, its recorded song, the ticks the melody was moved by)."""
    from engine.realtime.engine import LiveConfig, LiveEngine
    from engine.realtime.midi import NOTE_OFF, NOTE_ON, MidiEvent
    from engine.synth.live import NullBackend

    pickup = song.pickup_ticks
    meter = song.meter_at(pickup)
    tpb = song.ticks_per_beat
    bar = meter.bar_ticks(tpb)
    offset = bar - pickup if pickup else 0
    frames = [0]

    def clock() -> int:
        return frames[0]

    cfg = LiveConfig(bpm=100.0, meter=(meter.numerator, meter.denominator), ticks_per_beat=tpb,
                     count_in_bars=0, metronome=False, use_midi_in=False, thru="off",
                     clock_out=False)
    eng = LiveEngine(cfg, synth=NullBackend(clock=clock), clock=clock, accompanist=accompanist)
    eng.start(threaded=False)
    events = sorted([(n.start + offset, 1, n.pitch, n.velocity) for n in melody]
                    + [(n.end + offset, 0, n.pitch, 0) for n in melody])
    last = eng.tempo.frame_at(max(n.end for n in melody) + offset + bar)
    i = 0
    while frames[0] < last:
        while i < len(events) and eng.tempo.frame_at(events[i][0]) <= frames[0]:
            tick, on, pitch, vel = events[i]
            eng.feed(MidiEvent(eng.tempo.frame_at(tick), NOTE_ON if on else NOTE_OFF, 0, pitch,
                               vel))
            i += 1
        eng.step()
        frames[0] += 256
    stats = eng.stats
    rec = eng.recorded_song()
    eng.stop()
    return stats, rec, offset


def live_accompany(model, song: Song, melody: Sequence[Note], **decoding) -> list[list[Note]]:
    """The accompaniment a live session plays to `melody` (`replay_live`), with the decoding
    given: one note list per role in the song's ticks."""

    class _Session:  # the engine asks the model for a session with its own arguments
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def session(self, **_):
            return model.session(**decoding)

    _, rec, offset = replay_live(_Session(model), song, melody)
    mel_end = max(n.end for n in melody)
    return [[Note(max(n.start - offset, 0), min(n.end - offset, mel_end), n.pitch, n.velocity)
             for n in t.notes if n.start - offset < mel_end and n.end - offset > 0]
            for t in rec.tracks[1:]]


# -- out of the corpus: folk melodies, some with human chords --------------------------------


def chord_notes(chords: Sequence[tuple[int, int, str]], end: int) -> list[Note]:
    """Chord symbols (tick, root pitch class, quality) as held block chords in the octave under
    middle C, each until the next symbol (the last until `end`); "other" sounds its root."""
    out = []
    for i, (tick, root, quality) in enumerate(chords):
        stop = chords[i + 1][0] if i + 1 < len(chords) else end
        if stop <= tick:
            continue
        for d in QUALITY_TONES.get(quality, (0,)):
            out.append(Note(tick, stop, 48 + (root + d) % 12))
    return out


def _half_bars(song: Song, end: int) -> list[tuple[int, int]]:
    spans = []
    for s, e, _ in song.bars(end):
        mid = s + (e - s) // 2
        spans += [(s, mid), (mid, e)] if mid > s else [(s, e)]
    return spans


def _roots_agree(song: Song, acc: Sequence[Note], chords, end: int) -> tuple[int, int]:
    """Half bars where the accompaniment's triad (the best of 24 templates) has the root of the
    human chord sounding at the half bar's start; (agreeing, counted)."""
    spans = [sp for sp in _half_bars(song, end) if sp[0] >= chords[0][0]]
    ours = metrics.chords_per_span(acc, spans)
    agree = total = 0
    for (s, _), got in zip(spans, ours):
        human = [c for c in chords if c[0] <= s][-1]
        if human[2] == "other":
            continue
        total += 1
        agree += got is not None and got[0] == human[1]
    return agree, total


def folk_checks(model, dec: Decoding, seed: int,
                live_dec: Decoding | None = None) -> dict[str, dict[str, float]]:
    """Key and chord figures on folk melodies the model never saw (engine.training.data.folk):
    the accompaniment alone against the tune's notated key (same tonic, same signature), offline
    and live; where the tune carries chord symbols, the chord root per half bar against them,
    beside the naive triad rule and the human chords themselves scored the same way."""
    from engine.training.data.folk import folk_chord_tunes, folk_melodies
    from engine.training.data.folk_triads import naive_triad_chords

    decoding = dec.kwargs(seed)
    sums: dict[str, dict[str, list[float]]] = {}

    def add(who, k, v):
        sums.setdefault(who, {}).setdefault(k, []).append(float(v))

    chorded = folk_chord_tunes()
    for tune in [*chorded, *folk_melodies()]:
        song, key = tune.song, tune.key
        mel = song.melody_track()
        if mel is None or not mel.notes or key is None:
            continue
        end = mel.end
        out = model.accompany(song, melody_track=song.tracks.index(mel), **decoding)
        takes = {"model": [n for t in out.tracks[len(song.tracks):] for n in t.notes],
                 "model_live": [n for p in live_accompany(model, song, mel.notes,
                                                          **(live_dec or dec).kwargs(seed))
                                for n in p]}
        if tune.chords:
            takes["human"] = chord_notes(tune.chords, end)
            takes["naive"] = chord_notes(naive_triad_chords(song, per="bar", key=key), end)
        for who, acc in takes.items():
            for k, v in metrics.key_agreement(key, acc).items():
                add(who, k, v)
            if tune.chords and who != "human":
                a, n = _roots_agree(song, acc, tune.chords, end)
                if n:
                    add(who, "root_agreement", a / n)
        add("model", "tunes_with_chords", bool(tune.chords))
    out = {who: {k: float(np.mean(v)) for k, v in d.items()} for who, d in sums.items()}
    out["model"]["tunes"] = float(len(sums["model"]["same_tonic"]))
    out["model"]["tunes_with_chords"] = float(sum(sums["model"]["tunes_with_chords"]))
    return out


# -- real vs generated: can a small classifier tell Bach's voices from ours? -------------------
def window_features(song: Song, melody: Sequence[Note], parts: Sequence[Sequence[Note]],
                    key_tonic: int, bars_per_window: int = 2) -> np.ndarray:
    """One row per window of `bars_per_window` bars: for each voice (lowest last) its pitch-class
    histogram relative to the key's tonic (duration share), its melodic intervals (-7..+7,
    clipped; share), its notes per beat, mean duration, mean distance below the melody, and the
    interval classes to the melody on every eighth (share)."""
    tpb = song.ticks_per_beat
    bars = song.bars(max((n.end for n in melody), default=0))
    rows = []
    for w in range(0, len(bars) - bars_per_window + 1, bars_per_window):
        s, e = bars[w][0], bars[w + bars_per_window - 1][1]
        beats = max((e - s) / tpb, 1.0)
        ticks = np.arange(s, e, tpb // 2)
        mel = [max(x) if x else None for x in metrics._sounding(melody, ticks)]
        feats = []
        for part in parts:
            notes = sorted(n for n in part if s <= n.start < e)
            pcs = np.zeros(12)
            for n in notes:
                pcs[(n.pitch - key_tonic) % 12] += n.duration
            pcs /= max(pcs.sum(), 1)
            steps = np.zeros(15)
            for a, b in zip(notes, notes[1:]):
                steps[int(np.clip(b.pitch - a.pitch, -7, 7)) + 7] += 1
            steps /= max(steps.sum(), 1)
            low = [max(x) if x else None for x in metrics._sounding(part, ticks)]
            iv = np.zeros(12)
            gaps = []
            for m, x in zip(mel, low):
                if m is not None and x is not None:
                    iv[(m - x) % 12] += 1
                    gaps.append(m - x)
            iv /= max(iv.sum(), 1)
            dur = np.mean([n.duration for n in notes]) / tpb if notes else 0.0
            feats += [*pcs, *steps, *iv, len(notes) / beats, dur,
                      np.mean(gaps) / 12 if gaps else 0.0]
        rows.append(feats)
    return np.asarray(rows, np.float64)


def discriminator_auc(real: Sequence[np.ndarray], fake: Sequence[np.ndarray], *,
                      folds: int = 5, seed: int = 0) -> float:
    """ROC AUC of an L2 logistic regression telling real windows (Bach) from generated ones,
    cross-validated by piece: `real[i]` and `fake[i]` are the windows of piece i, and a piece's
    windows are scored by a model trained on the other folds. 0.5: indistinguishable. Written
    in numpy (a few dozen lines) because the runtime's dependencies hold no classifier library."""
    n = len(real)
    order = np.random.default_rng(seed).permutation(n)
    pos, neg = [], []
    for f in range(folds):
        held = set(order[f::folds].tolist())
        tr = [i for i in range(n) if i not in held]
        X = np.concatenate([real[i] for i in tr] + [fake[i] for i in tr])
        y = np.concatenate([np.ones(len(real[i])) for i in tr] + [np.zeros(len(fake[i]))
                                                                   for i in tr])
        if not len(X) or y.min() == y.max():
            continue
        mu, sd = X.mean(0), X.std(0) + 1e-6
        w = _logistic((X - mu) / sd, y)
        for i in held:
            if len(real[i]):
                pos += list(((real[i] - mu) / sd) @ w[:-1] + w[-1])
            if len(fake[i]):
                neg += list(((fake[i] - mu) / sd) @ w[:-1] + w[-1])
    return metrics.roc_auc(pos, neg)


def _logistic(X: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 300) -> np.ndarray:
    """Weights (and the bias, last) of an L2-regularised logistic regression by Newton steps."""
    Xb = np.hstack([X, np.ones((len(X), 1))])
    w = np.zeros(Xb.shape[1])
    reg = np.full(Xb.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(Xb @ w, -30, 30)))
        grad = Xb.T @ (p - y) + reg * w
        hess = (Xb * (p * (1 - p))[:, None]).T @ Xb + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w
