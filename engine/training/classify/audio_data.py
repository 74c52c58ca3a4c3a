"""Audio training data: corpus scores rendered through FluidSynth, as log-spectrogram windows.

Each piece's whole score (every part on its own channel: a recording of a chorale has all four
voices) is rendered for `seconds` seconds through the soundfont engine.synth's finder picks
(FluidR3_GM where installed; a card records the one its training used) with GM programs drawn
from `PROGRAMS` (one for the whole ensemble or one per part, at random; `WIDE_PROGRAMS` on
request), a tempo drawn from 80-140 BPM on the normalised beat
(so notation pulse does not leak), a random key, and a random starting point for training
renders. With `single_part` > 0 that share of the training renders is of one part alone (the
single-instrument case). The random choices of a render come from its own generator, seeded by
(seed, piece, render), so a held-out piece sounds the same whichever other pieces are rendered.
Rendering uses pyfluidsynth directly (~200x realtime); the features are
engine.audio_features.log_semitone, the runtime's own function.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from engine import audio_features as af
from engine.models.classifier import pitch_shift, time_factor
from engine.synth.fluid import import_fluidsynth
from engine.synth.soundfont import another_soundfont, find_soundfont
from engine.training.classify import corpus
from engine.training.classify.metrics import PieceSet
from engine.training.classify.cli import PROGRAM_CHOICE_NAMES
from engine.training.classify.texture import OOD_SETS, training_texture

log = logging.getLogger(__name__)

# piano, harpsichord, vibraphone, church organ, nylon guitar, violin, cello, strings, choir,
# trumpet, oboe, clarinet, flute, recorder
PROGRAMS = (0, 6, 11, 19, 24, 40, 42, 48, 52, 56, 68, 71, 73, 74)
#: Every melodic GM program (0-111: pianos to ethnic; percussive and sound effects left out):
#: `--programs wide` for training renders.
WIDE_PROGRAMS = tuple(range(112))
#: The melodic GM programs the default training renders never use: the "other GM programs"
#: test set.
OTHER_PROGRAMS = tuple(p for p in WIDE_PROGRAMS if p not in PROGRAMS)
PROGRAM_CHOICES = dict(zip(PROGRAM_CHOICE_NAMES, (PROGRAMS, WIDE_PROGRAMS)))
_CHANNELS = tuple(c for c in range(16) if c != 9)  # channel 10 is drums in GM
#: What a render holds: the whole score, or the top part alone (the secondary measurement).
RENDER_SCORE = "score"
RENDER_TOP_PART = "top part"
#: Test renders of the whole score with its timbre changed (no texture change): GM programs the
#: default training renders never use, or a soundfont other than the training one.
RENDER_OTHER_PROGRAMS = "other GM programs"
RENDER_OTHER_SOUNDFONT = "other soundfont"
TIMBRE_SETS = {
    RENDER_OTHER_PROGRAMS: "the whole score played by GM programs the default training renders "
                           f"never use ({len(OTHER_PROGRAMS)} melodic programs)",
    RENDER_OTHER_SOUNDFONT: "the whole score rendered with an installed soundfont other than "
                            "the training one",
}


class ScoreRenderer:
    """One FluidSynth instance rendering note lists offline (mono float32), one channel per
    part, with `soundfont` (default: the finder's) and any `extra` soundfonts loaded too."""

    def __init__(self, sample_rate: int = af.SAMPLE_RATE, soundfont: str | Path | None = None,
                 extra: Sequence[str | Path] = ()):
        fluidsynth = import_fluidsynth()
        self.sample_rate = sample_rate
        # gain 0.3: six voices at velocity 110 stay below int16 clipping
        self.synth = fluidsynth.Synth(samplerate=float(sample_rate), gain=0.3)
        self.soundfonts = [Path(soundfont) if soundfont else find_soundfont()]
        self.soundfonts += [Path(p) for p in extra]
        self.sfids = [self.synth.sfload(str(p)) for p in self.soundfonts]
        if min(self.sfids) < 0:
            raise RuntimeError("FluidSynth could not load the soundfont")
        self.sfid = self.sfids[0]

    def render(self, notes: Sequence[tuple[float, float, int, int, int]],
               programs: Sequence[int], seconds: float, font: int = 0) -> np.ndarray:
        """notes: (on_s, off_s, pitch, velocity, part); part k plays `programs[k]` of
        soundfont `font` (0: the main one, k: the k-th extra). Returns `seconds` of mono
        audio."""
        sr, synth = self.sample_rate, self.synth
        sfid = self.sfids[font]
        # silence whatever the last render left ringing (reverb tails) before this one
        for ch in _CHANNELS:
            synth.all_sounds_off(ch)
        synth.get_samples(sr // 2)
        synth.system_reset()
        for k, program in enumerate(programs):
            synth.program_select(_CHANNELS[k % len(_CHANNELS)], sfid, 0, int(program))
        events = []
        for on, off, pitch, vel, part in notes:
            if on >= seconds:
                continue
            ch = _CHANNELS[int(part) % len(_CHANNELS)]
            events.append((on, 1, ch, int(pitch), int(vel)))
            events.append((min(off, seconds), 0, ch, int(pitch), 0))
        events.sort()
        total = int(seconds * sr)
        chunks, pos = [], 0
        for t, kind, ch, pitch, vel in events:
            frame = min(int(t * sr), total)
            if frame > pos:
                chunks.append(np.asarray(synth.get_samples(frame - pos), dtype=np.int16))
                pos = frame
            if kind:
                synth.noteon(ch, pitch, vel)
            else:
                synth.noteoff(ch, pitch)
        if pos < total:
            chunks.append(np.asarray(synth.get_samples(total - pos), dtype=np.int16))
        for ch in _CHANNELS:
            synth.all_notes_off(ch)
        stereo = np.concatenate(chunks).reshape(-1, 2).astype(np.float32) / 32768.0
        return stereo.mean(axis=1)

    def close(self) -> None:
        self.synth.delete()


MelodyRenderer = ScoreRenderer  # the name of the one-melody version


def render_rng(seed: int, piece: corpus.Piece, render: int) -> np.random.Generator:
    """The random choices of one render of one piece (independent of the other pieces)."""
    h = hashlib.md5(f"{piece.label}|{piece.group}|{piece.source}|{len(piece.pitch)}".encode())
    return np.random.default_rng([seed, int(h.hexdigest()[:8], 16), render])


def score_events(piece: corpus.Piece, rng: np.random.Generator, seconds: float,
                 random_start: bool, part: int | None = None,
                 programs_from: Sequence[int] = PROGRAMS
                 ) -> tuple[list[tuple[float, float, int, int, int]], list[int]]:
    """Timed events of the whole score (or of one `part`) with normalised time, a random tempo
    and key, and the GM program of each part drawn from `programs_from`: ((on_s, off_s, pitch,
    velocity, part), programs)."""
    if part is None:
        s, e, p = piece.start, piece.end, piece.pitch
        parts = piece.part if piece.part is not None else np.zeros(len(p), np.int16)
    else:
        s, e, p = piece.part_notes(part)
        parts = np.zeros(len(p), np.int16)
    order = np.argsort(s, kind="stable")
    s, e, p, parts = s[order], e[order], p[order], parts[order]
    shift = pitch_shift(s, e, p) + int(rng.integers(-6, 6))
    factor = time_factor(s)
    bpm = float(rng.uniform(80, 140))
    sec = 60.0 / bpm * factor
    on, off = (s - s.min()) * sec, (e - s.min()) * sec
    if random_start and on[-1] > seconds:
        candidates = np.flatnonzero(on <= on[-1] - seconds)
        t0 = on[int(rng.choice(candidates))] if candidates.size else 0.0
        on, off = on - t0, off - t0
        keep = on >= 0
        on, off, p, parts = on[keep], off[keep], p[keep], parts[keep]
    n_parts = int(parts.max()) + 1 if parts.size else 1
    if rng.random() < 0.5:  # one instrument for the ensemble, or one per part
        programs = [int(rng.choice(programs_from))] * n_parts
    else:
        programs = [int(x) for x in rng.choice(programs_from, size=n_parts)]
    pitches = np.clip(p.astype(int) + shift, 24, 108)
    vel = rng.integers(70, 111, size=len(pitches))
    # each note is shortened by 3% of its own length (a small gap between repeated notes);
    # "score-v2" renders scaled the off *time* by 0.97, so a short note later than ~30 note
    # lengths into a render got its note-off before its note-on and rang on to the end
    off = on + (off - on) * 0.97
    events = list(zip(on.tolist(), off.tolist(), pitches.tolist(), vel.tolist(),
                      parts.astype(int).tolist()))
    return events, programs


def piece_windows(renderer: ScoreRenderer, piece: corpus.Piece, rng: np.random.Generator,
                  seconds: float, window_frames: int, hop_frames: int, random_start: bool,
                  part: int | None = None, max_seconds: float | None = None,
                  programs_from: Sequence[int] = PROGRAMS, font: int = 0) -> np.ndarray:
    """Windows of one render of `seconds` s; with `max_seconds` > `seconds` the render runs on
    to the end of the music (last note off + 1 s of release) but stops at `max_seconds`, and is
    never shorter than `seconds` (the first `seconds` are the same audio either way: the random
    choices do not depend on the length). Programs come from `programs_from`, sounds from the
    renderer's soundfont `font`."""
    events, programs = score_events(piece, rng, seconds, random_start, part, programs_from)
    if max_seconds is not None and max_seconds > seconds and events:
        end = max(off for _, off, _, _, _ in events) + 1.0
        seconds = float(min(max(seconds, end), max_seconds))
    audio = renderer.render(events, programs, seconds, font=font)
    spec = af.log_semitone(audio, renderer.sample_rate)
    return af.spectrogram_windows(spec, window_frames, hop_frames)


def audio_sets(pieces: Sequence[corpus.Piece], labels: Sequence[str], *, seconds: float = 15.0,
               window_frames: int = 108, hop_frames: int = 54, train_renders: int = 2,
               single_part: float = 0.0, eval_render: str = RENDER_SCORE, seed: int = 0,
               splits: Sequence[str] = ("train", "valid", "test"),
               renders_per_class: int = 0, max_renders: int = 12,
               eval_seconds: float | None = None, texture: float = 0.0,
               programs: Sequence[int] = PROGRAMS, other_soundfont: float = 0.0,
               soundfont: str | Path | None = None,
               cache_dir: Path | None = None) -> dict[str, PieceSet]:
    """Rendered log-spectrogram windows (uint8) per split, cached as npz under `cache_dir`.
    Training pieces get `train_renders` renders from random starting points (a `single_part`
    share of them of one random part alone), or, with `renders_per_class` > 0, as many as bring
    their class near that many renders (at most `max_renders` a piece): a small class is heard
    in more programs, tempi, keys and excerpts. With `texture` > 0 that share of the whole-score
    training renders is of the piece with its texture changed (texture.training_texture: a folk
    tune with chords and bass, a score reduced to its top line, top line + bass or some
    parts). Valid/test pieces get one render from the start, of `eval_render` (the score, the
    top part alone, or one of texture.OOD_SETS: the piece with its texture changed; its random
    choices stay the piece's own): `seconds` long, or with `eval_seconds` > `seconds` the whole piece up to `eval_seconds` (a recording is classified
    from all of it: more windows to average), or one of TIMBRE_SETS (the whole score with
    OTHER_PROGRAMS, or through a soundfont other than the training one: ValueError when only one
    is installed).

    Training renders draw their GM programs from `programs` (valid/test renders always from
    PROGRAMS, so that their figures compare across models), through `soundfont` (default: the
    finder's), or with `other_soundfont` > 0 that share of them through another installed
    soundfont."""
    if eval_seconds is not None and eval_seconds <= seconds:
        eval_seconds = None
    main_font = Path(soundfont) if soundfont else find_soundfont()
    other = None
    if (other_soundfont > 0 and "train" in splits) or eval_render == RENDER_OTHER_SOUNDFONT:
        other = another_soundfont(main_font)
        if other is None:
            raise ValueError(f"only one soundfont is installed ({main_font.name}): renders "
                             "through another one need a second (Debian: fluid-soundfont-gm "
                             "and timgm6mb-soundfont)")
    # what the renders depend on (the training options only when training pieces are rendered,
    # so that `popmusicnet eval classifiers` finds the test renders the training made)
    train_opts: tuple = (train_renders, single_part) if "train" in splits else ()
    if train_opts and renders_per_class > 0:
        train_opts += (renders_per_class, max_renders)
    if train_opts and texture > 0:
        train_opts += (("texture", texture),)
    if train_opts and tuple(programs) != PROGRAMS:
        train_opts += (("programs", tuple(int(p) for p in programs)),)
    if train_opts and other_soundfont > 0:
        train_opts += (("other_soundfont", other_soundfont, other.name if other else None),)
    key = hashlib.md5(repr((sorted((p.group, p.source, len(p.pitch)) for p in pieces),
                            tuple(labels), seconds, window_frames, hop_frames, train_opts,
                            eval_render, seed, tuple(splits), af.N_FFT, af.HOP,
                            "semitone", af.LOW_MIDI, af.N_BANDS, "score-v3")
                           + ((("eval_seconds", eval_seconds),) if eval_seconds else ())
                           + (("soundfont", main_font.name)
                              + ((other.name,) if eval_render == RENDER_OTHER_SOUNDFONT
                                 else ()),)
                           ).encode()
                      ).hexdigest()[:12]
    cache = cache_dir / f"audio_{key}.npz" if cache_dir else None
    if cache and cache.exists():
        return _load_sets(cache)
    index = {lab: i for i, lab in enumerate(labels)}
    where = corpus.assign_splits(list(pieces))
    renders = train_renders_per_class(pieces, where, labels, train_renders, renders_per_class,
                                      max_renders)
    renderer = ScoreRenderer(soundfont=main_font, extra=[other] if other else [])
    out: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in ("train", "valid", "test")}
    try:
        for piece, split in zip(pieces, where):
            if piece.label not in index or len(piece.pitch) < 8 or split not in splits:
                continue
            train = split == "train"
            ws_piece = []
            for r in range(renders[piece.label] if train else 1):
                rng = render_rng(seed, piece, r)
                if train:
                    part = (int(rng.choice(piece.parts()))
                            if len(piece.parts()) > 1 and rng.random() < single_part else None)
                else:
                    part = piece.top_part() if eval_render == RENDER_TOP_PART else None
                if part is not None and len(piece.part_notes(part)[0]) < 8:
                    part = None
                heard, font = piece, 0
                if not train and eval_render in OOD_SETS:  # the texture-changed test sets
                    heard = OOD_SETS[eval_render][1](piece)
                elif train and texture > 0 and part is None and rng.random() < texture:
                    heard = training_texture(piece, rng)
                if train:
                    if other_soundfont > 0 and rng.random() < other_soundfont:
                        font = 1
                    from_programs = programs
                else:
                    font = 1 if eval_render == RENDER_OTHER_SOUNDFONT else 0
                    from_programs = (OTHER_PROGRAMS if eval_render == RENDER_OTHER_PROGRAMS
                                     else PROGRAMS)
                ws_piece.append(piece_windows(renderer, heard, rng, seconds, window_frames,
                                              hop_frames, random_start=train, part=part,
                                              max_seconds=None if train else eval_seconds,
                                              programs_from=from_programs, font=font))
            ws, ys, ns = out[split]
            ws.append((np.concatenate(ws_piece) * 255).round().astype(np.uint8))
            ys.append(index[piece.label])
            ns.append(piece.group)
    finally:
        renderer.close()
    sets = {s: PieceSet(ws, np.array(ys, dtype=np.int64), ns) for s, (ws, ys, ns) in out.items()}
    if cache:
        _save_sets(sets, cache)
    return sets


def train_renders_per_class(pieces: Sequence[corpus.Piece], where: Sequence[str],
                            labels: Sequence[str], train_renders: int, renders_per_class: int,
                            max_renders: int) -> dict[str, int]:
    """Renders per training piece of each class: `train_renders`, or with `renders_per_class`
    > 0 ceil(renders_per_class / training pieces of the class), between `train_renders` and
    `max_renders`."""
    out = {lab: train_renders for lab in labels}
    if renders_per_class <= 0:
        return out
    counts = {lab: 0 for lab in labels}
    for piece, split in zip(pieces, where):
        if split == "train" and piece.label in counts and len(piece.pitch) >= 8:
            counts[piece.label] += 1
    for lab, n in counts.items():
        if n:
            want = -(-renders_per_class // n)
            out[lab] = int(min(max(train_renders, want), max(max_renders, train_renders)))
    return out


def _save_sets(sets: dict[str, PieceSet], path: Path) -> None:
    from engine.fileio import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for s, ps in sets.items():
        arrays[f"{s}_x"] = np.concatenate(ps.windows) if ps.windows else np.zeros((0,))
        arrays[f"{s}_n"] = np.array([len(w) for w in ps.windows], dtype=np.int64)
        arrays[f"{s}_y"] = ps.labels
        arrays[f"{s}_g"] = np.array(ps.names)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def _load_sets(path: Path) -> dict[str, PieceSet]:
    out = {}
    with np.load(path) as z:
        for s in ("train", "valid", "test"):
            x, n = z[f"{s}_x"], z[f"{s}_n"]
            bounds = np.concatenate([[0], np.cumsum(n)])
            out[s] = PieceSet([x[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
                              z[f"{s}_y"], [str(g) for g in z[f"{s}_g"]])
    return out
