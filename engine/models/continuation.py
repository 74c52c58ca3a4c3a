"""Continue a song bar after bar with the next-frame LSTM (numpy + ONNX Runtime; no torch).

The model reads the song's last bar (key-normalised [onset | active] frames, 4 a quarter note),
then writes new frames one at a time, each fed back as the next input. Bars follow the song's
meter map: 4 bars after a 3/4 tune are 48 frames (12 beats) starting on the bar line after its
last note; the lookback and the position input use the song's bar length (12 steps in 3/4, the
first 12 positions of the 16 the model was trained on).

Inputs (cards with `"lookback": true`, Magenta's Lookback RNN idea): beside the frame at step t
the model sees the frame one bar before the frame it predicts (step t + 1 - 16; zeros with a flag
of 0 where there is none) and that frame's position in the bar (one-hot of 16). Repetition is
the strongest regularity in this music; the network learns when to copy and when to deviate.
`model_inputs` builds these inputs for training and runtime alike.

Decoding: by default the one chosen on the validation split and stored in the card
(`representation.decoding`: an onset threshold, an active threshold, at most k onsets per step;
a note is held only where it sounded in the previous frame). With a temperature the frames are
sampled instead (seeded Bernoulli; temperature 0 = every cell with p > 0.5, and at least the
expected number of onsets a step). Every decoding forbids the degenerate continuation, one pitch
repeated throughout: a pitch may start in at most `MAX_REPEAT` onset steps in a row. Also the bar
metrics of the Rajaraman slides: their Hamming-like accuracy and note F1.
"""

from __future__ import annotations

import logging

import numpy as np

from engine.errors import ModelError, UserInputError
from engine.models.card import ModelCard
from engine.models.genroll import (GridSpec, features_to_notes, key_shift, song_planes,
                                   temper)
from engine.music import MeterChange, Song, Track, tick_to_step

log = logging.getLogger(__name__)

KIND = "continuation"


def n_model_inputs(n_features: int, bar_steps: int, lookback: bool) -> int:
    """Width of one input step: the frame, plus (lookback) the frame one bar before the target,
    the target's position in the bar (one-hot) and a has-lookback flag."""
    return n_features + (n_features + bar_steps + 1 if lookback else 0)


def model_inputs(frames: np.ndarray, steps, bar_steps: int, *, lookback: bool = True,
                 start: int = 0, pos_width: int | None = None) -> np.ndarray:
    """Inputs (B, len(steps), n_model_inputs) that predict frames[:, t + 1] for each t in
    `steps`, from frames (B, T, F) whose step 0 lies `start` steps after a bar line. Input t is
    [frame t | frame t + 1 - bar_steps (zeros before the first bar) | one-hot position of step
    t + 1 in the bar | 1 where that earlier frame exists]. `pos_width` (default `bar_steps`) is the
    width of the position one-hot: a model trained on 16-step bars reads a 12-step 3/4 bar with
    positions 0..11 of its 16."""
    frames = np.asarray(frames, np.float32)
    ts = np.asarray(steps, np.int64).reshape(-1)
    cur = frames[:, ts]
    if not lookback:
        return cur
    back = ts + 1 - bar_steps
    have = back >= 0
    prev = frames[:, np.clip(back, 0, None)] * have[None, :, None]
    width = pos_width or bar_steps
    pos = np.eye(width, dtype=np.float32)[((start + ts + 1) % bar_steps) % width]
    b = frames.shape[0]
    return np.concatenate([cur, prev, np.broadcast_to(pos, (b,) + pos.shape),
                           np.broadcast_to(have.astype(np.float32)[None, :, None],
                                           (b, len(ts), 1))], axis=2)


