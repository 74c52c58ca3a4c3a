"""Background work for the GUI: it never waits on inference, rendering or model loading.

Two shapes, as python-sounddevice's rec_gui does it: a one-shot job (`Job`, run on Qt's thread
pool, result delivered by a queued signal into the GUI thread) and a latest-value worker
(`LatestValueWorker`, for sliders: while it computes, newer requests replace older ones, so only
the newest value is ever decoded next).
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(object)  # the exception
    progress = Signal(float)


class Job(QRunnable):
    """Runs `fn(*args, **kwargs)` off the GUI thread. Connect to `.signals` before `start()`.

    If `fn` accepts a `progress` keyword, pass `progress=job.report` to get `signals.progress`.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # Python keeps it alive until it finished (see _running)
        self.signals = _Relay()
        self._fn, self._args, self._kwargs = fn, args, kwargs

    def report(self, fraction: float) -> None:
        self.signals.progress.emit(float(fraction))

    def run(self) -> None:
        try:
            try:
                result = self._fn(*self._args, **self._kwargs)
            except BaseException as exc:  # delivered to the GUI, which shows it
                exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
                self.signals.failed.emit(exc)
            else:
                self.signals.done.emit(result)
        except RuntimeError:  # the app is quitting and the relay is gone: nobody to tell
            log.debug("job finished after shutdown", exc_info=True)
        finally:
            _running.discard(self)

    def start(self) -> Job:
        _running.add(self)
        QThreadPool.globalInstance().start(self)
        return self


_running: set[Job] = set()


def run_in_thread(fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], None],
                  on_error: Callable[[BaseException], None],
                  on_progress: Callable[[float], None] | None = None, **kwargs: Any) -> Job:
    """Run `fn` off the GUI thread. With `on_progress`, `fn` gets `progress=<callable(0..1)>`
    whose reports arrive in `on_progress` on the GUI thread."""
    job = Job(fn, *args, **kwargs)
    job.signals.done.connect(on_done)
    job.signals.failed.connect(on_error)
    if on_progress is not None:
        job.signals.progress.connect(on_progress)
        job._kwargs["progress"] = job.report
    return job.start()


class LatestValueWorker(QObject):
    """A thread that computes `fn(value)` for the newest submitted value only.

    `submit()` never blocks: it overwrites a one-slot mailbox. Results arrive through `done`
    (queued into the GUI thread) tagged with the value they were computed for.
    """

    done = Signal(object, object)  # value, result
    failed = Signal(object, object)  # value, exception

    def __init__(self, fn: Callable[[Any], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._cond = threading.Condition()
        self._pending: tuple[Any] | None = None
        self._stopped = False
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name="latest-value-worker",
                                        daemon=True)
        self._thread.start()

    def submit(self, value: Any) -> None:
        with self._cond:
            self._pending = (value,)
            self._cond.notify()

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._pending is None and not self._busy

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                (value,), self._pending = self._pending, None
                self._busy = True
            try:
                result = self._fn(value)
            except Exception as exc:  # reported, the worker survives
                log.warning("worker failed for %r: %s", value, exc)
                self.failed.emit(value, exc)
            else:
                self.done.emit(value, result)
            finally:
                with self._cond:
                    self._busy = False
