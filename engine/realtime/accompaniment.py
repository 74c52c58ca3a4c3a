"""The live accompanist: the model, its streaming session, its voices, what it has scheduled so
far, and the models loaded on a worker thread while the engine plays. A model that fails to load
or raises pauses the accompaniment; the melody keeps sounding."""

from __future__ import annotations

import logging
import queue
import threading

from engine.errors import UserInputError
from engine.music import Note
from engine.realtime.voices import Voices

log = logging.getLogger(__name__)


def load_accompanist(name: str | None, providers: str = "cpu"):
    """The accompanist `name` (None: the bundled default; a band name: the band, chords, bass and
    drums, with the same interface). ModelError if missing."""
    from engine.models.accompanist import Accompanist
    from engine.models.band import BandAccompanist, is_band_model

    if is_band_model(name):
        return BandAccompanist.load(name, providers=providers)
    return Accompanist.load(name, providers=providers)


class Accompaniment:
    """Owned by the engine thread (the loader thread only fills `_loaded`). `model` is any object
    with session()/name/provider/roles/programs; `session` is None while paused or off."""

    def __init__(self, config, synth, stats) -> None:
        self.config, self.synth, self.stats = config, synth, stats
        self.model = None
        self.session = None
        self.paused_reason = ""
        self.voices = Voices()
        self.parts: list[list[Note]] = []  # what was scheduled, per voice (song ticks)
        # (model | None, error | None) from a loader thread, adopted by the engine thread
        self._loaded: queue.Queue = queue.Queue(maxsize=4)

    @property
    def state(self) -> str:
        if self.session is not None:
            return "on"
        return f"paused: {self.paused_reason}" if self.paused_reason else "off"

    def steps_per_beat(self) -> int:
        """The model's grid (its card's representation), 4 when it does not say."""
        card = getattr(self.model, "card", None)
        rep = getattr(card, "representation", None) or {}
        try:
            return int(rep.get("steps_per_beat", 4))
        except (TypeError, ValueError, AttributeError):
            return 4

    def load_initial(self):
        """The configured model, or None (accompaniment off, or paused when it did not load)."""
        if not self.config.accompany:
            return None
        try:
            return load_accompanist(self.config.model, self.config.providers)
        except UserInputError as exc:
            self.pause(f"model not loaded: {exc}")
            return None
        except Exception as exc:  # a broken model must not take the melody down
            log.exception("accompanist failed to load")
            self.pause(f"model not loaded: {type(exc).__name__}: {exc}")
            return None

    def set_model(self, model) -> None:
        """Use `model` from now on, with a fresh session and its voices on the synth."""
        self.model = model
        self.session = None
        if model is None:
            return
        cfg = self.config
        try:
            kwargs = {"temperature": cfg.temperature, "seed": cfg.seed}
            if cfg.key:
                from engine.music import parse_key

                kwargs["key"] = parse_key(cfg.key)
            self.session = model.session(**kwargs)
        except Exception as exc:
            log.exception("accompanist session failed")
            self.pause(f"model error: {type(exc).__name__}: {exc}")
            return
        self.paused_reason = ""
        self.voices = Voices.of(model, cfg.programs)
        while len(self.parts) < len(self.voices):
            self.parts.append([])
        self.voices.set_programs(self.synth, cfg.accompaniment_soundfont)

    def pause(self, reason: str) -> None:
        self.session = None
        self.paused_reason = reason
        self.stats.notice(reason)
        log.warning("accompaniment paused: %s", reason)

    def start_loader(self, name) -> None:
        """Load a model on a worker thread; `adopt_loaded` hands it over."""
        def work():
            try:
                loaded = (load_accompanist(name, self.config.providers), None)
            except Exception as exc:
                loaded = (None, f"model {name!r} not loaded: {exc}")
            try:
                self._loaded.put_nowait(loaded)
            except queue.Full:
                self.stats.errors.append(f"model {name!r} dropped: too many loads at once")
        threading.Thread(target=work, name="ModelLoader", daemon=True).start()

    def adopt_loaded(self):
        """A model the loader finished since the last call (None if none; a failed load is
        reported)."""
        try:
            model, err = self._loaded.get_nowait()
        except queue.Empty:
            return None
        if err:
            self.stats.notice(err)
            return None
        return model
