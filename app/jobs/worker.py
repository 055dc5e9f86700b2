"""The background worker: a thin QThread adapter over the engine's job generators.

A job is any callable `make_events(cancel, host) -> Iterator[JobEvent]` (a removal, a
batch, a download). `Worker.submit` queues it on one long-lived worker thread that owns
the `EngineHost` (so the network stays loaded between jobs) and returns a `JobHandle`:
that job's events, and only that job's, arrive on the handle as typed signals on the GUI
thread. One message type (`JobEvent`) crosses the thread boundary. No Qt object crosses
it: the worker thread sees only the job's id, callable and CancelToken, and its queued
signal is routed to the handle on the GUI thread (so a handle is only ever touched, and
freed, there). Cancellation is cooperative: each handle has its own CancelToken.

Shutting down never waits for a job: the thread is told to stop after the current job
and is deleted (`deleteLater`) once it has finished; its runner is released then too.
Jobs check their token between steps, between the network's and the autoencoder's
blocks and between the parts of a model load, but one part (reading a weight file) cannot
be interrupted, so a job still in one is abandoned rather than waited for; the process
waits for such threads only when it exits (`wait_for_abandoned`).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import cast

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.events import CancelToken, Done, Failed, Item, JobEvent, Progress
from engine.removal.run import EngineHost

log = logging.getLogger(__name__)

MakeEvents = Callable[[CancelToken, EngineHost], Iterator[JobEvent]]

# Every worker thread with its runner: Python keeps both alive until the thread has
# finished (Qt aborts the process when a running QThread is destroyed, and the runner
# must not be freed while its thread may still use it).
_threads: dict[QThread, _Runner] = {}
_finishing: set[QThread] = set()  # told to stop after their queued jobs (Worker.finish)
_threads_lock = threading.Lock()


class JobHandle(QObject):
    """One submitted job. Its events arrive here, on the GUI thread, in order:
    `started`, then `progress`/`item` any number of times, then exactly one of `done`,
    `failed` or `cancelled`, then `finished`."""

    started = Signal()
    progress = Signal(object)  # Progress
    item = Signal(object)  # Item
    done = Signal(object)  # Done
    failed = Signal(object)  # Failed (an error)
    cancelled = Signal(object)  # Failed (cancelled by the person)
    finished = Signal()

    def __init__(self, job_id: int, description: str = ""):
        super().__init__()
        self.id = job_id
        self.description = description
        self.token = CancelToken()
        self.is_started = False
        self.is_finished = False
        self.outcome: Done | Failed | None = None

    @property
    def cancel_requested(self) -> bool:
        return self.token.cancelled

    def cancel(self) -> None:
        """Ask the job to stop at its next step (it then reports `cancelled`)."""
        self.token.cancel()

    def _dispatch(self, event: JobEvent) -> None:
        if isinstance(event, Progress):
            self.progress.emit(event)
        elif isinstance(event, Item):
            self.item.emit(event)
        elif isinstance(event, Done):
            self.outcome = event
            self.done.emit(event)
        elif isinstance(event, Failed):
            self.outcome = event
            (self.cancelled if event.cancelled else self.failed).emit(event)

    def _begin(self) -> None:
        self.is_started = True
        self.started.emit()

    def _end(self) -> None:
        self.is_finished = True
        self.finished.emit()


_BEGUN, _ENDED = "begun", "ended"  # what the runner says besides JobEvents


class _Runner(QObject):
    """Lives on the worker thread; runs one job at a time, in the order submitted."""

    said = Signal(int, object)  # job id, a JobEvent or _BEGUN / _ENDED

    def __init__(self, host: EngineHost):
        super().__init__()
        self.host = host

    @Slot(int, object, object)
    def run(self, job_id: int, make_events: MakeEvents, token: CancelToken) -> None:
        try:
            self.said.emit(job_id, _BEGUN)
            if token.cancelled:  # cancelled while it waited in the queue
                self.said.emit(job_id, Failed("Cancelled before it started.", cancelled=True))
                return
            for event in make_events(token, self.host):
                self.said.emit(job_id, event)
        except Exception as exc:  # noqa: BLE001 - a job must never kill the worker thread
            log.exception("job %d crashed", job_id)
            self.said.emit(job_id, Failed(f"Unexpected error: {exc}"))
        finally:
            self.said.emit(job_id, _ENDED)


class Worker(QObject):
    """Submit jobs to the background thread; each gets a JobHandle."""

    busyChanged = Signal(bool)
    _start = Signal(int, object, object)

    def __init__(self, host: EngineHost | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.host = host or EngineHost()
        self._ids = itertools.count(1)
        self._handles: list[JobHandle] = []
        self._thread: QThread | None = QThread()
        self._thread.setObjectName("moebius-worker")
        self._runner = _Runner(self.host)
        self._runner.moveToThread(self._thread)
        self._thread.finished.connect(self._thread.deleteLater)
        self._start.connect(self._runner.run)
        self._runner.said.connect(self._route)  # queued: the runner is on the worker thread
        self._thread.start()
        with _threads_lock:
            _prune()
            _threads[self._thread] = self._runner

    @property
    def busy(self) -> bool:
        return bool(self._handles)

    def submit(self, make_events: MakeEvents, description: str = "") -> JobHandle:
        """Queue a job; jobs run one after another, in order."""
        if self._thread is None:
            raise RuntimeError("the worker has been shut down")
        handle = JobHandle(next(self._ids), description)
        was_busy = self.busy
        self._handles.append(handle)
        self._start.emit(handle.id, make_events, handle.token)
        if not was_busy:
            self.busyChanged.emit(True)
        return handle

    def cancel_all(self) -> None:
        for handle in self._handles:
            handle.cancel()

    @Slot(int, object)
    def _route(self, job_id: int, what: object) -> None:
        handle = next((h for h in self._handles if h.id == job_id), None)
        if handle is None:
            return
        if what is _BEGUN:
            handle._begin()
        elif what is _ENDED:
            self._handles.remove(handle)
            handle._end()
            if not self.busy:
                self.busyChanged.emit(False)
        else:
            handle._dispatch(cast(JobEvent, what))

    def finish(self) -> None:
        """Let the jobs already submitted run to their end, then stop; returns at once.

        For work that must not be lost (the edit history's last save when a window
        closes): unlike `shutdown`, nothing is cancelled. The thread stops itself after
        the last queued job, so a process that waits for its threads (`wait_for_abandoned`)
        lets them finish."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with _threads_lock:
            _finishing.add(thread)
        self._start.emit(0, _stop_thread, CancelToken())

    def shutdown(self) -> None:
        """Cancel every job and let the thread end on its own; returns at once.

        The thread stops after its current job checks its cancel token (a part of a model
        load in progress runs to its end first); it is then deleted with deleteLater."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self.cancel_all()
        thread.quit()  # leaves its event loop once the running job returns


def _stop_thread(cancel: CancelToken, host: EngineHost) -> Iterator[JobEvent]:
    """The last job `Worker.finish` queues: it ends the thread's event loop, which leaves
    once this job returns (so every job queued before it has run)."""
    thread = QThread.currentThread()
    if thread is not None:
        thread.quit()
    return iter(())


def _finished(thread: QThread) -> bool:
    try:
        return thread.isFinished()
    except RuntimeError:  # deleted by deleteLater: it had finished
        return True


def _prune() -> None:
    for thread in [t for t in _threads if _finished(t)]:
        del _threads[thread]
        _finishing.discard(thread)


def wait_for_abandoned(timeout_ms: int) -> bool:
    """At process exit, with no window left: stop every worker thread and wait for them;
    True if none is left running."""
    with _threads_lock:
        threads = list(_threads)
    ok = True
    for thread in threads:
        try:
            if thread not in _finishing:  # those stop themselves after their last job
                thread.quit()
            ok = thread.wait(timeout_ms) and ok
        except RuntimeError:  # already deleted: it had finished
            pass
    with _threads_lock:
        _prune()
    return ok


atexit.register(wait_for_abandoned, 60_000)
