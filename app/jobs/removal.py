"""The removal workflow on the GUI side: snapshot the open photo into a job, run it on
the worker, report progress, and apply the result to that same photo as one undoable step.

Each submitted removal is a `RemovalRun`: the photo that started it, the job, and the
worker's handle, with bound slots for the handle's signals. A result goes to the run's own
photo (`OpenPhoto.apply_removal`), never to whatever photo is on screen by then.
"""

from __future__ import annotations

import logging
import random

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.jobs.worker import JobHandle, Worker
from app.open_photo import Choice, OpenPhoto
from app.settings import Settings
from engine.eta import Estimate, ProgressEstimator, format_eta
from engine.events import Done, Failed, Preview, Progress
from engine.removal.job import RemovalJob, RemovalResult
from engine.removal.run import run_removal

log = logging.getLogger(__name__)


class RemovalRun(QObject):
    """One removal job of one photo, from submit to its last event."""

    def __init__(self, controller: RemovalController, photo: OpenPhoto, job: RemovalJob,
                 handle: JobHandle, adding_to: Choice | None = None):
        super().__init__(controller)
        self.controller, self.photo, self.job, self.handle = controller, photo, job, handle
        self.adding_to = adding_to  # the open choice a Try again adds candidates to
        self.cost_key = cost_key(job)
        self.estimator = ProgressEstimator(controller.settings.stage_costs(self.cost_key))
        self.last_event: Progress | None = None
        handle.progress.connect(self._on_progress)
        handle.done.connect(self._on_done)
        handle.failed.connect(self._on_failed)
        handle.cancelled.connect(self._on_cancelled)
        handle.finished.connect(self._on_finished)
        photo.adopt(handle)

    @property
    def visible(self) -> bool:
        """Events of a closed photo's job are not shown (it was cancelled with the photo)."""
        return not self.photo.closed

    @property
    def showing_progress(self) -> bool:
        return (self.visible and self.last_event is not None
                and not self.handle.cancel_requested)

    @Slot(object)
    def _on_progress(self, event: Progress) -> None:
        self.estimator.update(event)
        self.last_event = event
        self.show_progress()
        if isinstance(event, Preview) and self.visible and not self.handle.cancel_requested:
            self.controller.preview.emit(self.photo, event.patches)

    def show_progress(self) -> None:
        """Emit where the job stands now (also between events: a step takes seconds)."""
        if self.showing_progress:
            estimate = self.estimator.estimate()
            self.controller.progress.emit(estimate.fraction, self._text(estimate))

    def _text(self, estimate: Estimate) -> str:
        event = self.last_event
        assert event is not None
        text = event.message
        if event.stage == "denoising" and event.total > 1:
            text += f" step {event.step}/{event.total}"
        if estimate.remaining is not None:
            left = estimate.remaining
            text += " · almost done" if left < 3 else f" · about {format_eta(left)} left"
        return text

    @Slot(object)
    def _on_done(self, event: Done) -> None:
        # What each stage took here makes the next job's first estimate right.
        self.controller.settings.set_stage_costs(self.cost_key, self.estimator.costs())
        result: RemovalResult = event.result
        name = "Remove object" if result.regions == 1 else f"Remove {result.regions} objects"
        self.controller.previewEnded.emit(self.photo)  # the exact result replaces it
        if len(result.candidates) > 1 or self.adding_to is not None:
            if not self.photo.offer(self.handle, self.job, result, name, self.adding_to):
                return
            self.controller.deviceChanged.emit(result.engine)
            self.controller.finished.emit(
                f"{len(result.candidates)} fills in {result.seconds:.1f} s: click one or use "
                "← →; Enter keeps it, Esc keeps none, Try again adds more.")
            return
        if not self.photo.apply_removal(self.handle, self.job, result, name):
            return
        self.controller.deviceChanged.emit(result.engine)
        self.controller.finished.emit(f"Removed in {result.seconds:.1f} s with "
                                      f"{result.engine} (seed {result.seed}).")

    @Slot(object)
    def _on_failed(self, event: Failed) -> None:
        if self.visible:
            self.controller.failed.emit(event)

    @Slot(object)
    def _on_cancelled(self, event: Failed) -> None:
        if self.visible:
            self.controller.failed.emit(event)

    @Slot()
    def _on_finished(self) -> None:
        self.controller.previewEnded.emit(self.photo)
        self.controller._run_finished(self)


