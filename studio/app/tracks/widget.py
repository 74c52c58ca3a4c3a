"""The track list dock: one row per track; clicking a row makes it the edited track.

Name, instrument, volume and role changes are undo commands; mute and solo are mixer state
(not undoable, as in most DAWs). Rows are updated in place, never rebuilt while a row's own
widget is emitting (deleting the sender inside its signal crashes Qt).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import (QComboBox, QFrame, QHBoxLayout, QLineEdit, QPushButton,
                               QScrollArea, QSlider, QToolButton, QVBoxLayout, QWidget)

from engine.music import ROLES, Track
from studio.app import theme
from studio.app.commands import InsertTracks, RemoveTrack, SetTrackProperty
from studio.app.document import SongDocument
from studio.app.tracks.gm import GM_PROGRAMS

DRUMS = "Drums (channel 10)"
SHRINKABLE = QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
ROLE_LABELS = {"melody": "Melody", "accompaniment": "Accomp.", "other": "Other"}


class TrackRow(QFrame):
    def __init__(self, doc: SongDocument, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc, self.index = doc, index
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.swatch = QFrame(self)
        self.swatch.setFixedSize(6, 40)
        self.name = QLineEdit(self)
        self.name.setPlaceholderText("Track name")
        self.instrument = QComboBox(self)
        self.instrument.addItems([f"{i + 1} {n}" for i, n in enumerate(GM_PROGRAMS)] + [DRUMS])
        self.instrument.setMaxVisibleItems(20)
        self.instrument.setSizeAdjustPolicy(SHRINKABLE)
        self.mute = self._toggle("M", "Mute")
        self.solo = self._toggle("S", "Solo")
        self.volume = QSlider(Qt.Orientation.Horizontal, self)
        self.volume.setRange(0, 127)
        self.volume.setToolTip("Volume (MIDI CC7)")
        self.role = QComboBox(self)
        for role in ROLES:
            self.role.addItem(ROLE_LABELS.get(role, role), role)
        self.role.setSizeAdjustPolicy(SHRINKABLE)
        self.role.setToolTip("Role: the melody is what models accompany")

        self.volume.setFixedWidth(56)
        self.instrument.setMinimumContentsLength(10)
        self.role.setMinimumContentsLength(6)
        top = QHBoxLayout()
        top.setSpacing(4)
        top.addWidget(self.name, 1)
        top.addWidget(self.volume)
        top.addWidget(self.mute)
        top.addWidget(self.solo)
        bottom = QHBoxLayout()
        bottom.setSpacing(4)
        bottom.addWidget(self.instrument, 3)
        bottom.addWidget(self.role, 2)
        col = QVBoxLayout()
        col.setSpacing(2)
        col.addLayout(top)
        col.addLayout(bottom)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 3, 4, 3)
        row.addWidget(self.swatch)
        row.addLayout(col, 1)

        self.name.editingFinished.connect(self._name_edited)
        self.instrument.activated.connect(self._instrument_chosen)
        self.role.activated.connect(lambda i: self._set("role", self.role.itemData(i)))
        # A drag is one undo step (on release); a click or a key press on the slider is one too.
        self.volume.sliderReleased.connect(lambda: self._set("volume", self.volume.value()))
        self.volume.valueChanged.connect(
            lambda v: None if self.volume.isSliderDown() else self._set("volume", v))
        self.mute.toggled.connect(lambda on: doc.set_mute(self.index, on))
        self.solo.toggled.connect(lambda on: doc.set_solo(self.index, on))
        for w in (self.name, self.instrument, self.role, self.volume, self.mute, self.solo):
            w.installEventFilter(self)

    def _toggle(self, text: str, tip: str) -> QToolButton:
        b = QToolButton(self)
        b.setText(text)
        b.setToolTip(tip)
        b.setCheckable(True)
        b.setFixedWidth(24)
        return b

    def eventFilter(self, obj, event) -> bool:  # noqa: N802: clicking any control selects the row
        if event.type() == event.Type.MouseButtonPress or event.type() == event.Type.FocusIn:
            self.doc.set_current_track(self.index)
        return False

    def mousePressEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        self.doc.set_current_track(self.index)

    def refresh(self, current: bool) -> None:
        t = self.doc.track(self.index)
        mixer = self.doc.mixer(self.index)
        for w in (self.name, self.instrument, self.role, self.volume, self.mute, self.solo):
            w.blockSignals(True)
        if not self.name.hasFocus():
            self.name.setText(t.name)
        self.instrument.setCurrentIndex(128 if t.is_drum else t.program)
        self.role.setCurrentIndex(max(self.role.findData(t.role), 0))
        self.volume.setValue(t.volume)
        self.mute.setChecked(mixer.mute)
        self.solo.setChecked(mixer.solo)
        for w in (self.name, self.instrument, self.role, self.volume, self.mute, self.solo):
            w.blockSignals(False)
        colour = theme.track_colour(self.index)
        self.swatch.setStyleSheet(f"background: {colour.name()}; border-radius: 2px;")
        self.setStyleSheet("TrackRow { background: #3a4150; }" if current else "")

    def _set(self, name: str, value: object) -> None:
        if getattr(self.doc.track(self.index), name) != value:
            self.doc.undo_stack.push(SetTrackProperty(self.doc, self.index, name, value))

    def _name_edited(self) -> None:
        self._set("name", self.name.text().strip())

    def _instrument_chosen(self, i: int) -> None:
        if i == 128:
            self._set("is_drum", True)
        else:
            stack = self.doc.undo_stack
            stack.beginMacro("Change instrument")
            self._set("is_drum", False)
            self._set("program", i)
            stack.endMacro()


class TrackList(QWidget):
    def __init__(self, doc: SongDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.rows: list[TrackRow] = []
        self._inner = QWidget(self)
        self._rows_layout = QVBoxLayout(self._inner)
        self._rows_layout.setContentsMargins(2, 2, 2, 2)
        self._rows_layout.setSpacing(3)
        self._rows_layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self._inner)
        add = QPushButton("+ Track", self)
        add.setToolTip("Add an empty track")
        add.clicked.connect(self.add_track)
        self.remove = QPushButton("− Track", self)
        self.remove.setToolTip("Delete the selected track")
        self.remove.clicked.connect(self.remove_track)
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(self.remove)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(scroll, 1)
        for sig in (doc.tracksChanged, doc.songReplaced, doc.currentTrackChanged,
                    doc.mixerChanged):
            sig.connect(self._schedule_refresh)
        self._pending = False
        self.refresh()

    def _schedule_refresh(self, *_: object) -> None:
        # Deferred to the event loop: the signal may come from a row's own widget.
        if not self._pending:
            self._pending = True
            QTimer.singleShot(0, self.refresh)

    def refresh(self) -> None:
        self._pending = False
        n = len(self.doc.song.tracks)
        while len(self.rows) > n:
            row = self.rows.pop()
            row.hide()
            row.deleteLater()
        while len(self.rows) < n:
            row = TrackRow(self.doc, len(self.rows), self._inner)
            self._rows_layout.insertWidget(len(self.rows), row)
            self.rows.append(row)
        for row in self.rows:
            row.refresh(row.index == self.doc.current_track)
        self.remove.setEnabled(self.doc.current_track >= 0)

    def add_track(self) -> None:
        n = len(self.doc.song.tracks)
        track = Track(name=f"Track {n + 1}", program=0)
        self.doc.undo_stack.push(InsertTracks(self.doc, n, [track], "Add track"))
        self.doc.set_current_track(n)

    def remove_track(self) -> None:
        if self.doc.current_track >= 0:
            self.doc.undo_stack.push(RemoveTrack(self.doc, self.doc.current_track))
