"""The Train dock: a `popmusicnet train` child process through QProcess (the same command a user
runs in a terminal), its JSON lines plotted as they come; the GUI never waits on it."""

from __future__ import annotations

import datetime as dt
import logging

from PySide6.QtCore import QProcess, QProcessEnvironment
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPlainTextEdit, QProgressBar, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from studio.app import services
from studio.app.panel import Panel
from studio.app.train import DATASETS, STAGES, kinds, ProgressState, python, train_command
from studio.app.widgets.charts import LineChart

log = logging.getLogger(__name__)

STARTING = ("Starting: loading PyTorch and the data set. The first run on a corpus parses it "
            "into a cache once, which takes a few minutes; the log below shows each step.")


class TrainPanel(Panel):
    TITLE = "Train"
    FEATURES = ("train",)

    def build(self, body: QWidget) -> None:
        form = QFormLayout()
        self.kind = QComboBox(body)
        self.kind.addItems(list(kinds()))
        self.kind.currentTextChanged.connect(self._kind_changed)
        form.addRow("Model kind", self.kind)
        self.dataset = QComboBox(body)
        self.dataset.setEditable(True)
        self.dataset.addItems(list(DATASETS))
        self.dataset.setToolTip("corpus:bach (music21's chorales), folder:PATH (your MIDI "
                                "files) or lpd5:PATH (LPD-5 .npz files)")
        browse = QPushButton("Folder…", body)
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.dataset, 1)
        row.addWidget(browse)
        self.dataset_row = row
        form.addRow("Dataset", row)
        self.epochs = QSpinBox(body)
        self.epochs.setRange(1, 10000)
        self.epochs.setValue(20)
        form.addRow("Epochs", self.epochs)
        self.device = QComboBox(body)
        self.device.addItems(["auto", "cpu", "cuda"])
        form.addRow("Device", self.device)
        self.name = QLineEdit(body)
        form.addRow("Model name", self.name)
        self.extra = QLineEdit(body)
        self.extra.setPlaceholderText("more options, e.g. --minutes 5 --threads 1")
        form.addRow("Options", self.extra)
        self.start_button = QPushButton("Start training", body)
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop", body)
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        self.progress = QProgressBar(body)
        self.progress.setRange(0, 100)
        self.state_label = QLabel("", body)
        self.state_label.setWordWrap(True)
        self.chart = LineChart(body)
        self.log = QPlainTextEdit(body)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(400)
        self.log.setMaximumHeight(90)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.state_label)
        layout.addWidget(self.chart, 1)
        layout.addWidget(self.log)
        self.process: QProcess | None = None
        self._stopping = False
        self.state = ProgressState()
        self._buffer = b""
        self._kind_changed(self.kind.currentText())

    def _kind_changed(self, kind: str) -> None:
        stamp = dt.datetime.now().strftime("%m%d-%H%M")
        self.name.setText(f"my-{kind}-{stamp}")
        has_data = kind == "accompanist"
        self.dataset.setEnabled(has_data)
        self.dataset.setToolTip("" if has_data else
                                f"{kind} trains on the music21 corpus styles (see Options)")

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of MIDI files")
        if folder:
            self.dataset.setCurrentText(f"folder:{folder}")

    def command(self) -> list[str]:
        models = services.user_models_dir()
        data = self.dataset.currentText().strip()
        return train_command(self.kind.currentText(), name=self.name.text().strip(),
                             epochs=self.epochs.value(), device=self.device.currentText(),
                             models_dir=models, work_dir=models.parent / "training",
                             data=data if data not in ("folder:", "lpd5:") else "",
                             extra=self.extra.text())

    def start(self) -> None:
        if self.process is not None:
            return
        if not self.name.text().strip():
            self.ctx.say("Give the model a name")
            return
        args = self.command()
        models = services.user_models_dir()
        models.mkdir(parents=True, exist_ok=True)
        self.state = ProgressState(stages=STAGES.get(self.kind.currentText(), ()))
        self._stopping = False
        self.chart.clear()
        self.log.clear()
        self.progress.setRange(0, 0)  # busy until the first epoch says how far it is
        self.progress.setValue(0)
        self._buffer = b""
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._process_error)
        self.process = proc
        self.log.appendPlainText("$ popmusicnet " + " ".join(args[2:]))
        proc.start(python(), args)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.state_label.setText(STARTING)

    def stop(self) -> None:
        if self.process is not None:
            self._stopping = True
            self.state_label.setText("Stopping…")
            self.process.terminate()
            if not self.process.waitForFinished(3000):
                self.process.kill()

    def _read_stdout(self) -> None:
        assert self.process is not None
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            before = len(self.state.points)
            if self.state.feed(line):
                for series, x, y in self.state.points[before:]:
                    self.chart.add_point(series, x, y)
                done = self.state.overall()
                if done is not None:
                    self.progress.setRange(0, 100)
                    self.progress.setValue(int(100 * done))
                self.state_label.setText(self.state.describe())
            elif line.strip():
                self.log.appendPlainText(line)

    def _read_stderr(self) -> None:
        assert self.process is not None
        text = bytes(self.process.readAllStandardError()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self.log.appendPlainText(line)

    def _process_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.failed("Training", RuntimeError(f"could not start {python()}"))
            self._reset()

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        name = self.name.text().strip()
        if status == QProcess.ExitStatus.NormalExit and code == 0:
            services.forget_models()
            self.ctx.events.modelsChanged.emit()
            self.progress.setValue(100)
            self.state_label.setText(f"Done: {name} is trained and selectable now "
                                     f"({self.state.describe()})")
            self.ctx.say(f"Model {name} trained")
        elif self._stopping:
            done = self.state.describe() if self.state.epochs else "before the first epoch ended"
            self.state_label.setText(f"Stopped ({done}); {name} was not installed")
        else:
            said = self.log.blockCount() > 1  # more than the command line
            self.state_label.setText(f"Training failed (exit code {code})"
                                     + ("; the log below says why" if said else
                                        ", without a word of output"))
        self.progress.setRange(0, 100)
        self._reset()

    def _reset(self) -> None:
        if self.process is not None:
            self.process.deleteLater()
        self.process = None
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def shutdown(self) -> None:
        if self.process is not None:
            self.process.finished.disconnect(self._finished)
            self.stop()
