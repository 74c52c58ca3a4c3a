"""The one place the studio talks to the engine (Frescobaldi's `midihub`: "interact with this
module, not with the engine directly").

Every engine capability is imported lazily, on first use, so the window opens without ONNX
Runtime, the synth or torch. `capability(name)` says whether a feature can work here and, if
not, why in words a user understands; panels show that reason and stay disabled. Nothing here
pretends: a missing module or model is reported, never replaced by a fake.

Functions here may block (model loading, inference, rendering): panels call them from
`workers.run_in_thread`, never on the GUI thread, except the cheap ones marked "fast".
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.music import Song

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Capability:
    available: bool
    reason: str = ""  # why not, when not available

    def __bool__(self) -> bool:
        return self.available


# feature -> (module, what it needs, the model kind whose card must exist or None)
_FEATURES: dict[str, tuple[str, str, str | None]] = {
    "midi": ("engine.midi_io", "MIDI file support", None),
    "player": ("engine.realtime", "the realtime engine (playback)", None),
    "live": ("engine.realtime", "the realtime engine (live accompaniment)", "accompanist"),
    "accompany": ("engine.models.accompanist", "the accompanist runtime", "accompanist"),
    "morph": ("engine.models.morph", "the morph runtime", "morph"),
    "generate": ("engine.models.gan", "the bar generator runtime", "gan"),
    "continue": ("engine.models.continuation", "the continuation runtime", "continuation"),
    "classify": ("engine.models.classifier", "the classifier runtime", "classifier-midi"),
    "classify_audio": ("engine.models.classifier", "the audio classifier runtime",
                       "classifier-audio"),
    "train": ("engine.training.common", "the training extras (pip install '.[train]')", None),
    "wav": ("export.audio", "WAV export", None),
    "stems": ("export.stems", "stem export", None),
}


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def capability(feature: str) -> Capability:
    """Fast: checks that the module is installed and a model of the needed kind exists."""
    module, what, kind = _FEATURES[feature]
    if not _module_exists(module):
        return Capability(False, f"{what} is not installed ({module} missing)")
    if kind is not None and not model_names(kind):
        return Capability(False, f"no {kind} model found (train one, or check assets/models)")
    return Capability(True)


def _import(module: str) -> Any:
    return importlib.import_module(module)


# -- models -----------------------------------------------------------------------------------
def model_names(kind: str) -> list[str]:
    """Fast: names of the model cards of one kind (user models first)."""
    if not _module_exists("engine.models.runtime"):
        return []
    runtime = _import("engine.models.runtime")
    return [c.name for c in runtime.list_cards(kind)]


# -- MIDI files -------------------------------------------------------------------------------
def read_midi(path: str | Path, *, lenient: bool = True) -> Song:
    return _import("engine.midi_io").read_midi(path, lenient=lenient)


def write_midi(song: Song, path: str | Path) -> Path:
    return _import("engine.midi_io").write_midi(song, path)


def midi_bytes(song: Song) -> bytes:
    """The song as a Standard MIDI File in memory (for the project file)."""
    with tempfile.TemporaryDirectory(prefix="popmusicnet-") as tmp:
        path = Path(tmp) / "song.mid"
        write_midi(song, path)
        return path.read_bytes()


def song_from_midi_bytes(data: bytes, name: str | Path = "<memory>") -> Song:
    """Decode MIDI data held in memory; errors name `name` (the project it came from)."""
    return _import("engine.midi_io").read_midi_bytes(data, name, lenient=True)


# -- playback ---------------------------------------------------------------------------------
def open_player(backend: str = "auto", soundfont: str | None = None, period: int = 128) -> Any:
    """A `engine.realtime.SongPlayer`; raises (DeviceError, SoundfontError, ...) if it cannot.

    "auto" falls back to the silent null backend when no audio device opens (the player's
    `backend_name` then says "null", which the status bar reports)."""
    realtime = _import("engine.realtime")
    return realtime.SongPlayer(backend=backend, soundfont=soundfont or None, period=period)


# -- accompaniment ----------------------------------------------------------------------------
_accompanists: dict[str, Any] = {}


def accompanist(name: str | None) -> Any:
    """Load (once) and return an `Accompanist`. Slow the first time: call from a worker."""
    key = name or ""
    if key not in _accompanists:
        band = _import("engine.models.band")
        if band.is_band_model(name):  # chords, bass and drums ("band:STYLE" picks a style)
            _accompanists[key] = band.BandAccompanist.load(name)
        else:
            cls = _import("engine.models.accompanist").Accompanist
            _accompanists[key] = cls.load(name)
    return _accompanists[key]


def is_band(name: str | None) -> bool:
    return bool(name) and _import("engine.models.band").is_band_model(name)


def accompany_with_chords(song: Song, *, model: str | None, melody_track: int,
                          temperature: float | None, seed: int | None,
                          style: str | None = None,
                          key: str | None = None) -> tuple[Song, list[tuple[int, str]]]:
    """`accompany`, plus the chord changes (tick, name) for the roll: the band's, or the ones
    the choir's voices follow (none without its chord prior). `key`: the melody's key by name
    ("D major"), else estimated."""
    acc = accompanist(model)
    how = {"style": style} if is_band(model) else {"temperature": temperature}
    out, chords = acc.accompany_with_chords(song, melody_track=melody_track, seed=seed,
                                            key=_named_key(key), **how)
    return out, acc.chord_labels(song, song.tracks[melody_track].notes, chords=chords)


def _named_key(name: str | None) -> Any:
    """"D major" -> engine.music.Key; None (estimated from the melody) stays None."""
    return _import("engine.music").parse_key(name) if name else None


# -- export -----------------------------------------------------------------------------------
def write_wav(song: Song, path: str | Path, *, soundfont: str | None = None,
              progress: Callable[[float], None] | None = None, sample_rate: int = 48000,
              subtype: str = "16") -> Any:
    return _import("export.audio").write_wav(song, path, soundfont=soundfont or None,
                                             progress=progress, sample_rate=sample_rate,
                                             subtype=subtype)


def write_stems(song: Song, folder: str | Path, *, soundfont: str | None = None,
                progress: Callable[[float], None] | None = None, sample_rate: int = 48000,
                subtype: str = "16") -> Any:
    return _import("export.stems").write_stems(song, folder, soundfont=soundfont or None,
                                               progress=progress, sample_rate=sample_rate,
                                               subtype=subtype)


# -- morph / generate / continue / classify ---------------------------------------------------
_loaded: dict[tuple[str, str], Any] = {}


def _model(module: str, cls: str, name: str | None, **kw: Any) -> Any:
    """Load a runtime model once per (class, name). Slow the first time: call from a worker."""
    key = (f"{module}.{cls}:{sorted(kw.items())}", name or "")
    if key not in _loaded:
        _loaded[key] = getattr(_import(module), cls).load(name, **kw)
    return _loaded[key]


def forget_models() -> None:
    """After training: the next call loads the newest cards."""
    _loaded.clear()
    _accompanists.clear()


def morpher(name: str | None) -> Any:
    return _model("engine.models.morph", "Morpher", name)


def bar_generator(name: str | None) -> Any:
    return _model("engine.models.gan", "BarGenerator", name)


def continuer(name: str | None) -> Any:
    return _model("engine.models.continuation", "Continuer", name)


def classifier(name: str | None, *, audio: bool = False) -> Any:
    kind = "classifier-audio" if audio else "classifier-midi"
    return _model("engine.models.classifier", "StyleClassifier", name, kind=kind)


def user_models_dir() -> Path:
    return _import("engine.models.runtime").user_models_dir()
