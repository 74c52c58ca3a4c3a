"""The song being edited, as a QObject: `engine.music.Song` plus signals, undo and edit state.

Notes live here (in the Song's tracks), never in widgets. The mutating methods are called by the
QUndoCommands in `commands.py` (so every edit is undoable); views listen to the signals and redraw.
Besides the song, the document holds the editing state that undo commands restore: the current
track, the note selection and the cursor, plus mixer state (mute/solo) that MIDI files don't carry.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from engine.music import MeterChange, Note, Song, TempoChange, Track

log = logging.getLogger(__name__)


@dataclass(slots=True)
class MixerState:
    """Per-track playback state the MIDI file does not carry."""

    mute: bool = False
    solo: bool = False


@dataclass(frozen=True, slots=True)
class NoteArrays:
    """A track's notes as sorted numpy columns, for fast culling while painting."""

    notes: tuple[Note, ...]
    starts: np.ndarray
    ends: np.ndarray
    pitches: np.ndarray
    velocities: np.ndarray
    max_duration: int

    @classmethod
    def of(cls, notes: list[Note]) -> NoteArrays:
        ordered = tuple(sorted(notes))
        cols = np.array([(n.start, n.end, n.pitch, n.velocity) for n in ordered],
                        dtype=np.int64).reshape(-1, 4)
        dur = int((cols[:, 1] - cols[:, 0]).max()) if len(ordered) else 0
        return cls(ordered, cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], dur)

    def visible(self, t0: float, t1: float, p0: int, p1: int) -> np.ndarray:
        """Indices of notes overlapping ticks [t0, t1) and pitches [p0, p1]."""
        lo = int(np.searchsorted(self.starts, t0 - self.max_duration, side="left"))
        hi = int(np.searchsorted(self.starts, t1, side="left"))
        idx = np.arange(lo, hi)
        if idx.size == 0:
            return idx
        keep = ((self.ends[lo:hi] > t0) & (self.pitches[lo:hi] >= p0)
                & (self.pitches[lo:hi] <= p1))
        return idx[keep]


