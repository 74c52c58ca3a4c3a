"""`popmusicnet eval accompanist`: how good is the shipped accompanist, measured on the TEST split.

1. Frame-level NLL of the accompaniment given the melody, nats per frame (a frame = one step of
   the bar grid; its NLL sums the Bernoulli NLL of every role's active-plane pitches in the
   role's window, key-normalised test pieces). The VAE-RNN is measured through its exported ONNX
   graphs: at bar t the role RNN, fed the true melody latents up to t and the encoder mean of the
   role's true previous bar (the chain rule: p(acc_t | melody_<=t, acc_<t)), predicts a latent
   mean; the decoder's active probabilities *at that mean* score the true bar. This is a point
   estimate (no integral over latents): it is what the runtime plays from, and it can only be
   worse than a marginal likelihood for being too sharp. Baselines (engine.training.accompanist.
   baselines): a per-pitch frequency model and a plain LSTM melody frames -> accompaniment
   frames, trained here on the same train split with the same augmentation and early stopping.
2. Musical checks of the generated accompaniment vs Bach's own lower voices on the same test
   melodies (the melody's key and meter as given): share of accompaniment note duration in the
   melody's key scale; consonance (interval classes 0, 3, 4, 5, 7, 8, 9 semitones) of every
   accompaniment note sounding at a melody onset against that melody note; bars (from the melody's
   first to last) with some accompaniment sounding; downbeats (full bars) with accompaniment
   sounding.
3. Latency of one bar on CPU, one thread: offline (melody known: encode, role RNN steps, decode,
   re-encode, melody RNN step) and live (melody predicted, then replayed on observe), p50/p99.

No torch here: the baselines' training is imported from engine.training inside `evaluate`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from engine.evaluation import metrics
from engine.evaluation.metrics import consonance_share, coverage, in_scale_share
from engine.music import Note, Song, pitch_name

log = logging.getLogger(__name__)

__all__ = ["consonance_share", "coverage", "in_scale_share", "musical_checks", "evaluate"]


CHECKS = ("in_scale", "consonance", "bars_covered", "downbeats")  # surface checks vs Bach


class Decoding(NamedTuple):
    """The decoding settings a musical check runs with (engine.models.accompanist's session
    arguments of the same names)."""

    temperature: float
    key_prior: float
    onset_prior: float = 0.0
    tonal_prior: float = 0.0

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
                   reference: Sequence[Sequence[Note]] | None = None) -> dict[str, float]:
    """Key, cadence and voicing figures of an accompaniment (`parts`: its voices, the lowest
    last) against the melody's key (engine.evaluation.metrics.analyse_key on the melody alone);
    with `reference` (Bach's voices) also the per-beat harmony agreement with it."""
    acc = [n for p in parts for n in p]
    key = metrics.analyse_key(melody)
    tpb = song.ticks_per_beat
    end = max((n.end for n in melody), default=0)
    start = min((n.start for n in melody), default=0)
    out = {**metrics.key_agreement(key, acc), **metrics.cadence(key, parts[-1] if parts else [],
                                                                acc),
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
_QUALITY_SHAPES = {"maj": (0, 4, 7), "min": (0, 3, 7), "dom7": (0, 4, 7, 10), "dim": (0, 3, 6)}


def chord_notes(chords: Sequence[tuple[int, int, str]], end: int) -> list[Note]:
    """Chord symbols (tick, root pitch class, quality) as held block chords in the octave under
    middle C, each until the next symbol (the last until `end`); "other" sounds its root."""
    out = []
    for i, (tick, root, quality) in enumerate(chords):
        stop = chords[i + 1][0] if i + 1 < len(chords) else end
        if stop <= tick:
            continue
        for d in _QUALITY_SHAPES.get(quality, (0,)):
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


def folk_checks(model, dec: Decoding, seed: int) -> dict[str, dict[str, float]]:
    """Key and chord figures on folk melodies the model never saw (engine.training.data.folk):
    the accompaniment alone against the tune's notated key (same tonic, same signature), offline
    and live; where the tune carries chord symbols, the chord root per half bar against them,
    beside the naive triad rule and the human chords themselves scored the same way."""
    from engine.training.data.folk import folk_chord_tunes, folk_melodies, naive_triad_chords

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
                 "model_live": [n for p in live_accompany(model, song, mel.notes, **decoding)
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


# -- NLL through the ONNX graphs ---------------------------------------------------------------
def model_nll_per_frame(model, pieces, *, per_role: bool | None = None) -> float:
    """Frame NLL of the shipped model on key-normalised PieceBars (see the module docstring):
    through the fused graphs the runtime runs (`roles_encode` for the true latents, then
    `roles_decode` step by step, teacher-forced, no noise), or through the per-role graphs
    (`per_role`; default: where the card has no fused graphs). Both give the same figure
    (tests/test_accompanist.py)."""
    from engine.models.line_decoding import sigmoid

    if per_role is None:
        per_role = model._fused is None
    tot, frames = 0.0, 0
    R = len(model.roles)
    for p in pieces:
        T = p.bars.shape[0]
        masks = p.masks.astype(np.float32)
        mel = model._enc_mel.run({"planes": p.bars[:, 0].astype(np.float32), "mask": masks})["mu"]
        if not per_role:
            tot += _fused_nll(model, p, masks, mel)
            frames += int(masks.sum())
            continue
        for r in range(R):
            true = p.bars[:, r + 1].astype(np.float32)
            z_true = model._enc[r].run({"planes": true, "mask": masks,
                                        "melody": p.bars[:, 0].astype(np.float32)})["mu"]
            z_prev = np.concatenate([np.zeros_like(z_true[:1]), z_true[:-1]])
            h = np.zeros((1, 1, model.rnn_hidden), np.float32)
            preds = []
            for t in range(T):
                out = model._rnn[r].run({"z_mel": mel[t:t + 1], "z_prev": z_prev[t:t + 1],
                                         "mask": masks[t:t + 1], "h": h})
                preds.append(out["z"])
                h = out["h_out"]
            feeds = {"z": np.concatenate(preds), "mask": masks,
                     "melody": p.bars[:, 0].astype(np.float32)}
            if "prev_last" in model._dec[r].inputs:  # the true previous bar's last step
                last_step = np.array([np.flatnonzero(m)[-1] for m in masks])
                last = true[np.arange(T), 1, last_step]
                feeds["prev_last"] = np.concatenate([np.zeros_like(last[:1]), last[:-1]])
            dec = model._dec[r].run(feeds)
            prob = np.clip(sigmoid(dec["active_logits"].astype(np.float64)), 1e-6, 1 - 1e-6)
            y = true[:, 1]
            nll = -(y * np.log(prob) + (1 - y) * np.log(1 - prob))
            tot += float((nll * masks[:, :, None]).sum())
        frames += int(masks.sum())
    return tot / max(frames, 1)


def _fused_nll(model, p, masks: np.ndarray, mel: np.ndarray) -> float:
    from engine.models.line_decoding import sigmoid

    T = p.bars.shape[0]
    roles = model.roles
    melody = p.bars[:, 0].astype(np.float32)
    # the re-encoder also steps the melody RNN (for the live path): fed, not used here
    feeds = {"mask": masks, "melody": melody, "z_mel": mel,
             "melody.h": np.zeros((1, T, model.rnn_hidden), np.float32)}
    true = [p.bars[:, r + 1].astype(np.float32) for r in range(len(roles))]
    for name, planes in zip(roles, true):
        feeds[f"{name}.planes"] = planes
    enc = model._fused[1].run(feeds)
    last_step = np.array([np.flatnonzero(m)[-1] for m in masks])
    state = {}
    for r, name in enumerate(roles):
        z_true = enc[f"{name}.played"]
        last = true[r][np.arange(T), 1, last_step]
        state[name] = (np.concatenate([np.zeros_like(z_true[:1]), z_true[:-1]]),
                       np.concatenate([np.zeros_like(last[:1]), last[:-1]]))
    h = {name: np.zeros((1, 1, model.rnn_hidden), np.float32) for name in roles}
    tot = 0.0
    for t in range(T):
        # known: the decoders hear the true melody bar (its latent is encoded in the graph,
        # the same as `mel`)
        feeds = {"z_mel": mel[t:t + 1], "mask": masks[t:t + 1], "melody": melody[t:t + 1],
                 "known": np.array([[True]])}
        for r, name in enumerate(roles):
            z_prev, prev_last = state[name]
            feeds[f"{name}.z_prev"] = z_prev[t:t + 1]
            feeds[f"{name}.h"] = h[name]
            feeds[f"{name}.noise"] = np.zeros_like(z_prev[t:t + 1])
            if model.uses_prev_last[r]:
                feeds[f"{name}.prev_last"] = prev_last[t:t + 1]
        out = model._fused[0].run(feeds)
        for r, name in enumerate(roles):
            h[name] = out[f"{name}.h_out"]
            prob = np.clip(sigmoid(out[f"{name}.active_logits"][0].astype(np.float64)),
                           1e-6, 1 - 1e-6)
            y = true[r][t, 1]
            nll = -(y * np.log(prob) + (1 - y) * np.log(1 - prob))
            tot += float((nll * masks[t][:, None]).sum())
    return tot


# -- latency -----------------------------------------------------------------------------------
def latency(model, melody_bars: Sequence[list[Note]], n_bars: int = 1000,
            bar_ticks: int = 1920, tpb: int = 480) -> dict[str, float]:
    """p50/p99 in ms of one bar: offline (melody known) and live (predicted, then observed).
    The heap is frozen first, as the live engine does when it starts (engine.realtime.engine.
    freeze_heap), and the process is pinned to one CPU (not CPU 0, which takes most
    interrupts here) while it measures."""
    from engine.realtime.engine import freeze_heap

    freeze_heap()
    saved = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if saved:
        os.sched_setaffinity(0, {max(saved)})
    try:
        res = {}
        for mode in ("offline", "live"):
            sess = model.session(temperature=0.0, seed=0)
            times = []
            for i in range(n_bars + 20):
                bar = melody_bars[i % len(melody_bars)]
                t0 = time.perf_counter()
                if mode == "offline":
                    sess.accompany_next(bar_ticks, tpb, melody_notes=bar)
                else:
                    sess.accompany_next(bar_ticks, tpb)
                sess.observe(bar, bar_ticks, tpb)
                if i >= 20:  # warm-up
                    times.append((time.perf_counter() - t0) * 1000)
            res[f"{mode}_p50_ms"] = float(np.percentile(times, 50))
            res[f"{mode}_p99_ms"] = float(np.percentile(times, 99))
    finally:
        if saved:
            os.sched_setaffinity(0, saved)
    res["load_average"] = float(os.getloadavg()[0])
    return res


# -- the whole evaluation ----------------------------------------------------------------------
@dataclass
class EvalResult:
    nll: dict[str, float]
    musical: dict[str, dict[str, float]]
    latency: dict[str, float]
    n_pieces: int
    n_frames: int
    provider: str
    seconds: float
    temperature: float = 0.0
    temperatures_tried: dict | None = None  # {Decoding: gap on valid}
    key_prior: float = 0.0
    onset_prior: float = 0.0
    tonal_prior: float = 0.0
    live: dict[str, float] | None = None  # the model's figures as a live session plays
    discriminator_auc: float = float("nan")
    folk: dict | None = None  # out-of-corpus folk melodies (folk_checks)
    tonal_profile: dict | None = None  # {mode: (12,) degree shares} the tonal prior used

    def metrics(self) -> dict:
        def rounded(d):
            return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}

        return {"test_pieces": self.n_pieces, "test_frames": self.n_frames,
                "nll_nats_per_frame": {k: round(v, 4) for k, v in self.nll.items()},
                "musical": {k: rounded(v) for k, v in self.musical.items()},
                "live": rounded(self.live or {}),
                "discriminator_auc": round(self.discriminator_auc, 4),
                "folk": {k: rounded(v) for k, v in (self.folk or {}).items()},
                "latency_ms": {k: round(v, 3) for k, v in self.latency.items()},
                "musical_temperature": self.temperature, "musical_key_prior": self.key_prior,
                "musical_onset_prior": self.onset_prior,
                "musical_tonal_prior": self.tonal_prior}


def evaluate(model_name: str | None = None, data: str = "corpus:bach", *,
             baseline_epochs: int = 60, latency_bars: int = 1000,
             temperature: float | None = None, key_prior: float | None = None,
             onset_prior: float | None = None, tonal_prior: float | None = None,
             seed: int = 0, progress=None) -> EvalResult:
    from engine.models.accompanist import Accompanist
    from engine.training.accompanist.baselines import FrequencyBaseline, LSTMBaseline
    from engine.training.accompanist.config import ModelConfig
    from engine.training.accompanist.data import melody_and_roles, prepare, tonal_profile
    from engine.training.accompanist.train import load_source

    t0 = time.perf_counter()
    model = Accompanist.load(model_name, providers="cpu")
    rep = model.card.representation
    songs, _ = load_source(data)
    # the tonal prior's profile: the train split's accompaniments (stored by --update-card)
    model.tonal_profile = {mode: np.asarray(v) for mode, v in tonal_profile(songs).items()}
    tracks = rep["tracks"]
    spec0 = tracks[0]["spec"]
    cfg = ModelConfig(latent=model.latent, rnn_hidden=model.rnn_hidden,
                      n_pitches=int(spec0["n_pitches"]),
                      max_bar_steps=int(spec0["max_bar_steps"]),
                      steps_per_beat=int(spec0["steps_per_beat"]))
    prepared = prepare(songs, cfg, roles=list(model.roles),
                       windows=[int(t["spec"]["low_pitch"]) for t in tracks])
    train, valid, test = (prepared.split(s) for s in ("train", "valid", "test"))
    if not test:
        raise ValueError("no test pieces")
    drums = [t.is_drum for t in prepared.tracks]

    def say(stage, epoch, value):
        if progress:
            progress(stage=stage, epoch=epoch, valid_nll=value)

    nll = {"vae_rnn": model_nll_per_frame(model, test)}
    say("vae_rnn", 0, nll["vae_rnn"])
    nll["frequency"] = FrequencyBaseline().fit(train).nll_per_frame(test)
    say("frequency", 0, nll["frequency"])
    # "trained the same way": the baseline gets the model's own transposition augmentation
    transpose = int(model.card.training.get("train_config", {}).get("transpose", 2))
    lstm = LSTMBaseline(epochs=baseline_epochs, seed=seed, transpose=transpose).fit(
        train, valid, drums, say)
    nll["lstm"] = lstm.nll_per_frame(test)
    say("lstm", -1, nll["lstm"])
    n_frames = int(sum(p.masks.sum() for p in test))

    # musical checks on the original songs; the temperature, key prior and onset prior are
    # chosen on the VALID split when not given (the setting whose figures come closest to
    # Bach's there: the smallest largest gap over CHECKS and the notes per bar, the last as a
    # relative difference), then measured on test
    valid_ids = {p.id for p in valid}
    tried: dict[Decoding, float] = {}
    grid = [Decoding(t, kp, op, tp)
            for t in (TEMPERATURES if temperature is None else (temperature,))
            for kp in (KEY_PRIORS if key_prior is None else (key_prior,))
            for op in (ONSET_PRIORS if onset_prior is None else (onset_prior,))
            for tp in (TONAL_PRIORS if tonal_prior is None else (tonal_prior,))]
    if len(grid) > 1:
        for dec in grid:
            tried[dec] = closeness_gap(musical_split(model, songs, valid_ids, dec, seed))
            if progress:
                progress(stage="decoding", **dec._asdict(), valid_max_gap=tried[dec])
        chosen = min(tried, key=tried.get)
    else:
        chosen = grid[0]
    test_ids = {p.id for p in test}
    windows: dict = {}
    musical = musical_split(model, songs, test_ids, chosen, seed, windows=windows)
    auc = discriminator_auc(windows["bach"], windows["model"], seed=seed)
    say("musical", 0, auc)
    live = musical_split(model, songs, test_ids, chosen, seed, live=True)["model"]
    say("live", 0, live.get("same_tonic", float("nan")))
    folk = folk_checks(model, chosen, seed)
    say("folk", 0, folk["model"].get("same_tonic", float("nan")))
    melody_bars: list[list[Note]] = []
    for pid, split, song in songs:
        if split != "test":
            continue
        mel, _ = melody_and_roles(song)
        for s, e, m in song.bars(mel.end):
            if e - s == m.bar_ticks(song.ticks_per_beat) == 4 * song.ticks_per_beat:
                melody_bars.append([Note(n.start - s, min(n.end, e) - s, n.pitch, n.velocity)
                                    for n in mel.notes if s <= n.start < e])
    lat = latency(model, melody_bars[:200] or [[Note(0, 480, 72)]], latency_bars)
    return EvalResult(nll, musical, lat, len(test), n_frames, model.provider,
                      time.perf_counter() - t0, chosen.temperature, tried, chosen.key_prior,
                      chosen.onset_prior, chosen.tonal_prior, live, auc, folk,
                      tonal_profile=model.tonal_profile)


# The decodings tried on valid. Temperature 0.75 and onset prior 1 are left out: on the last
# full grid (T 0-0.75 x key prior 1-4 x onset prior 0-1) every setting with either was at least
# 8 points further from Bach's figures than the best without.
TEMPERATURES = (0.0, 0.25, 0.5)
# nats off the log-odds of off-key pitches / of every onset / per unit of a scale degree's
# tonal penalty (engine.models.accompanist)
KEY_PRIORS = (1.0, 2.0, 4.0)
ONSET_PRIORS = (0.0,)
TONAL_PRIORS = (0.0, 0.5, 1.0, 2.0)


def closeness_gap(m: dict) -> float:
    """How far a decoding's figures are from Bach's: the largest of the CHECKS' differences
    (shares), of the relative difference in notes per bar (a decoding that plays twice or half
    as many notes is not close, whatever its shares), of how far each HARMONY share falls short
    of Bach's (doing better than his voices costs nothing) and of the share of time above the
    melody beyond ABOVE_MELODY_MAX. Figures a split lacks are not counted."""
    model, bach = m["model"], m["bach"]
    gaps = [abs(model[k] - bach[k]) for k in CHECKS]
    b = bach.get("notes_per_bar", 0.0)
    if b > 0:
        gaps.append(abs(model["notes_per_bar"] / b - 1.0))
    gaps += [max(0.0, bach[k] - model[k]) for k in HARMONY if k in model and k in bach]
    if "above_melody" in model:
        gaps.append(max(0.0, model["above_melody"] - ABOVE_MELODY_MAX))
    return max(gaps)


def musical_split(model, songs, ids: set[str], dec: Decoding, seed: int, *,
                  live: bool = False, windows: dict | None = None) -> dict:
    """Mean musical checks (surface and harmony) of Bach's lower voices and of the model on the
    pieces `ids`; `live`: the model as a live session plays them (`live_accompany`), else as
    `accompany` does. `windows`: filled with the discriminator's features per piece
    ({"bach": [...], "model": [...]})."""
    from engine.training.accompanist.data import melody_and_roles

    sums: dict[str, dict[str, list[float]]] = {"bach": {}, "model": {}}
    decoding = dec.kwargs(seed)
    for pid, _, song in songs:
        if pid not in ids:
            continue
        mel, acc = melody_and_roles(song)
        bach = [t.notes for t in acc]
        if live:
            gen = live_accompany(model, song, mel.notes, **decoding)
        else:
            solo = Song([mel], song.ticks_per_beat, song.tempos, song.meters, song.title)
            out = model.accompany(solo, melody_track=0, **decoding)
            gen = [t.notes for t in out.tracks[1:]]
        for who, parts in (("bach", bach), ("model", gen)):
            notes = [n for p in parts for n in p]
            figures = {**musical_checks(song, mel.notes, notes),
                       **harmony_checks(song, mel.notes, parts,
                                        bach if who == "model" else None)}
            for k, v in figures.items():
                if not np.isnan(v):
                    sums[who].setdefault(k, []).append(v)
            if windows is not None:
                key = metrics.analyse_key(mel.notes)
                windows.setdefault(who, []).append(
                    window_features(song, mel.notes, parts, key.tonic if key else 0))
    return {who: {k: float(np.mean(v)) for k, v in d.items()} for who, d in sums.items()}


def harmony_markdown(res: EvalResult) -> list[str]:
    """The key, cadence and voicing tables of the report."""
    bach, model, live = res.musical["bach"], res.musical["model"], res.live or {}

    def pct(d, k):
        v = d.get(k, float("nan"))
        return "-" if np.isnan(v) else f"{100 * v:.1f}%"

    def num(d, k):
        v = d.get(k, float("nan"))
        return "-" if np.isnan(v) else f"{v:.2f}"

    rows = [("same_tonic", "key of the accompaniment alone: the melody's tonic", pct),
            ("same_signature", "... the melody's key signature", pct),
            ("bass_tonic", "last bass note on the tonic", pct),
            ("final_tonic_triad", "final sonority a tonic triad", pct),
            ("pc_jaccard", "pitch classes per beat shared with Bach's (Jaccard)", pct),
            ("bass_agreement", "bass pitch class per beat = Bach's", pct),
            ("above_melody", "time with a voice above the melody", pct),
            ("parallel_fifths", "parallel fifths per 100 moves of a voice pair", num),
            ("parallel_octaves", "parallel octaves / unisons per 100 moves", num)]
    out = ["", "Key, cadence and voicing, on the same test melodies. The key is analysed from the "
           "accompaniment alone (melody notes removed) and from the melody alone, each with the "
           "Krumhansl-Schmuckler method on Aarden-Essen profiles (the default of music21's "
           "`analyze('key')`); live: the same model as a live session plays, replayed through "
           "the live engine on a virtual clock (each bar planned one beat before it sounds, "
           "from the bars before it).", "",
           "| check | Bach's lower voices | VAE-RNN (accompany) | VAE-RNN (live) |",
           "|---|---|---|---|"]
    for k, label, f in rows:
        out.append(f"| {label} | {f(bach, k)} | {f(model, k)} | {f(live, k)} |")
    for i in range(3):
        if f"voice{i}_low" not in bach:
            continue

        def rng(d, i=i):
            lo, hi = d.get(f"voice{i}_low"), d.get(f"voice{i}_high")
            return "-" if lo is None or hi is None else f"{pitch_name(round(lo))}-" \
                f"{pitch_name(round(hi))}"

        out.append(f"| voice {i + 1} from the top (under the melody): lowest-highest note, mean "
                   f"per piece | {rng(bach)} | {rng(model)} | {rng(live)} |")
    out += ["", f"A small classifier (L2 logistic regression on 2-bar windows of the lower "
            f"voices: pitch classes from the tonic, melodic steps, intervals to the melody, "
            f"density; cross-validated by piece) tells Bach's voices from the model's with ROC "
            f"AUC **{res.discriminator_auc:.3f}** (0.5: it cannot; 1.0: always)."]
    folk = res.folk or {}
    if folk:
        fm = folk.get("model", {})
        out += ["", f"Folk melodies the model never saw ({int(fm.get('tunes', 0))} tunes from the "
                f"music21 corpus's folk collections, {int(fm.get('tunes_with_chords', 0))} of them "
                "with chord symbols; engine.training.data.folk). Key against the tune's notated "
                "key; chord root per half bar against the tune's own chord symbols (our "
                "accompaniment's chord: the best of 24 triads on what sounds in the half bar).",
                "", "| on folk melodies | VAE-RNN (accompany) | VAE-RNN (live) | naive triad rule "
                "| human chords |", "|---|---|---|---|---|"]
        for k, label in (("same_tonic", "accompaniment alone in the tune's tonic"),
                         ("same_signature", "... its key signature"),
                         ("root_agreement", "chord root = the human chord's, per half bar")):
            out.append(f"| {label} | " + " | ".join(pct(folk.get(w, {}), k) for w in
                                                    ("model", "model_live", "naive", "human"))
                       + " |")
        out += ["", "The naive triad rule puts under each bar the I, IV, V, vi or ii triad "
                "(minor keys: i, iv, V, VI, III) covering most of the bar's melody."]
    return out


def tonal_line(profile: dict) -> str:
    """The tonal profile's shares, e.g. "major 1 21%, 2 13%, ...; minor ..." (scale degrees
    as semitones above the tonic where a share is at least 5%)."""
    parts = []
    for mode, shares in profile.items():
        shares = np.asarray(shares)
        parts.append(f"{mode} " + ", ".join(f"+{d} {100 * v:.0f}%" for d, v in enumerate(shares)
                                             if v >= 0.05))
    return "; ".join(parts)


def report_markdown(res: EvalResult, model_name: str, command: str) -> str:
    from engine.evaluation.report import provenance

    n = res.nll
    beats = all(n["vae_rnn"] < n[b] for b in ("frequency", "lstm"))
    lines = [
        "## Accompanist (VAE-RNN)", "", provenance(), "",
        f"Command: `{command}`. Model `{model_name}`; test split: {res.n_pieces} chorales, "
        f"{res.n_frames} frames (16th-note steps), key-normalised.", "",
        "| frame-level NLL of the accompaniment given the melody (nats/frame, lower is better) | "
        "value |", "|---|---|",
        f"| VAE-RNN (decoder at the predicted latent mean, teacher-forced) | {n['vae_rnn']:.3f} |",
        f"| baseline: per-pitch frequency | {n['frequency']:.3f} |",
        f"| baseline: LSTM melody frames -> accompaniment frames | {n['lstm']:.3f} |", "",
        f"The VAE-RNN {'beats' if beats else 'does NOT beat'} both baselines. The LSTM baseline "
        "stops early on the valid split (patience 4, at most `--baseline-epochs`), so its figure "
        "moves between runs with where it stops.", "",
        f"Musical checks at temperature {res.temperature:g}, key prior {res.key_prior:g} "
        "(nats taken off the log-odds of pitches outside the melody's key when a voice is "
        f"decided), onset prior {res.onset_prior:g} (nats taken off every onset's log-odds) "
        f"and tonal prior {res.tonal_prior:g} (nats per unit of a scale degree's penalty, "
        "log(share of the commonest degree / its share) in the train split's accompaniments"
        + (f": {tonal_line(res.tonal_profile)}" if res.tonal_profile else "") + ")"
        + (", chosen on the valid split as the setting closest to Bach's figures there (the "
           "largest gap over the four checks and the key and cadence checks in points, and "
           "the notes per bar in percent; T / key / onset / tonal: "
           + ", ".join(f"{Decoding(*d).label()}: {100 * g:.1f}"
                       for d, g in res.temperatures_tried.items())
           + ")" if res.temperatures_tried else "") + ".", "",
        "| musical check on the test melodies | Bach's lower voices | VAE-RNN | difference "
        "(points) |", "|---|---|---|---|"]
    names = {"in_scale": "note duration in the melody's key scale",
             "consonance": "consonant intervals at melody onsets",
             "bars_covered": "bars with accompaniment", "downbeats": "downbeats sounded"}
    for k, label in names.items():
        b, m = res.musical["bach"].get(k, float("nan")), res.musical["model"].get(k, float("nan"))
        lines.append(f"| {label} | {100 * b:.1f}% | {100 * m:.1f}% | {100 * (m - b):+.1f} |")
    for k, label in (("notes_per_bar", "notes per bar (all accompaniment voices)"),
                     ("note_beats", "mean note length (beats)")):
        b, m = res.musical["bach"].get(k, float("nan")), res.musical["model"].get(k, float("nan"))
        lines.append(f"| {label} | {b:.2f} | {m:.2f} | {100 * (m / b - 1):+.0f}% |")
    lines += harmony_markdown(res)
    lat = res.latency
    lines += ["", f"Latency of one bar on CPU ({res.provider}, one thread): offline (melody "
              f"known) p50 {lat['offline_p50_ms']:.2f} ms, p99 {lat['offline_p99_ms']:.2f} ms; "
              f"live (melody predicted, replayed when observed) p50 {lat['live_p50_ms']:.2f} ms, "
              f"p99 {lat['live_p99_ms']:.2f} ms (1,000 bars; target p99 < 2 ms; machine load "
              f"average {lat.get('load_average', float('nan')):.1f} on {os.cpu_count()} cores "
              "while measuring, this evaluation included). `popmusicnet bench accompanist` "
              "measures the same alone, in several runs.",
              f"Evaluation took {res.seconds:.0f} s."]
    return "\n".join(lines)


# -- CLI (found by studio/cli/commands/eval.py) --------------------------------------------------
KIND = "accompanist"
HELP = ("accompanist on the test split: frame NLL vs two baselines, musical checks vs Bach, "
        "latency per bar")


def register(p) -> None:
    p.add_argument("--model", help="model name or card path (default: the bundled model)")
    p.add_argument("--data", default="corpus:bach", help="data the model was trained on")
    p.add_argument("--baseline-epochs", type=int, default=60,
                   help="max epochs of the LSTM baseline (early stopping on valid)")
    p.add_argument("--latency-bars", type=int, default=1000)
    p.add_argument("--temperature", type=float, default=None,
                   help="temperature of the generated accompaniment for the musical checks "
                        "(default: chosen on the valid split, closest to Bach's figures there)")
    p.add_argument("--key-prior", type=float, default=None,
                   help="key prior of the musical checks (default: chosen on the valid split "
                        "with the temperature)")
    p.add_argument("--onset-prior", type=float, default=None,
                   help="onset prior of the musical checks (default: chosen on the valid split)")
    p.add_argument("--tonal-prior", type=float, default=None,
                   help="tonal prior of the musical checks (default: chosen on the valid split)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--update-card", action="store_true",
                   help="store the measured metrics in the model card")
    p.add_argument("--no-report", action="store_true", help="do not touch docs/RESULTS.md")


def run_cli(args) -> int:
    import json
    import shlex
    import sys

    from engine.evaluation.report import update_section

    def progress(**kw):
        print(json.dumps({"event": "eval", **kw}), flush=True)

    res = evaluate(args.model, args.data, baseline_epochs=args.baseline_epochs,
                   latency_bars=args.latency_bars, temperature=args.temperature,
                   key_prior=args.key_prior, onset_prior=args.onset_prior,
                   tonal_prior=args.tonal_prior, seed=args.seed,
                   progress=progress)
    from engine.models.accompanist import Accompanist

    card = Accompanist.load(args.model, providers="cpu").card
    metrics = res.metrics()
    print(json.dumps({"event": "result", "model": card.name, **metrics}))
    command = "popmusicnet eval accompanist " + " ".join(shlex.quote(a) for a in sys.argv[3:])
    if not args.no_report:
        path = update_section("accompanist", report_markdown(res, card.name, command.strip()))
        print(f"wrote {path}")
    if args.update_card:
        card.metrics = {**metrics, "measured_by": command.strip()}
        if res.temperatures_tried:
            # the decoding chosen on the valid split becomes the model's default
            card.representation["default_temperature"] = res.temperature
            card.representation["default_key_prior"] = res.key_prior
            card.representation["default_onset_prior"] = res.onset_prior
            card.representation["default_tonal_prior"] = res.tonal_prior
        if res.tonal_profile:
            card.representation["tonal_profile"] = {
                mode: np.round(np.asarray(v), 5).tolist() for mode, v in res.tonal_profile.items()}
        card.write(card.path)
        print(f"updated {card.path}")
    return 0
