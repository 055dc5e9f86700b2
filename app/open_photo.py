"""`OpenPhoto`: one open photo and everything that belongs to it.

The picture as it was opened (for faithful saving), its path, the document (pixels +
mask), the undo history, the saved/unsaved state, and the jobs started on it. A removal's
result can only be applied here, to the photo whose job made it: the job's handle is
adopted by this photo, and closing the photo cancels its jobs and refuses late results.

Qt-light: a QObject for its signals and a QUndoStack for the history, no widgets, so it
is tested without a window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shiboken6
from PySide6.QtCore import QObject, Signal, Slot

from app.history import CompositeEditCommand, HistoryStack, PatchCommand
from app.jobs.worker import JobHandle
from engine.document.box import Box
from engine.document.document import Document
from engine.document.journal import SavedHistory
from engine.imageio.files import LoadedImage, load_image
from engine.imageio.loaded import untitled
from engine.removal.job import RemovalJob, RemovalResult
from engine.removal.settings import RemovalSettings
from engine.removal.suggest import Suggestion

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Choice:
    """Candidates of one removal (and of its *Try again*s), one of them shown."""

    handle: JobHandle  # the job that made the first ones (apply_removal checks it)
    job: RemovalJob
    candidates: list[RemovalResult]
    name: str  # the undo step's name once one is kept
    index: int = 0

    @property
    def current(self) -> RemovalResult:
        return self.candidates[self.index]


class OpenPhoto(QObject):
    # A removal changed (or undo/redo restored) pixels and/or the mask: boxes to redraw.
    regionChanged = Signal(object, object)  # image box | None, mask box | None
    jobsChanged = Signal()  # a job of this photo started or finished
    pathChanged = Signal()
    identified = Signal(str)  # the SHA-256 of its file is known (or changed with a save)
    choiceChanged = Signal()  # variations were offered, another was chosen, or it ended

    def __init__(self, document: Document, loaded: LoadedImage | None = None,
                 path: Path | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.document = document
        self.loaded = loaded  # what was opened: format, metadata, original pixels
        self.path = path
        self.history = HistoryStack(self)
        self.confirmed_overwrite = False  # Save over the opened file asked once per photo
        self.closed = False
        self._jobs: list[JobHandle] = []  # running or queued
        self._job_ids: set[int] = set()  # every job ever started on this photo
        self._last_removal: tuple[RemovalJob, PatchCommand] | None = None
        self._saved_pixels: object | None = None  # history's pixel token when last saved
        self.content_hash: str | None = None  # SHA-256 of the file, found in the background
        self.suggestion: Suggestion | None = None  # the fine-tune its faces call for
        # Variations of a removal waiting for the person to pick one: shown over the
        # photo, never written into it until accepted.
        self.choice: Choice | None = None

    @classmethod
    def open(cls, path: Path, parent: QObject | None = None) -> OpenPhoto:
        """Read a photo file (ImageFileError if it cannot be read)."""
        loaded = load_image(path)
        document = Document(np.array(loaded.pixels))  # the document owns a writable copy
        return cls(document, loaded, Path(path), parent)

    @classmethod
    def untitled(cls, pixels: np.ndarray, parent: QObject | None = None) -> OpenPhoto:
        """A picture that comes from no file (pasted): unsaved until Save gives it a name."""
        photo = cls(Document(np.array(pixels)), untitled(pixels), None, parent)
        photo.history.resetClean()  # nothing on disk holds it: closing asks to save
        return photo

    # -- state ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.path.name if self.path else "Untitled"

    @property
    def alive(self) -> bool:
        """False once Qt has freed the photo's objects (as the process ends): signals that
        arrive then must not touch them."""
        return shiboken6.isValid(self) and shiboken6.isValid(self.history)

    @property
    def is_modified(self) -> bool:
        """Unsaved changes to the pixels. A painted mask alone is not a change to save, and
        undoing a removal back to the saved pixels leaves nothing unsaved. A picture that
        came from no file (pasted) is unsaved until it has one."""
        if not self.alive:
            return False  # nothing left to save
        if self.path is None:
            return True
        clean = self.history.cleanIndex()
        saved = self.history.pixels_at(clean) if clean >= 0 else self._saved_pixels
        return self.history.pixels_at(self.history.index()) is not saved

    @property
    def original_pixels(self) -> np.ndarray | None:
        return self.loaded.pixels if self.loaded is not None else None

    def set_path(self, path: Path) -> None:
        self.path = path
        self.pathChanged.emit()

    def mark_saved(self) -> None:
        self._saved_pixels = self.history.pixels_at(self.history.index())
        self.history.setClean()

    def set_identity(self, content_hash: str) -> None:
        self.content_hash = content_hash
        self.identified.emit(content_hash)

    def restore_history(self, saved: SavedHistory) -> int:
        """Rebuild the edits of an earlier session (read from the journal) on this photo,
        freshly opened from the same file, with undo and redo as they were; returns the
        number of steps. Refused (0) once the photo has been edited."""
        doc = self.document
        if self.closed or self.history.count() or doc.mask.stroke_active or doc.mask.any():
            return 0
        saved.rebuild(doc)
        commands = saved.steps[saved.undoable_from :]
        clean = saved.file_at - saved.undoable_from if not saved.detour else -1
        if clean < 0:
            self.history.resetClean()
        for i, (edit, text) in enumerate(
                zip(commands, saved.texts[saved.undoable_from :], strict=True), start=1):
            self.history.push(CompositeEditCommand(doc, edit, text, self._region_changed))
            if i == clean:
                self.history.setClean()
        self.history.setIndex(saved.index)
        whole = (0, 0, doc.width, doc.height)
        self._region_changed(whole, whole)
        return len(commands)

    # -- jobs -----------------------------------------------------------------------------

    def snapshot(self, settings: RemovalSettings) -> RemovalJob:
        """A removal job of the photo as it is now: painting (and undo) stay possible
        while the job runs, because the job holds copies."""
        return RemovalJob(np.array(self.document.pixels),
                          np.array(self.document.mask.array, dtype=bool), settings)

    def adopt(self, handle: JobHandle) -> None:
        """`handle` is a job started on this photo: it is cancelled when the photo closes."""
        if self.closed:
            handle.cancel()
            return
        self._jobs.append(handle)
        self._job_ids.add(handle.id)
        handle.finished.connect(self._job_finished)
        self.jobsChanged.emit()

    def jobs(self) -> list[JobHandle]:
        return [h for h in self._jobs if not h.is_finished]

    @property
    def busy(self) -> bool:
        return bool(self.jobs())

    def owns(self, handle: JobHandle) -> bool:
        return handle.id in self._job_ids

    @Slot()
    def _job_finished(self) -> None:
        self._jobs = [h for h in self._jobs if not h.is_finished]
        self.jobsChanged.emit()

    def close(self) -> None:
        """Cancel this photo's jobs; their results will never be applied anywhere."""
        self.closed = True
        for handle in self._jobs:
            handle.cancel()
        self._last_removal = None
        self.choice = None

    # -- removal results ------------------------------------------------------------------

    def apply_removal(self, handle: JobHandle, job: RemovalJob, result: RemovalResult,
                      name: str) -> bool:
        """Write `result` into this photo as one undoable step, clearing the mask the job
        removed (strokes painted meanwhile stay). Refused (False) when the job is not this
        photo's or the photo is closed."""
        if self.closed or not self.owns(handle):
            log.warning("a removal result for another photo was refused")
            return False
        if job.image.shape != self.document.pixels.shape:
            log.warning("a removal result of another size was refused")
            return False
        edit = self.document.replace_region(result.box, result.pixels, job.mask)
        if edit is None:
            return False
        command = CompositeEditCommand(self.document, edit, name, self._region_changed)
        self.history.push(command)
        self._region_changed(edit.image and edit.image.bbox, edit.mask and edit.mask.bbox)
        self._last_removal = (job, command)
        return True

    # -- variations to choose from ------------------------------------------------------

    def offer(self, handle: JobHandle, job: RemovalJob, result: RemovalResult, name: str,
              adding_to: Choice | None = None) -> bool:
        """Show the candidates of `result` for the person to pick one; the photo itself
        does not change until `accept_choice`. With `adding_to` (the choice a *Try again*
        started from, still open) the candidates join it. Refused like apply_removal."""
        if self.closed or not self.owns(handle) or job.image.shape != self.document.pixels.shape:
            log.warning("variations for another photo were refused")
            return False
        if adding_to is not None and adding_to is self.choice:
            first = len(adding_to.candidates)
            adding_to.candidates.extend(result.candidates)
            adding_to.index = first  # show the first new one
        else:
            self.choice = Choice(handle, job, list(result.candidates), name)
        self.choiceChanged.emit()
        return True

    def choose(self, index: int) -> None:
        """Show candidate `index` (clamped to the strip)."""
        if self.choice is None:
            return
        index = max(0, min(index, len(self.choice.candidates) - 1))
        if index != self.choice.index:
            self.choice.index = index
            self.choiceChanged.emit()

    def accept_choice(self) -> bool:
        """Keep the shown candidate: one undoable step, like a single removal."""
        choice, self.choice = self.choice, None
        if choice is None:
            return False
        applied = self.apply_removal(choice.handle, choice.job, choice.current, choice.name)
        self.choiceChanged.emit()
        return applied

    def discard_choice(self) -> bool:
        """Drop every candidate; the photo stays as it was (mask included)."""
        if self.choice is None:
            return False
        self.choice = None
        self.choiceChanged.emit()
        return True

    def _region_changed(self, image_box: Box | None, mask_box: Box | None) -> None:
        self.regionChanged.emit(image_box, mask_box)

    def last_removal(self) -> RemovalJob | None:
        """The job of the newest step in the history when that step is a removal (what
        *Try again* re-runs), else None."""
        if self._last_removal is None:
            return None
        job, command = self._last_removal
        index = self.history.index()
        return job if index > 0 and self.history.command(index - 1) is command else None