def threshold_frame(probs: np.ndarray, prev_active: np.ndarray, *, thr_onset: float,
                    thr_active: float, max_notes: int = 0, count_scale: float = 0.0,
                    fill_expected: bool = False) -> np.ndarray:
    """One decoded frame (B, 2P) from probabilities (B, 2P): onsets where p_onset > thr_onset,
    at most `max_notes` per step (the most likely; 0 = no limit) and, with `count_scale` > 0, at
    most round(count_scale * E), E = the sum of the step's onset probabilities (the expected
    number of onsets: one note where a melody expects one, four where a chorale expects four);
    with `fill_expected` at least the round(E) most likely onsets even below the threshold (an
    uncertain melody still gets its note). Held notes where p_active > thr_active and the pitch
    sounded in the previous frame (prev_active (B, P))."""
    p = probs.shape[1] // 2
    po, pa = probs[:, :p], probs[:, p:]
    onset = po > thr_onset
    if (max_notes and max_notes < p) or count_scale > 0 or fill_expected:
        order = np.argsort(-po, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(p)[None, :].repeat(len(po), 0), axis=1)
        expected = po.sum(axis=1, dtype=np.float64)
        if max_notes:
            onset &= rank < max_notes
        if count_scale > 0:
            onset &= rank < np.rint(count_scale * expected).astype(np.int64)[:, None]
        if fill_expected:
            onset |= rank < np.rint(expected).astype(np.int64)[:, None]
    active = onset | ((pa > thr_active) & (np.asarray(prev_active) > 0.5))
    return np.concatenate([onset, active], axis=1).astype(np.float32)


def parse_decoding(dec: dict | None) -> dict | None:
    """The `threshold_frame` keywords of a card's decoding entry (None stays None)."""
    if dec is None:
        return None
    return {"thr_onset": float(dec["thr_onset"]), "thr_active": float(dec["thr_active"]),
            "max_notes": int(dec.get("max_notes", 0)),
            "count_scale": float(dec.get("count_scale", 0.0)),
            "fill_expected": bool(dec.get("fill_expected", False))}


#: By default (a card without `max_repeat`) a pitch may sound in at most this many onset steps in a row (steps where some note starts)
#: before the decoder forbids it for the next one: without it the threshold decoding settles on
#: one pitch repeated for the whole continuation (with or without a second voice). Tunes repeat
#: a note 3 or 4 times.
MAX_REPEAT = 4


def forbid_repeats(probs: np.ndarray, runs: np.ndarray, max_repeat: int = MAX_REPEAT
                   ) -> np.ndarray:
    """A copy of probs (B, 2P) with the onset probability of every pitch set to 0 where its run
    (`runs` (B, P): onset steps in a row that started it) has reached `max_repeat` (0 = no
    limit)."""
    if not max_repeat:
        return probs
    full = runs >= max_repeat
    if not full.any():
        return probs
    out = probs.copy()
    out[:, :runs.shape[1]][full] = 0.0
    return out


def update_runs(frame: np.ndarray, runs: np.ndarray) -> None:
    """After a decoded frame (B, 2P): each pitch's run of onset steps in a row (in place); a
    step without onsets leaves the runs as they are (a rest does not break a repetition)."""
    p = runs.shape[1]
    onsets = np.asarray(frame)[:, :p] > 0.5
    step = onsets.any(axis=1)
    runs[step] = np.where(onsets[step], runs[step] + 1, 0)


