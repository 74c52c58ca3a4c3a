"""Style classification of a score or a track (MIDI) or a recording (WAV): numpy + ONNX
Runtime only.

Both kinds of model see fixed-size windows and the piece-level answer is the mean of the
windows' class probabilities (as the PopMusicNet/Lil Data reports classify snippets).

What a MIDI model reads is its card's `representation["view"]`:
- "score" (the bundled models): the pianoroll of every pitched track merged, so texture (how
  many voices, how they spread) is part of what is classified, as the PopMusicNet report
  classified multi-track pianorolls. `classify_song` reads the whole song; `classify_track`
  reads one track's own pianoroll (the single-track path; these models were trained with
  single-part windows too), and a constant "one track" input plane tells the model which of
  the two it is looking at.
- "top voice" (older models; the default when a card does not say): one line, the skyline
  (highest note at each onset, cut at the next onset).
Either way the notes are normalised so that only the music is left to classify:
- transposed to C major / A minor (Krumhansl-Schmuckler estimate) and by octaves so the median
  pitch lies in C4..B4, folded into the model's pitch window,
- time rescaled by a power of two so the median inter-onset interval is about one "beat": a
  Palestrina mass in half-note pulse and a jig in eighths then look alike on the grid, so notation
  habits cannot give the label away.
Training (engine/training/classify) uses these same functions.

A card may carry `representation["unsure_below"]`, a top-class probability chosen on validation
pieces (engine.training.classify.metrics.choose_unsure_threshold): `judge_file` then answers
"unsure" instead of a style when the top class is below it, and says what it judged (the whole
file and how many tracks, one track, or a recording).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from engine.errors import ModelError, UserInputError
from engine.music import Note, Song, Track, estimate_key

log = logging.getLogger(__name__)

KIND_MIDI = "classifier-midi"
KIND_AUDIO = "classifier-audio"
DEFAULT_MIDI_MODEL = "classifier-midi-cnn"
DEFAULT_AUDIO_MODEL = "classifier-audio-cnn"
#: What a MIDI model reads (card representation "view"): all tracks merged, or one line.
VIEW_SCORE = "score"
VIEW_TOP = "top voice"
VIEWS = (VIEW_SCORE, VIEW_TOP)


class TooShortError(UserInputError):
    """Input with too little music to classify."""


@dataclass(frozen=True)
class MelodySpec:
    """How notes (a melody or a whole score) become windows; stored in the model card's
    representation (the name is historical: the first models read only melodies)."""

    steps_per_beat: int = 2  # after time normalisation a "beat" is ~the median note
    window_steps: int = 64  # 32 beats: ~8 bars of 4/4 at one note per beat
    hop_steps: int = 32
    low_pitch: int = 36
    n_pitches: int = 48
    min_notes: int = 8
    # 2: onset, active. 3: plus a constant "one track" plane, 1 when a single track is
    # classified and 0 for a whole score, so that one voice of a chorale is not read as a folk
    # tune just because it sounds alone
    n_planes: int = 2

    @classmethod
    def from_dict(cls, d: dict) -> MelodySpec:
        return cls(**{k: int(d[k]) for k in cls.__dataclass_fields__ if k in d})

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# -- melody features ---------------------------------------------------------------------------
def top_voice(start: np.ndarray, end: np.ndarray, pitch: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skyline: at each onset keep the highest note, and end it no later than the next onset."""
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    pitch = np.asarray(pitch, dtype=np.int16)
    if start.size == 0:
        return start, end, pitch
    order = np.lexsort((-pitch, start))
    s, e, p = start[order], end[order], pitch[order]
    first = np.concatenate([[True], s[1:] > s[:-1] + 1e-9])
    s, e, p = s[first], e[first], p[first]
    e = np.minimum(e, np.concatenate([s[1:], [np.inf]]))
    keep = e > s + 1e-9
    return s[keep], e[keep], p[keep]