def cost_key(job: RemovalJob) -> str:
    """Jobs whose stages cost the same on one machine: engine, device and precision."""
    s = job.settings
    return str(s.engine) if s.deterministic else f"{s.engine}-{s.device}-{s.quality}"


class RemovalController(QObject):
    started = Signal()
    progress = Signal(float, str)  # fraction, "Removing… step 7/19 · about 0:42 left"
    finished = Signal(str)  # a status-bar message
    failed = Signal(object)  # Failed (check .cancelled and .error)
    ended = Signal()  # a job of the shown photo ended, whatever the outcome
    deviceChanged = Signal(str)  # e.g. "Moebius ft_places2 · CPU fp32"
    preview = Signal(object, object)  # photo, PreviewPatch tuple: the fill as it forms
    previewEnded = Signal(object)  # photo: its preview is over (result, cancel or failure)

    TICK_MS = 250  # how often the bar and time left move between a job's events

    def __init__(self, worker: Worker, settings: Settings, parent: QObject | None = None):
        super().__init__(parent)
        self.worker, self.settings = worker, settings
        self._runs: list[RemovalRun] = []
        self._ticker = QTimer(self)
        self._ticker.setInterval(self.TICK_MS)
        self._ticker.timeout.connect(self._tick)

    def running(self, photo: OpenPhoto | None) -> bool:
        """True while a removal of `photo` is queued or running."""
        return any(r.photo is photo for r in self._runs)

    def start(self, photo: OpenPhoto | None) -> str | None:
        """Start removing what the photo's mask marks; returns why it cannot, or None."""
        if photo is None:
            return "Open a photo first."
        if self.running(photo):
            return "A removal is already running."
        if not photo.document.mask.any():
            return "Paint over what should disappear first."
        self._submit(photo, photo.snapshot(self.settings.removal_settings()))
        return None

    def can_try_again(self, photo: OpenPhoto | None) -> bool:
        """A removal to re-run, with an engine whose result depends on the seed (Quick's
        would come out the same)."""
        if photo is not None and photo.choice is not None:
            return True
        job = photo.last_removal() if photo is not None else None
        return job is not None and not job.settings.deterministic

    def try_again(self, photo: OpenPhoto | None) -> str | None:
        """Undo the photo's last removal and run it again with a new seed."""
        if photo is None or self.running(photo):
            return "A removal is already running." if photo else "Open a photo first."
        choice = photo.choice
        if choice is not None:  # more candidates for the strip, nothing undone
            self._submit(photo, choice.job.with_seed(random.randrange(2**31)), choice)
            return None
        job = photo.last_removal()
        if job is None:
            return "Nothing to try again: make a removal first."
        if job.settings.deterministic:
            return "Quick gives the same result every time; try a Moebius fine-tune."
        photo.history.undo()
        self._submit(photo, job.with_seed(random.randrange(2**31)))
        return None

    def cancel(self, photo: OpenPhoto | None) -> bool:
        """Ask the photo's removals to stop; True if one was running. They stop at the
        next step or block of the network (or between the parts of a model load)."""
        runs = [run for run in self._runs if run.photo is photo]
        for run in runs:
            run.handle.cancel()
        return bool(runs)

    def _submit(self, photo: OpenPhoto, job: RemovalJob,
                adding_to: Choice | None = None) -> None:
        previews = self.settings.live_preview
        handle = self.worker.submit(_removal_events(job, previews), f"removal on {photo.name}")
        self._runs.append(RemovalRun(self, photo, job, handle, adding_to))
        self._ticker.start()
        self.started.emit()

    @Slot()
    def _tick(self) -> None:
        for run in self._runs:
            run.show_progress()

    def _run_finished(self, run: RemovalRun) -> None:
        self._runs.remove(run)
        run.deleteLater()
        if not self._runs:
            self._ticker.stop()
        if run.visible:
            self.ended.emit()


def _removal_events(job: RemovalJob, previews: bool = False):
    """The worker's job callable for one removal (no closure over GUI objects)."""

    def make_events(cancel, host):
        return run_removal(job, cancel, host, previews=previews)

    return make_events