class Continuer:
    def __init__(self, card: ModelCard, *, providers: str = "auto") -> None:
        self.card = card
        self.name = card.name
        rep = card.representation
        try:
            self.spec = GridSpec.from_dict(rep["grid"])
            self.layers, self.hidden = int(rep["layers"]), int(rep["hidden"])
            self.context_bars = int(rep.get("context_bars", 1))
            self.lookback = bool(rep.get("lookback", False))
            self.decoding = parse_decoding(rep.get("decoding"))
            self.max_repeat = int(rep.get("max_repeat", MAX_REPEAT))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{card.path}: continuation card lacks a usable representation "
                             f"({exc})") from None
        self.step = card.open("step", providers=providers)
        self.provider = self.step.provider
        self.n_features = 2 * self.spec.n_pitches
        self.n_inputs = n_model_inputs(self.n_features, self.spec.bar_steps, self.lookback)

    @classmethod
    def load(cls, name: str | None = None, *, providers: str = "auto") -> Continuer:
        from engine.models.runtime import load_card

        return cls(load_card(name, kind=KIND), providers=providers)

    def decoding_text(self, decoding: dict | None = None) -> str:
        """A decoding (default: the card's) in words."""
        d = decoding or self.decoding
        if d is None:
            return "sampled at temperature 1"
        cap = f", at most {d['max_notes']} onsets a step" if d["max_notes"] else ""
        if d["count_scale"]:
            cap += f", at most {d['count_scale']:g} x the expected number of onsets"
        if d["fill_expected"]:
            cap += ", at least the expected number"
        return f"onset p > {d['thr_onset']:g}, held p > {d['thr_active']:g}{cap}"

    def _run(self, frames: np.ndarray, t: int, h: np.ndarray, c: np.ndarray,
             bar_steps: int | None = None, start: int = 0):
        x = model_inputs(frames, [t], bar_steps or self.spec.bar_steps, lookback=self.lookback,
                         start=start, pos_width=self.spec.bar_steps)[:, 0]
        r = self.step.run({"x": x, "h": h, "c": c})
        return r["probs"], r["h_out"], r["c_out"]

    def read_context(self, context: np.ndarray, n_steps: int, *, bar_steps: int | None = None,
                     start: int = 0):
        """Run the model over `context` (B, T, F), its step 0 `start` steps after a bar line of
        `bar_steps`-step bars (default the grid's): (frames buffer (B, T + n_steps, F) with the
        context in front, probabilities of frame T, h, c, bar_steps, start)."""
        context = np.asarray(context, np.float32)
        b, n_ctx = context.shape[0], context.shape[1]
        if n_ctx == 0:
            raise UserInputError("nothing to continue: the context is empty")
        bar_steps = bar_steps or self.spec.bar_steps
        frames = np.zeros((b, n_ctx + n_steps, self.n_features), np.float32)
        frames[:, :n_ctx] = context
        h = np.zeros((self.layers, b, self.hidden), np.float32)
        c = np.zeros_like(h)
        probs = None
        for t in range(n_ctx):
            probs, h, c = self._run(frames, t, h, c, bar_steps, start)
        return frames, probs, h, c, bar_steps, start

    def generate_from(self, state, n_ctx: int, *, seed: int = 0,
                      temperature: float | None = None, decoding: dict | None = None,
                      max_repeat: int | None = None) -> np.ndarray:
        """Free-running frames after a `read_context` state: (B, n_steps, F) in {0, 1}.
        `temperature` None = the threshold `decoding` (default: the card's); 0 = every onset
        more likely than not, and at least the expected number of onsets a step. A pitch may
        sound in at most `max_repeat` onset steps in a row (0 = no limit; default: the card's
        `max_repeat`, chosen on the validation windows, else `MAX_REPEAT`)."""
        frames, probs, h, c = state[:4]
        max_repeat = self.max_repeat if max_repeat is None else max_repeat
        bar_steps, start = (state[4], state[5]) if len(state) > 4 else (None, 0)
        frames = frames.copy()
        p = self.spec.n_pitches
        if temperature is None:
            decoding = decoding or self.decoding
        elif temperature <= 0.0:
            decoding = {"thr_onset": 0.5, "thr_active": 0.5, "max_notes": 0,
                        "count_scale": 0.0, "fill_expected": True}
        rng = np.random.default_rng(seed)
        b = frames.shape[0]
        runs = np.zeros((b, p), np.int64)
        for t in range(n_ctx, frames.shape[1]):
            probs = forbid_repeats(probs, runs, max_repeat)
            if decoding is not None and (temperature is None or temperature <= 0.0):
                x = threshold_frame(probs, frames[:, t - 1, p:], **decoding)
            else:
                pr = temper(probs, 1.0 if temperature is None else temperature)
                x = (rng.random(pr.shape, dtype=np.float32) < pr).astype(np.float32)
                x[:, p:] = np.maximum(x[:, p:], x[:, :p])
            frames[:, t] = x
            update_runs(x, runs)
            if t + 1 < frames.shape[1]:
                probs, h, c = self._run(frames, t, h, c, bar_steps, start)
        return frames[:, n_ctx:]

    def continue_features(self, context: np.ndarray, n_steps: int, *, seed: int = 0,
                          temperature: float | None = None, bar_steps: int | None = None,
                          start: int = 0) -> np.ndarray:
        """context (B, T, F) frames, step 0 `start` steps after a bar line -> (B, n_steps, F) new
        frames in {0, 1}. `temperature` None: the card's decoding (sampled at 1 for a card
        without one)."""
        context = np.asarray(context, np.float32)
        state = self.read_context(context, n_steps, bar_steps=bar_steps, start=start)
        return self.generate_from(state, context.shape[1], seed=seed, temperature=temperature)

    def continue_song(self, song: Song, n_bars: int, *, seed: int = 0,
                      temperature: float | None = None, program: int | None = None,
                      meter: tuple[int, int] | None = None) -> Song:
        """A copy of `song` with one new track holding `n_bars` bars after the bar that holds its
        last note, continuing its last `context_bars` bars (in the song's key). Bars follow the
        song's meter map (a pickup is a short first bar) or `meter` (numerator, denominator),
        which is then written at the continuation's first bar."""
        if not 1 <= n_bars <= 64:
            raise UserInputError(f"--bars must be in range 1..64, got {n_bars}")
        notes_in = [n for t in song.tracks if not t.is_drum for n in t.notes]
        if not notes_in:
            raise UserInputError(f"{song.title or 'the song'} has no notes to continue")
        tpb, spb = song.ticks_per_beat, self.spec.steps_per_beat
        last_end = max(n.end for n in notes_in)
        bars = song.bars(max(last_end, 1))
        # the bar holding the last note (a note ending on a bar line ends in the bar before)
        while len(bars) > 1 and bars[-1][0] >= last_end:
            bars.pop()
        end_tick = bars[-1][1]
        if meter is None:
            m = song.meter_at(end_tick)
        else:
            try:
                m = MeterChange(end_tick, int(meter[0]), int(meter[1]))
            except (TypeError, ValueError, IndexError) as exc:
                raise UserInputError(f"bad meter {meter!r}: {exc}") from None
        bar_steps = tick_to_step(m.bar_ticks(tpb), tpb, spb)
        if bar_steps < 1:
            raise UserInputError(f"meter {m} is too short for the model's grid")
        ctx_start = bars[max(0, len(bars) - self.context_bars)][0]
        shift = key_shift(song)
        onset, active, _ = song_planes(song, self.spec, shift)
        a, z = tick_to_step(ctx_start, tpb, spb), tick_to_step(end_tick, tpb, spb)
        feats = np.concatenate([onset, active], axis=1).astype(np.float32)
        if len(feats) < z:
            feats = np.pad(feats, ((0, z - len(feats)), (0, 0)))
        ctx = feats[a:z]
        new = self.continue_features(ctx[None], n_bars * bar_steps, seed=seed,
                                     temperature=temperature, bar_steps=bar_steps,
                                     start=(-len(ctx)) % bar_steps)[0]
        notes = features_to_notes(new, self.spec, tpb, start_tick=end_tick, shift=shift)
        out = song.copy()
        if meter is not None and (m.numerator, m.denominator) != (
                song.meter_at(end_tick).numerator, song.meter_at(end_tick).denominator):
            out.meters = [x for x in out.meters if x.tick < end_tick] + [m]
            out.normalise_maps()
        src = out.melody_track()
        prog = program if program is not None else (src.program if src else 0)
        out.tracks.append(Track(name="continuation", program=prog, notes=notes))
        return out


def hamming_accuracy(pred: np.ndarray, true: np.ndarray, n_keys: int = 128) -> float:
    """Rajaraman's metric, mean over frames of (1/N) sum_i |y_i| - |y_i - round(p_i)| with N = 128
    MIDI keys: +1/N per correct note, -1/N per false note, 0 for silence (active planes)."""
    y = np.asarray(true, np.float64).reshape(-1, np.shape(true)[-1])
    r = np.round(np.asarray(pred, np.float64)).reshape(y.shape)
    return float(np.mean(np.sum(np.abs(y) - np.abs(y - r), axis=1) / n_keys))