def time_factor(start: np.ndarray) -> float:
    """Power of two (1/4..4) that brings the median inter-onset interval near one beat."""
    onsets = np.unique(np.round(np.asarray(start, dtype=np.float64), 6))
    ioi = np.diff(onsets)
    ioi = ioi[ioi > 1e-6]
    if ioi.size == 0:
        return 1.0
    k = int(np.clip(np.round(-np.log2(np.median(ioi))), -2, 2))
    return float(2.0 ** k)


def pitch_shift(start: np.ndarray, end: np.ndarray, pitch: np.ndarray) -> int:
    """Semitones that move the estimated key to C major / A minor and the median pitch into
    60..71."""
    notes = [Note(int(round(s * 480)), max(int(round(e * 480)), int(round(s * 480)) + 1), int(p))
             for s, e, p in zip(start, end, pitch)]
    key = estimate_key(notes)
    shift = key.normalising_shift() if key is not None else 0
    med = float(np.median(np.asarray(pitch) + shift))
    return shift - 12 * int(np.floor((med - 60) / 12))


def note_roll(start: np.ndarray, end: np.ndarray, pitch: np.ndarray,
              spec: MelodySpec = MelodySpec(), shift: int | None = None,
              factor: float | None = None) -> np.ndarray:
    """(2, steps, n_pitches) float32 onset/active planes of normalised notes (a line or a whole
    score: notes sounding together set several pitches of a step)."""
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    pitch = np.asarray(pitch, dtype=np.int64)
    if shift is None:
        shift = pitch_shift(start, end, pitch)
    if factor is None:
        factor = time_factor(start)
    t0 = start.min()
    s = np.round((start - t0) * factor * spec.steps_per_beat).astype(np.int64)
    e = np.maximum(np.round((end - t0) * factor * spec.steps_per_beat).astype(np.int64), s + 1)
    rel = (pitch + shift - spec.low_pitch) % 12 + 12 * np.clip(
        (pitch + shift - spec.low_pitch) // 12, 0, spec.n_pitches // 12 - 1)
    n_steps = int(e.max()) if e.size else 1
    roll = np.zeros((2, n_steps, spec.n_pitches), dtype=np.float32)
    for a, b, r in zip(s, e, rel):
        roll[0, a, r] = 1.0
        roll[1, a:b, r] = 1.0
    return roll


melody_roll = note_roll  # the same planes; the name the first (melody-only) models used


def roll_windows(roll: np.ndarray, spec: MelodySpec = MelodySpec(),
                 hop: int | None = None) -> np.ndarray:
    """(n, 2, window_steps, n_pitches): windows at `hop`; a short roll is zero-padded to one
    window, and a tail longer than half a hop gets a window ending at the last step."""
    hop = hop or spec.hop_steps
    w = spec.window_steps
    t = roll.shape[1]
    if t < w:
        roll = np.pad(roll, ((0, 0), (0, w - t), (0, 0)))
        t = w
    starts = list(range(0, t - w + 1, hop))
    if (t - w) % hop > hop // 2:
        starts.append(t - w)
    return np.stack([roll[:, a:a + w] for a in starts]).astype(np.float32)


def melody_windows(start, end, pitch, spec: MelodySpec = MelodySpec(),
                   hop: int | None = None, what: str = "the melody") -> np.ndarray:
    """Top voice -> normalised roll -> windows. Raises TooShortError below `spec.min_notes`."""
    s, e, p = top_voice(start, end, pitch)
    if s.size < spec.min_notes:
        raise TooShortError(f"{what} is too short to classify: {s.size} notes in its top voice, "
                            f"need at least {spec.min_notes}")
    return roll_windows(note_roll(s, e, p, spec), spec, hop)


def score_windows(start, end, pitch, spec: MelodySpec = MelodySpec(),
                  hop: int | None = None, what: str = "the score") -> np.ndarray:
    """All notes (every voice) -> normalised roll -> windows. Raises TooShortError below
    `spec.min_notes` notes."""
    start = np.asarray(start, dtype=np.float64)
    if start.size < spec.min_notes:
        raise TooShortError(f"{what} is too short to classify: {start.size} notes, "
                            f"need at least {spec.min_notes}")
    return roll_windows(note_roll(start, end, pitch, spec), spec, hop)


def with_track_plane(windows: np.ndarray, spec: MelodySpec, one_track: bool) -> np.ndarray:
    """Add the constant "one track" plane when the spec has one (`n_planes` 3)."""
    if spec.n_planes == 2:
        return windows
    if spec.n_planes != 3:
        raise ValueError(f"n_planes must be 2 or 3, got {spec.n_planes}")
    flag = np.full(windows[:, :1].shape, 1.0 if one_track else 0.0, dtype=windows.dtype)
    return np.concatenate([windows, flag], axis=1)


def view_windows(view: str, start, end, pitch, spec: MelodySpec = MelodySpec(),
                 hop: int | None = None, what: str = "the score",
                 one_track: bool = False) -> np.ndarray:
    """Windows as a model of `view` ("score" or "top voice") reads them; `one_track` says the
    notes are one track of a file rather than the whole of it."""
    if view == VIEW_SCORE:
        w = score_windows(start, end, pitch, spec, hop, what)
    elif view == VIEW_TOP:
        w = melody_windows(start, end, pitch, spec, hop, what)
    else:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    return with_track_plane(w, spec, one_track)


def track_arrays(track: Track, ticks_per_beat: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A track's notes as (start, end, pitch) arrays in quarter notes."""
    notes = sorted(track.notes)
    return (np.array([n.start for n in notes], dtype=np.float64) / ticks_per_beat,
            np.array([n.end for n in notes], dtype=np.float64) / ticks_per_beat,
            np.array([n.pitch for n in notes], dtype=np.int16))


def song_arrays(song: Song) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pitched (non-drum) track's notes merged, as (start, end, pitch) in quarter notes,
    sorted by start."""
    notes = sorted(n for t in song.tracks if not t.is_drum for n in t.notes)
    tpb = song.ticks_per_beat
    return (np.array([n.start for n in notes], dtype=np.float64) / tpb,
            np.array([n.end for n in notes], dtype=np.float64) / tpb,
            np.array([n.pitch for n in notes], dtype=np.int16))


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    ez = np.exp(z)
    return ez / ez.sum(axis=-1, keepdims=True)


def average_windows(window_probs: np.ndarray) -> np.ndarray:
    """Piece-level probabilities: the mean of the windows' probabilities (rows sum to 1)."""
    window_probs = np.asarray(window_probs, dtype=np.float64)
    if window_probs.ndim != 2 or window_probs.shape[0] == 0:
        raise ValueError("expected (n_windows >= 1, n_classes) probabilities")
    mean = window_probs.mean(axis=0)
    return mean / mean.sum()


def ranked(labels: Sequence[str], probs: np.ndarray) -> list[tuple[str, float]]:
    order = np.argsort(-probs, kind="stable")
    return [(labels[i], float(probs[i])) for i in order]


# -- runtime -----------------------------------------------------------------------------------
class StyleClassifier:
    """One classifier model (MIDI or audio) described by its card."""

    def __init__(self, card, *, providers: str = "auto", threads: int = 1) -> None:
        self.card = card
        self.name = card.name
        self.kind = card.kind
        rep = card.representation
        try:
            self.labels: tuple[str, ...] = tuple(rep["labels"])
            self.spec = MelodySpec.from_dict(rep) if self.kind == KIND_MIDI else None
            self.view = str(rep.get("view", VIEW_TOP))
            self.batch = max(int(rep.get("batch", 32)), 1)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise ModelError(f"{card.path}: classifier card lacks a usable representation "
                             f"({type(exc).__name__}: {exc})") from None
        self.model = card.open("classifier", providers=providers, threads=threads)
        self.provider = self.model.provider
        self.input_name = next(iter(self.model.inputs))
        if self.kind == KIND_MIDI and self.view not in VIEWS:
            raise UserInputError(f"model {self.name!r} reads {self.view!r}; this program knows "
                                 f"{' and '.join(VIEWS)}")

    @classmethod
    def load(cls, name: str | None = None, *, kind: str = KIND_MIDI,
             providers: str = "auto") -> StyleClassifier:
        from engine.models.runtime import load_card

        if name is None:
            name = DEFAULT_MIDI_MODEL if kind == KIND_MIDI else DEFAULT_AUDIO_MODEL
            try:
                card = load_card(name, kind=kind)
            except UserInputError:
                card = load_card(None, kind=kind)  # any installed model of that kind
        else:
            card = load_card(name)
            if card.kind not in (KIND_MIDI, KIND_AUDIO):
                raise UserInputError(f"model {card.name!r} is a {card.kind}, not a classifier")
        return cls(card, providers=providers)

    def window_probabilities(self, windows: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(windows), self.batch):
            logits = self.model.run({self.input_name: windows[i:i + self.batch]})
            out.append(softmax(next(iter(logits.values())).astype(np.float64)))
        return np.concatenate(out)

    def classify_windows(self, windows: np.ndarray) -> list[tuple[str, float]]:
        return ranked(self.labels, average_windows(self.window_probabilities(windows)))

    # MIDI
    def classify_notes(self, start, end, pitch, what: str = "the melody",
                       one_track: bool = True) -> list[tuple[str, float]]:
        """Classify notes as this model reads them (its view: all of them, or the top voice);
        `one_track`: the notes are one track (a melody), not a whole score."""
        self._need(KIND_MIDI)
        return self.classify_windows(view_windows(self.view, start, end, pitch, self.spec,
                                                  what=what, one_track=one_track))

    def classify_song(self, song: Song) -> list[tuple[str, float]]:
        """Classify the whole song: every pitched track merged into one pianoroll."""
        self._need(KIND_MIDI)
        start, end, pitch = song_arrays(song)
        if start.size == 0:
            raise TooShortError("the song has no notes to classify")
        return self.classify_notes(start, end, pitch, what="the song", one_track=False)

    def classify_track(self, song: Song, track: int | None = None) -> list[tuple[str, float]]:
        """Classify one track (by index), or by default the melody track, from that track's own
        pianoroll (its top voice for a "top voice" model)."""
        if track is None:
            t = song.melody_track()
            if t is None:
                raise TooShortError("the song has no notes to classify")
            what = f"track {song.tracks.index(t) + 1}" + (f" ({t.name})" if t.name else "")
        else:
            # messages number tracks from 1, as `popmusicnet info` and the CLI do
            n = len(song.tracks)
            if not 0 <= track < n:
                raise UserInputError(f"track {track + 1} does not exist: the song has {n} "
                                     f"track{'s' if n != 1 else ''} (1..{n})")
            t = song.tracks[track]
            if t.is_drum:
                raise UserInputError(f"track {track + 1} is a drum track; pick a pitched track")
            what = f"track {track + 1}" + (f" ({t.name})" if t.name else "")
        return self.classify_notes(*track_arrays(t, song.ticks_per_beat), what=what)

    # audio
    def classify_audio(self, samples: np.ndarray, sample_rate: int,
                       what: str = "the recording") -> list[tuple[str, float]]:
        from engine import audio_features as af

        self._need(KIND_AUDIO)
        rep = self.card.representation
        sr = int(rep["sample_rate"])
        samples = np.asarray(samples, dtype=np.float32)
        if not np.isfinite(samples).all():
            raise UserInputError(f"{what} contains NaN or infinite samples")
        x = af.resample(samples, sample_rate, sr)
        min_s = float(rep.get("min_seconds", 2.0))
        if x.size < min_s * sr or float(np.max(np.abs(x), initial=0.0)) < 1e-4:
            raise TooShortError(f"{what} is too short or silent to classify "
                                f"({x.size / sr:.1f} s; need at least {min_s:g} s of sound)")
        if rep.get("bands") == "semitone":
            spec = af.log_semitone(x, sr, int(rep["n_fft"]), int(rep["hop"]),
                                   int(rep["low_midi"]), int(rep["n_bands"]))
        else:
            spec = af.log_mel(x, sr, int(rep["n_fft"]), int(rep["hop"]), int(rep["n_mels"]))
        windows = af.spectrogram_windows(spec, int(rep["window_frames"]),
                                         int(rep["window_hop_frames"]))
        return self.classify_windows(windows)

    def classify_wav(self, path: str | Path) -> list[tuple[str, float]]:
        from engine import audio_features as af

        self._need(KIND_AUDIO)
        sr = int(self.card.representation["sample_rate"])
        return self.classify_audio(af.load_audio(path, sr), sr, what=str(path))

    @property
    def unsure_below(self) -> float | None:
        """The card's "unsure" threshold on the top class's probability (None: always name a
        style)."""
        v = self.card.representation.get("unsure_below")
        return float(v) if isinstance(v, (int, float)) and 0 < v < 1 else None

    def _need(self, kind: str) -> None:
        if self.kind != kind:
            want = "MIDI" if kind == KIND_MIDI else "audio"
            raise UserInputError(f"model {self.name!r} is a {self.kind} model; it cannot "
                                 f"classify {want} input")


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")
UNSURE = "unsure"


@dataclass(frozen=True)
class Judgement:
    """What a classifier judged and what it concluded."""

    model: str
    provider: str
    input: str  # "the whole file", "track N" or "the recording"
    judged: str  # the same with what it held, e.g. "the whole file: 3 tracks merged"
    ranked: list[tuple[str, float]]
    unsure_below: float | None = None

    @property
    def unsure(self) -> bool:
        return self.unsure_below is not None and self.ranked[0][1] < self.unsure_below

    @property
    def verdict(self) -> str:
        """The top style, or "unsure" when its probability is below the model's threshold."""
        return UNSURE if self.unsure else self.ranked[0][0]


def _track_names(song: Song) -> list[str]:
    return [t.name or f"track {i + 1}" for i, t in enumerate(song.tracks)
            if not t.is_drum and t.notes]


def judge_song(clf: StyleClassifier, song: Song, track: int | None = None) -> Judgement:
    """Classify a song whole (every pitched track merged) or one track (0-based index) and say
    which."""
    if track is None:
        ranked = clf.classify_song(song)
        names = _track_names(song)
        judged = (f"the whole file: {len(names)} pitched track"
                  + (f"s merged ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})"
                     if len(names) != 1 else f" ({names[0]})"))
        what = "the whole file"
    else:
        ranked = clf.classify_track(song, track)
        t = song.tracks[track]
        what = f"track {track + 1}"
        judged = what + (f" ({t.name})" if t.name else "") + " alone"
    return Judgement(clf.name, clf.provider, what, judged, ranked, clf.unsure_below)


def judge_file(path: str | Path, *, track: int | None = None, model: str | None = None,
               providers: str = "cpu") -> Judgement:
    """`classify_file` with what was judged and the verdict ("unsure" below the card's
    threshold)."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file")
    is_audio = path.suffix.lower() in AUDIO_SUFFIXES
    clf = StyleClassifier.load(model, kind=KIND_AUDIO if is_audio else KIND_MIDI,
                               providers=providers)
    if is_audio:
        if track is not None:
            raise UserInputError("--track applies to MIDI files, not to audio")
        ranked = clf.classify_wav(path)
        return Judgement(clf.name, clf.provider, "the recording", "the recording", ranked,
                         clf.unsure_below)
    from engine.midi_io import read_midi

    return judge_song(clf, read_midi(path, lenient=True), track)


def classify_file(path: str | Path, *, track: int | None = None, model: str | None = None,
                  providers: str = "cpu") -> tuple[StyleClassifier, list[tuple[str, float]]]:
    """Classify a MIDI or audio file by its suffix; returns the model used and ranked labels.
    A MIDI file is read whole (every pitched track merged) unless `track` (a 0-based index)
    picks one track. CPU by default: these models are small enough that a GPU's transfers cost
    more than they save."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file")
    is_audio = path.suffix.lower() in AUDIO_SUFFIXES
    clf = StyleClassifier.load(model, kind=KIND_AUDIO if is_audio else KIND_MIDI,
                               providers=providers)
    if is_audio:
        if track is not None:
            raise UserInputError("--track applies to MIDI files, not to audio")
        return clf, clf.classify_wav(path)
    from engine.midi_io import read_midi

    song = read_midi(path, lenient=True)
    if track is None:
        return clf, clf.classify_song(song)
    return clf, clf.classify_track(song, track)
