"""An excepthook that logs an unexpected error and shows it in a dialog instead of dying
silently (Frescobaldi's exception.py). Errors the user caused (UserInputError) are shown as
plain messages without a traceback."""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

from PySide6.QtWidgets import QApplication, QMessageBox

from engine.errors import UserInputError

log = logging.getLogger(__name__)

_showing = False


def handle(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    global _showing
    if issubclass(exc_type, KeyboardInterrupt):
        QApplication.quit()
        return
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    log.error("unexpected error:\n%s", text)
    if _showing or QApplication.instance() is None:
        return  # an error while showing an error: logged only
    _showing = True
    try:
        box = QMessageBox(QApplication.activeWindow())
        if isinstance(exc, UserInputError):
            box.setIcon(QMessageBox.Icon.Warning)
            box.setWindowTitle("PopMusicNet Studio")
            box.setText(str(exc))
        else:
            box.setIcon(QMessageBox.Icon.Critical)
            box.setWindowTitle("PopMusicNet Studio: internal error")
            box.setText(f"Something went wrong: {exc_type.__name__}: {exc}\n\n"
                        "Your work is autosaved. Details below (please include them in a report).")
            box.setDetailedText(text)
        box.exec()
    finally:
        _showing = False


def install() -> None:
    sys.excepthook = handle
