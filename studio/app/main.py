"""Start the studio: the QApplication, the window, the excepthook, crash recovery."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

from engine.errors import DeviceError

log = logging.getLogger(__name__)


def check_display() -> None:
    """Refuse clearly (instead of Qt aborting) when there is nowhere to show a window."""
    if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
            or os.environ.get("QT_QPA_PLATFORM")):
        raise DeviceError("no display: DISPLAY and WAYLAND_DISPLAY are not set (run it in a "
                          "desktop session, set QT_QPA_PLATFORM=offscreen, or use the command "
                          "line: popmusicnet --help)")


def run(path: str | None = None, *, startup_report: bool = False) -> int:
    t0 = time.perf_counter()
    check_display()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from studio.app import excepthook, theme
    from studio.app.mainwindow import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("PopMusicNet Studio")
    app.setOrganizationName("PopMusicNet")
    theme.apply_dark_palette(app)
    excepthook.install()
    log_to_file()
    window = MainWindow()
    window.show()
    # Ctrl+C in the terminal: keep unsaved work as an autosave (offered next time), then quit.
    # Python runs signal handlers only between bytecodes, so a timer gives it the chance.
    signal.signal(signal.SIGINT, lambda *_: window.interrupt())
    tick = QTimer(window)
    tick.timeout.connect(lambda: None)
    tick.start(250)
    if path:
        window.project.open(Path(path), prompt=False)
    else:
        QTimer.singleShot(0, window.project.offer_recovery)
    if startup_report:
        app.processEvents()
        print(f"window shown after {(time.perf_counter() - t0) * 1000:.0f} ms", flush=True)
    return app.exec()


def log_to_file() -> None:
    """Warnings and errors also go to studio.log in the app's data folder (for bug reports)."""
    from PySide6.QtCore import QStandardPaths

    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    if not base:
        return
    try:
        Path(base).mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(Path(base) / "studio.log", encoding="utf-8")
    except OSError as exc:
        log.warning("no log file: %s", exc)
        return
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
