"""Preferences: stored with QSettings through `Settings`; applied by the main window."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLineEdit, QPushButton, QWidget)

from studio.app.settings import Settings

log = logging.getLogger(__name__)

BUFFERS = (64, 128, 256, 512, 1024)
NONE = "(none)"


def midi_ports(kind: str) -> tuple[list[str], str]:
    """Ports of one kind ("in"/"out") and a note when they cannot be listed."""
    try:
        from engine.realtime.midi import open_rtmidi

        m = open_rtmidi(kind, "auto", "popmusicnet-list")
        try:
            return list(m.get_ports()), ""
        finally:
            m.delete()
    except Exception as exc:  # no MIDI system on this machine: say so in the dialog
        return [], f"MIDI ports cannot be listed: {exc}"


class PreferencesDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        form = QFormLayout(self)
        self.backend = QComboBox(self)
        from engine.synth.live import backend_names

        self.backend.addItems(list(backend_names()))
        self.backend.setCurrentText(settings.audio_backend)
        self.backend.setToolTip("auto: JACK when a server runs, else the system's audio; "
                                "null: silent")
        form.addRow("Audio backend", self.backend)
        self.buffer = QComboBox(self)
        self.buffer.addItems([str(b) for b in BUFFERS])
        self.buffer.setCurrentText(str(settings.buffer_frames))
        form.addRow("Buffer (frames)", self.buffer)
        self.setMinimumWidth(560)  # a SoundFont path reads whole
        self.soundfont = QLineEdit(settings.soundfont, self)
        self.soundfont.setPlaceholderText("default: the system's GM soundfont")
        self.soundfont.setMinimumWidth(380)
        self.soundfont.setToolTip(settings.soundfont)
        self.soundfont.textChanged.connect(self.soundfont.setToolTip)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.soundfont, 1)
        row.addWidget(browse)
        form.addRow("SoundFont", row)
        self.midi_in = self._port_box("in", settings.midi_input)
        self.midi_out = self._port_box("out", settings.midi_output)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.setToolTip("List the MIDI ports again (a keyboard plugged in since)")
        self.refresh_button.clicked.connect(self.refresh_ports)
        row = QHBoxLayout()
        row.addWidget(self.midi_in, 1)
        row.addWidget(self.refresh_button)
        form.addRow("MIDI input", row)
        form.addRow("MIDI output", self.midi_out)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel, parent=self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _port_box(self, kind: str, current: str) -> QComboBox:
        box = QComboBox(self)
        box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._fill_ports(box, kind, current)
        return box

    def _fill_ports(self, box: QComboBox, kind: str, current: str) -> None:
        ports, note = midi_ports(kind)
        box.clear()
        box.addItems([NONE] + ports)
        if current and current != NONE and current not in ports:
            box.addItem(current)  # chosen before and gone now: kept, so OK does not drop it
        box.setCurrentText(current or NONE)
        box.setToolTip(note)

    def refresh_ports(self) -> None:
        """List the ports again, keeping what is chosen."""
        self._fill_ports(self.midi_in, "in", self.midi_in.currentText())
        self._fill_ports(self.midi_out, "out", self.midi_out.currentText())

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SoundFont", "/usr/share/sounds/sf2",
                                              "SoundFonts (*.sf2 *.sf3)")
        if path:
            self.soundfont.setText(path)

    def accept(self) -> None:
        s = self.settings
        s.audio_backend = self.backend.currentText()
        s.buffer_frames = int(self.buffer.currentText())
        s.soundfont = self.soundfont.text().strip()
        s.midi_input = "" if self.midi_in.currentText() == NONE else self.midi_in.currentText()
        s.midi_output = "" if self.midi_out.currentText() == NONE else self.midi_out.currentText()
        super().accept()
