"""Undo commands: each calls document methods and restores the edit state it changed.

One gesture is one command (a drag that moves twenty notes is one `EditNotes`). Commands hold the
notes they removed and added, so undo/redo is exact whatever happened in between.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtGui import QUndoCommand

from engine.music import MeterChange, Note, Track
from studio.app import bars
from studio.app.document import MixerState, SongDocument


class EditNotes(QUndoCommand):
    """Replace `removed` by `added` in one track: covers add, delete, move, resize, velocity,
    paste, duplicate. After redo the added notes are selected; after undo the removed ones."""

    def __init__(self, doc: SongDocument, track: int, removed: Sequence[Note],
                 added: Sequence[Note], text: str) -> None:
        super().__init__(text)
        self._doc, self._track = doc, track
        self._removed, self._added = tuple(removed), tuple(added)

    def redo(self) -> None:
        self._apply(self._removed, self._added)

    def undo(self) -> None:
        self._apply(self._added, self._removed)

    def _apply(self, out: Sequence[Note], into: Sequence[Note]) -> None:
        self._doc.set_current_track(self._track)
        self._doc.remove_notes(self._track, out)
        self._doc.add_notes(self._track, into)
        self._doc.set_selection(into)


class SetTrackProperty(QUndoCommand):
    """Name, program, role, volume, is_drum of one track."""

    def __init__(self, doc: SongDocument, track: int, name: str, value: object) -> None:
        super().__init__(f"Change track {name}")
        self._doc, self._track, self._name, self._new = doc, track, name, value
        self._old = getattr(doc.track(track), name)

    def redo(self) -> None:
        self._doc.set_track_property(self._track, self._name, self._new)

    def undo(self) -> None:
        self._doc.set_track_property(self._track, self._name, self._old)


class InsertTracks(QUndoCommand):
    """New tracks at `index` (accompaniment, a new empty track, an imported file)."""

    def __init__(self, doc: SongDocument, index: int, tracks: Sequence[Track], text: str) -> None:
        super().__init__(text)
        self._doc, self._index, self._tracks = doc, index, list(tracks)

    def redo(self) -> None:
        for i, t in enumerate(self._tracks):
            self._doc.insert_track(self._index + i, t)

    def undo(self) -> None:
        for _ in self._tracks:
            self._doc.remove_track(self._index)


class RemoveTrack(QUndoCommand):
    def __init__(self, doc: SongDocument, index: int) -> None:
        super().__init__(f"Delete track {doc.track(index).name or index + 1}")
        self._doc, self._index = doc, index
        self._saved: tuple[Track, MixerState] | None = None

    def redo(self) -> None:
        self._saved = self._doc.remove_track(self._index)

    def undo(self) -> None:
        assert self._saved is not None
        self._doc.insert_track(self._index, *self._saved)
        self._doc.set_current_track(self._index)


class SetTempo(QUndoCommand):
    """The first tempo of the song. Consecutive changes merge into one step (a spin box)."""

    ID = 1001

    def __init__(self, doc: SongDocument, bpm: float) -> None:
        super().__init__("Change tempo")
        self._doc, self._new, self._old = doc, bpm, doc.song.tempos[0].bpm

    def id(self) -> int:
        return self.ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if isinstance(other, SetTempo):
            self._new = other._new
            return True
        return False

    def redo(self) -> None:
        self._doc.set_first_tempo(self._new)

    def undo(self) -> None:
        self._doc.set_first_tempo(self._old)


class SetMeters(QUndoCommand):
    """The whole meter map at once (the song's meter, a pickup): notes stay where they are."""

    def __init__(self, doc: SongDocument, meters: Sequence[MeterChange], text: str) -> None:
        super().__init__(text)
        self._doc, self._new, self._old = doc, list(meters), list(doc.song.meters)

    def redo(self) -> None:
        self._doc.set_meters(self._new)

    def undo(self) -> None:
        self._doc.set_meters(self._old)


class SetMeter(SetMeters):
    """The song's time signature (a pickup, if there is one, is kept when it fits)."""

    def __init__(self, doc: SongDocument, numerator: int, denominator: int) -> None:
        super().__init__(doc, bars.meters_with_main(doc.song, numerator, denominator),
                         f"Change meter to {numerator}/{denominator}")


class SetPickup(SetMeters):
    """A pickup (anacrusis) of `beats` beats before the first full bar; 0 removes it."""

    def __init__(self, doc: SongDocument, beats: int) -> None:
        super().__init__(doc, bars.meters_with_pickup(doc.song, beats),
                         f"Pickup of {beats} beats" if beats else "No pickup")


class SetTrackNotes(QUndoCommand):
    """Replace every note of one track (an accompaniment played again), leaving the current
    track and the selection alone."""

    def __init__(self, doc: SongDocument, track: int, notes: Sequence[Note], text: str) -> None:
        super().__init__(text)
        self._doc, self._track = doc, track
        self._new, self._old = tuple(notes), tuple(doc.track(track).notes)

    def redo(self) -> None:
        self._doc.remove_notes(self._track, self._old)
        self._doc.add_notes(self._track, self._new)

    def undo(self) -> None:
        self._doc.remove_notes(self._track, self._new)
        self._doc.add_notes(self._track, self._old)
