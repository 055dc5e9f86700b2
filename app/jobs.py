"""The removal workflow on the GUI side: build a job from the canvas and settings, run
it on the worker, report progress, apply the result as one undoable step.

All job events arrive in `_on_event`, on the GUI thread; nothing else touches results.
"""

from __future__ import annotations

import logging
import random
from dataclasses import replace

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.settings import Settings
from app.worker import Worker
from engine.events import Done, Failed, Progress
from engine.progress_bar import Eta, format_eta
from engine.removal import RemovalJob, run_removal

log = logging.getLogger(__name__)


class RemovalController(QObject):
    started = Signal()
    progress = Signal(float, str)  # fraction, "Removing… step 7/19 · ETA 0:42"
    finished = Signal(str)  # a status-bar message
    failed = Signal(str, bool, str)  # message, cancelled, error kind ("WeightsMissing", ...)
    deviceChanged = Signal(str)  # e.g. "CPU fp32"

    def __init__(self, canvas, worker: Worker, settings: Settings, parent=None):
        super().__init__(parent)
        self.canvas, self.worker, self.settings = canvas, worker, settings
        self._job_id: int | None = None
        self._job: RemovalJob | None = None
        self._eta = Eta()
        self._last: tuple[RemovalJob, object] | None = None  # (job, its undo command)
        worker.event.connect(self._on_event)
        worker.finished.connect(self._on_finished)

    @property
    def running(self) -> bool:
        return self._job_id is not None

    def engine_options(self) -> dict:
        s = self.settings
        choice = s.engine_choice
        engine = "quick" if choice == "quick" else "moebius"
        seed = s.seed if s.seed >= 0 else random.randrange(2**31)
        return dict(engine=engine, model=choice if engine == "moebius" else "ft_places2",
                    steps=s.steps, guidance=s.guidance, seed=seed, device=s.device,
                    quality=s.quality, colour_match=s.colour_match)

    def start(self) -> str | None:
        """Start removing what the mask marks; returns why it cannot, or None."""
        doc = self.canvas.document()
        if doc is None:
            return "Open a photo first."
        if self.running:
            return "A removal is already running."
        if not doc.mask.any():
            return "Paint over what should disappear first."
        # Snapshots: painting (and undo) stay possible while the job runs.
        job = RemovalJob(np.array(doc.pixels), np.array(doc.mask.array, dtype=bool),
                         **self.engine_options())
        self._submit(job)
        return None

    def try_again(self) -> str | None:
        """Undo the last removal and run it again with a new seed."""
        if self.running:
            return "A removal is already running."
        if not self.can_try_again():
            return "Nothing to try again: make a removal first."
        job, _ = self._last
        self.canvas.undo()
        self._submit(replace(job, seed=random.randrange(2**31)))
        return None

    def can_try_again(self) -> bool:
        if self._last is None:
            return False
        history = self.canvas.history
        index = history.index()
        return index > 0 and history.command(index - 1) is self._last[1]

    def cancel(self) -> None:
        if self._job_id is not None:
            self.worker.cancel(self._job_id)

    def _submit(self, job: RemovalJob) -> None:
        self._job = job
        self._eta = Eta()
        self._job_id = self.worker.submit(lambda cancel, host: run_removal(job, cancel, host))
        self.started.emit()

    def _on_event(self, job_id: int, event) -> None:
        if job_id != self._job_id:
            return
        if isinstance(event, Progress):
            self.progress.emit(event.fraction, self._progress_text(event))
        elif isinstance(event, Done):
            self._job_id = None  # over as far as the GUI is concerned
            self._apply(event.result)
        elif isinstance(event, Failed):
            self._job_id = None
            self.failed.emit(event.message, event.cancelled, event.error)

    def _progress_text(self, event: Progress) -> str:
        text = event.message
        if event.stage == "denoising" and event.total > 1:
            text += f" step {event.step}/{event.total}"
        eta = self._eta.remaining(event.fraction, event.stage)
        if eta is not None:
            text += f" · about {format_eta(eta)} left"
        return text

    def _apply(self, result) -> None:
        job = self._job
        name = "Remove object" if result.regions == 1 else f"Remove {result.regions} objects"
        applied = self.canvas.applyRemoval(result.box, result.pixels, name, cleared=job.mask)
        history = self.canvas.history
        command = history.command(history.index() - 1) if applied else None
        self._last = (job, command) if applied else None
        self.deviceChanged.emit(result.engine)
        self.finished.emit(f"Removed in {result.seconds:.1f} s with {result.engine} "
                           f"(seed {result.seed}).")

    def _on_finished(self, job_id: int) -> None:
        if job_id == self._job_id:
            self._job_id = None