class SongDocument(QObject):
    """The one place the song is changed. Signals say what changed so views redraw little."""

    notesChanged = Signal(int)  # track index
    tracksChanged = Signal()  # tracks added/removed/reordered or a property changed
    mixerChanged = Signal()
    mapsChanged = Signal()  # tempo or meter map
    songReplaced = Signal()
    currentTrackChanged = Signal(int)
    selectionChanged = Signal()
    cursorChanged = Signal(int)
    loopChanged = Signal()

    def __init__(self, song: Song | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self._song = Song()
        self._mixer: list[MixerState] = []
        self._arrays: dict[int, NoteArrays] = {}
        self._current = -1
        self._selection: set[Note] = set()
        self._loop: tuple[int, int] | None = None
        self.source_path = None  # the file the song was opened from (pathlib.Path) or None
        self.set_song(song if song is not None else self.empty_song())

    @staticmethod
    def empty_song() -> Song:
        """A new project: one melody track, piano, 120 BPM, 4/4."""
        return Song(tracks=[Track(name="Melody", program=0, role="melody")])

    # -- whole song ---------------------------------------------------------------------------
    @property
    def song(self) -> Song:
        return self._song

    def set_song(self, song: Song, mixer: list[MixerState] | None = None) -> None:
        """Replace the song (open, new). Clears undo history and selection."""
        for t in song.tracks:
            t.sort()
        self._song = song
        self._mixer = list(mixer) if mixer and len(mixer) == len(song.tracks) else [
            MixerState() for _ in song.tracks]
        self._arrays.clear()
        self._selection = set()
        self._current = 0 if song.tracks else -1
        self._cursor = 0
        self._loop = None
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self.songReplaced.emit()
        self.currentTrackChanged.emit(self._current)
        self.selectionChanged.emit()
        self.loopChanged.emit()
        self.cursorChanged.emit(0)

    @property
    def modified(self) -> bool:
        return not self.undo_stack.isClean()

    def snapshot(self) -> Song:
        """A deep copy, safe to hand to a worker thread while editing goes on."""
        return self._song.copy()

    def length_ticks(self) -> int:
        """Song end rounded up to whole bars, at least 8 bars: the editable area."""
        bars = self.bars(max(self._song.end, 1))
        end = bars[-1][1] if bars else 0
        min_end = self._song.bars(1)[0][1] * 8
        return max(end, min_end)

    def bars(self, end: int) -> list[tuple[int, int, MeterChange]]:
        return self._song.bars(end)

    # -- notes (called by undo commands) ------------------------------------------------------
    def track(self, index: int) -> Track:
        return self._song.tracks[index]

    def note_arrays(self, index: int) -> NoteArrays:
        arr = self._arrays.get(index)
        if arr is None:
            arr = self._arrays[index] = NoteArrays.of(self._song.tracks[index].notes)
        return arr

    def add_notes(self, index: int, notes: Iterable[Note]) -> None:
        track = self._song.tracks[index]
        for n in notes:
            bisect.insort(track.notes, n)
        self._notes_changed(index)

    def remove_notes(self, index: int, notes: Iterable[Note]) -> None:
        """Remove one occurrence of each given note (a multiset difference)."""
        gone = Counter(notes)
        track = self._song.tracks[index]
        kept = []
        for n in track.notes:
            if gone[n] > 0:
                gone[n] -= 1
            else:
                kept.append(n)
        track.notes = kept
        self._notes_changed(index)

    def _notes_changed(self, index: int) -> None:
        self._arrays.pop(index, None)
        self.notesChanged.emit(index)

    # -- tracks -------------------------------------------------------------------------------
    def set_track_property(self, index: int, name: str, value: object) -> None:
        setattr(self._song.tracks[index], name, value)
        self.tracksChanged.emit()

    def insert_track(self, index: int, track: Track, mixer: MixerState | None = None) -> None:
        track.sort()
        self._song.tracks.insert(index, track)
        self._mixer.insert(index, mixer or MixerState())
        self._arrays.clear()
        if self._current < 0:
            self._current = index
        elif self._current >= index:
            self._current += 1  # the same track, now one row down
        self.tracksChanged.emit()
        self.currentTrackChanged.emit(self._current)

    def remove_track(self, index: int) -> tuple[Track, MixerState]:
        track = self._song.tracks.pop(index)
        mixer = self._mixer.pop(index)
        self._arrays.clear()
        if self._current == index:
            self._selection = set()
        if self._current > index or self._current >= len(self._song.tracks):
            self._current -= 1
        self.tracksChanged.emit()
        self.currentTrackChanged.emit(self._current)
        self.selectionChanged.emit()
        return track, mixer

    def mixer(self, index: int) -> MixerState:
        return self._mixer[index]

    def mixer_states(self) -> list[MixerState]:
        return list(self._mixer)

    def set_mute(self, index: int, on: bool) -> None:
        self._mixer[index].mute = on
        self.mixerChanged.emit()

    def set_solo(self, index: int, on: bool) -> None:
        self._mixer[index].solo = on
        self.mixerChanged.emit()

    def audible_tracks(self) -> list[int]:
        """Indices that sound: soloed tracks if any are soloed, else the unmuted ones."""
        solo = [i for i, m in enumerate(self._mixer) if m.solo]
        return solo or [i for i, m in enumerate(self._mixer) if not m.mute]

    # -- maps ---------------------------------------------------------------------------------
    def set_first_tempo(self, bpm: float) -> None:
        self._song.tempos[0] = TempoChange(0, bpm)
        self.mapsChanged.emit()

    def set_first_meter(self, numerator: int, denominator: int) -> None:
        self._song.meters[0] = MeterChange(0, numerator, denominator)
        self.mapsChanged.emit()

    def set_meters(self, meters: list[MeterChange]) -> None:
        self._song.meters = list(meters)
        self._song.normalise_maps()
        self.mapsChanged.emit()

    # -- editing state ------------------------------------------------------------------------
    @property
    def current_track(self) -> int:
        return self._current

    def set_current_track(self, index: int) -> None:
        if index == self._current:
            return
        self._current = index
        self._selection = set()
        self.currentTrackChanged.emit(index)
        self.selectionChanged.emit()

    @property
    def selection(self) -> frozenset[Note]:
        return frozenset(self._selection)

    def set_selection(self, notes: Iterable[Note]) -> None:
        new = set(notes)
        if new != self._selection:
            self._selection = new
            self.selectionChanged.emit()

    @property
    def cursor(self) -> int:
        return self._cursor

    def set_cursor(self, tick: int) -> None:
        tick = max(0, int(tick))
        if tick != self._cursor:
            self._cursor = tick
            self.cursorChanged.emit(tick)

    @property
    def loop(self) -> tuple[int, int] | None:
        """The loop region (start, end) in ticks, or None."""
        return self._loop

    def set_loop(self, region: tuple[int, int] | None) -> None:
        if region is not None:
            a, b = sorted((max(0, int(region[0])), max(0, int(region[1]))))
            region = (a, b) if b > a else None
        if region != self._loop:
            self._loop = region
            self.loopChanged.emit()
