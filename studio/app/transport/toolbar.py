"""The transport bar: buttons and fields over a `TransportController` and the document."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QSpinBox, QToolBar, QWidget

from studio.app import bars
from studio.app.commands import SetMeter, SetPickup, SetTempo
from studio.app.document import SongDocument
from studio.app.transport.controller import TransportController
from studio.app.transport.inputs import ComputerKeyboard

POSITION_STYLE = "font-family: monospace; font-size: 14px; padding: 0 8px;"
COUNT_IN_STYLE = " background: #c0392b; color: white; font-weight: bold;"
METERS = ("2/4", "3/4", "4/4", "5/4", "6/8", "7/8", "9/8", "12/8")


def position_text(doc: SongDocument, tick: float) -> str:
    """'bar.beat.sixteenth' as DAWs show it, following the meter map (a pickup is bar 0)."""
    return bars.position_text(doc.song, tick)


class TransportBar(QToolBar):
    def __init__(self, doc: SongDocument, transport: TransportController,
                 keys: ComputerKeyboard, parent: QWidget | None = None) -> None:
        super().__init__("Transport", parent)
        self.setObjectName("transport")
        self.doc, self.transport, self.keys = doc, transport, keys
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)

        def act(text: str, shortcut: str | None, slot, tip: str, checkable: bool = False):
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
                a.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            a.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
            a.setCheckable(checkable)
            a.triggered.connect(slot)
            self.addAction(a)
            return a

        self.act_home = act("|◀", "Home", self._to_start, "Go to the start")
        # Play stays Play (lit while playing); Stop is its own button. Every glyph here is in
        # the fonts the studio ships with (DejaVu), so none draws as a missing-glyph box.
        self.act_play = act("▶ Play", "Space", transport.toggle_play, "Play / stop", True)
        self.act_stop = act("■ Stop", None, transport.stop, "Stop")
        self.act_record = act("● Rec", "R", transport.toggle_record,
                              "Record from the keyboards into the selected track", True)
        self.addSeparator()
        self.act_loop = act("Loop", None, self._loop_toggled,
                            "Loop the region set by dragging in the ruler", True)
        self.act_metronome = act("Click", None, self._metronome_toggled, "Metronome", True)
        self.count_in = QComboBox(self)
        self.count_in.addItems(["No count-in", "Count-in 1 bar", "Count-in 2 bars"])
        self.count_in.setToolTip("Clicks before playing or recording starts, from the bar "
                                 "line before the cursor; the position counts the beats down")
        self.count_in.currentIndexChanged.connect(self._count_in_changed)
        self.addWidget(self.count_in)
        self.addSeparator()
        self.tempo = QDoubleSpinBox(self)
        self.tempo.setRange(20, 400)
        self.tempo.setDecimals(1)
        self.tempo.setSuffix(" BPM")
        self.tempo.setToolTip("Tempo at the start of the song")
        self.tempo.setKeyboardTracking(False)
        self.tempo.valueChanged.connect(self._tempo_edited)
        self.addWidget(self.tempo)
        self.meter = QComboBox(self)
        self.meter.setEditable(False)
        self.meter.addItems(list(METERS))
        self.meter.setToolTip("Time signature at the start of the song")
        self.meter.activated.connect(self._meter_chosen)
        self.addWidget(self.meter)
        self.pickup = QSpinBox(self)
        self.pickup.setRange(0, 3)
        self.pickup.setPrefix("pickup ")
        self.pickup.setSuffix(" beats")
        self.pickup.valueChanged.connect(self._pickup_suffix)
        self.pickup.setSpecialValueText("no pickup")
        self.pickup.setToolTip("Anacrusis: beats before the first full bar (shown as bar 0). "
                               "Notes stay where they are; the bar lines move")
        self.pickup.setKeyboardTracking(False)
        self.pickup.valueChanged.connect(self._pickup_edited)
        self.addWidget(self.pickup)
        self.addSeparator()
        self.position = QLabel("1.1.1", self)
        self.position.setMinimumWidth(110)
        self.position.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.position.setStyleSheet(POSITION_STYLE)
        self.position.setToolTip("Position: bar.beat.sixteenth")
        self.addWidget(self.position)
        self.addSeparator()
        self.act_keys = act("Computer keys", None, self._keys_toggled,
                            "Play notes on the computer keyboard: A-row white keys, Q-row black "
                            "keys, Z/X octave down/up, C/V velocity", True)
        self.octave = QLabel("", self)
        self.addWidget(self.octave)
        keys.octaveChanged.connect(lambda o: self.octave.setText(f" C{o} "))

        transport.stateChanged.connect(self.refresh)
        transport.positionChanged.connect(self._show_position)
        transport.countInChanged.connect(self._show_count_in)
        doc.cursorChanged.connect(lambda t: self._show_position(None))
        doc.mapsChanged.connect(self.refresh)
        doc.songReplaced.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        t = self.transport
        self.act_play.setChecked(t.is_playing)
        for a in (self.act_play, self.act_record):
            a.setEnabled(t.can_play)
        tip = "" if t.can_play else f" — unavailable: {t.player_error}"
        self.act_play.setStatusTip(tip)
        self.act_record.setChecked(t.recording)
        song = self.doc.song
        self.tempo.blockSignals(True)
        self.tempo.setValue(song.tempos[0].bpm)
        self.tempo.blockSignals(False)
        main = bars.main_meter(song)
        meter = str(main)
        if self.meter.findText(meter) < 0:
            self.meter.addItem(meter)
        self.meter.setCurrentText(meter)
        self.pickup.blockSignals(True)
        self.pickup.setMaximum(max(main.numerator - 1, 0))
        self.pickup.setValue(bars.pickup_beats(song))
        self.pickup.blockSignals(False)
        self._pickup_suffix(self.pickup.value())
        self._show_position(None)

    def _show_position(self, tick: float | None) -> None:
        self.position.setText(position_text(self.doc, self.doc.cursor if tick is None else tick))

    def _show_count_in(self, beats: int | None) -> None:
        if beats is None:
            self.position.setStyleSheet(POSITION_STYLE)
            self._show_position(None)
        else:
            self.position.setStyleSheet(POSITION_STYLE + COUNT_IN_STYLE)
            self.position.setText(f"count-in {beats}")

    def _to_start(self) -> None:
        self.doc.set_cursor(0)

    def _loop_toggled(self, on: bool) -> None:
        if on and self.doc.loop is None:
            bar = self.doc.song.bars(1)[0]
            start = self.doc.cursor
            self.doc.set_loop((start, start + 4 * (bar[1] - bar[0])))
        self.transport.loop_enabled = on

    def _metronome_toggled(self, on: bool) -> None:
        self.transport.metronome = on

    def _count_in_changed(self, index: int) -> None:
        self.transport.count_in_bars = index

    def _keys_toggled(self, on: bool) -> None:
        self.keys.set_enabled(on)
        self.octave.setText(f" C{self.keys.base // 12 - 1} " if on else "")

    def _tempo_edited(self, bpm: float) -> None:
        if abs(bpm - self.doc.song.tempos[0].bpm) > 1e-6:
            self.doc.undo_stack.push(SetTempo(self.doc, bpm))

    def _meter_chosen(self, index: int) -> None:
        num, den = (int(x) for x in self.meter.itemText(index).split("/"))
        first = bars.main_meter(self.doc.song)
        if (num, den) != (first.numerator, first.denominator):
            self.doc.undo_stack.push(SetMeter(self.doc, num, den))

    def _pickup_edited(self, beats: int) -> None:
        if beats != bars.pickup_beats(self.doc.song):
            self.doc.undo_stack.push(SetPickup(self.doc, beats))

    def _pickup_suffix(self, beats: int) -> None:
        self.pickup.setSuffix(" beat" if beats == 1 else " beats")
