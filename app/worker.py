"""The background worker: a thin QThread adapter over the engine's job generators.

The GUI thread only paints and dispatches. A job is any callable
`make_events(cancel, host) -> Iterator[JobEvent]` (a removal, a batch, a download); it
runs on one long-lived worker thread that owns the `EngineHost`, so the network stays
loaded between jobs. Every event crosses the thread boundary as the same message type
(`JobEvent`, via a queued signal) and is handled in one place on the GUI side.
Cancellation is cooperative: each job gets its own `CancelToken`.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import weakref
from collections.abc import Callable, Iterator

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from engine.events import CancelToken, Failed, JobEvent
from engine.removal import EngineHost

log = logging.getLogger(__name__)

MakeEvents = Callable[[CancelToken, EngineHost], Iterator[JobEvent]]


class _Runner(QObject):
    """Lives on the worker thread; runs one job at a time."""

    event = Signal(int, object)  # job id, JobEvent
    finished = Signal(int)

    def __init__(self, host: EngineHost):
        super().__init__()
        self.host = host

    @Slot(int, object, object)
    def run(self, job_id: int, make_events: MakeEvents, cancel: CancelToken) -> None:
        try:
            for event in make_events(cancel, self.host):
                self.event.emit(job_id, event)
        except Exception as exc:  # noqa: BLE001 - a job must never kill the worker thread
            log.exception("job %d crashed", job_id)
            self.event.emit(job_id, Failed(f"Unexpected error: {exc}"))
        finally:
            self.finished.emit(job_id)


class Worker(QObject):
    """GUI-side handle: submit jobs, receive their events, cancel them."""

    event = Signal(int, object)  # job id, JobEvent (delivered on the GUI thread)
    finished = Signal(int)  # job id
    busyChanged = Signal(bool)
    _start = Signal(int, object, object)

    def __init__(self, host: EngineHost | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.host = host or EngineHost()
        self._ids = itertools.count(1)
        self._tokens: dict[int, CancelToken] = {}
        self._thread = QThread()
        self._thread.setObjectName("moebius-worker")
        self._runner = _Runner(self.host)
        self._runner.moveToThread(self._thread)
        self._start.connect(self._runner.run)
        self._runner.event.connect(self.event)
        self._runner.finished.connect(self._on_finished)
        self._thread.start()
        # However the process ends, stop the thread first: Qt aborts the whole process
        # when a running QThread is destroyed.
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        atexit.register(_stop_thread, weakref.ref(self))

    @property
    def busy(self) -> bool:
        return bool(self._tokens)

    def submit(self, make_events: MakeEvents) -> int:
        """Queue a job; returns its id. Jobs run one after another, in order."""
        job_id = next(self._ids)
        token = CancelToken()
        was_busy = self.busy
        self._tokens[job_id] = token
        self._start.emit(job_id, make_events, token)
        if not was_busy:
            self.busyChanged.emit(True)
        return job_id

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job, or all of them; they stop at their next step."""
        for jid, token in self._tokens.items():
            if job_id is None or jid == job_id:
                token.cancel()

    def worker_thread(self) -> QThread:
        return self._thread

    def _on_finished(self, job_id: int) -> None:
        self._tokens.pop(job_id, None)
        self.finished.emit(job_id)
        if not self.busy:
            self.busyChanged.emit(False)

    def shutdown(self, wait_ms: int = 30000) -> None:
        """Cancel what runs and stop the thread (called when the window closes)."""
        self.cancel()
        try:
            self._thread.quit()
            if not self._thread.wait(wait_ms):
                log.warning("worker thread did not stop in time")
        except RuntimeError:  # the C++ thread object is already gone
            pass


def _stop_thread(ref) -> None:
    worker = ref()
    if worker is not None:
        worker.shutdown(wait_ms=10000)
