"""Keeping the open photo's edit history on disk, so it survives a restart or a crash.

The engine's `PhotoJournal` (engine/document/journal.py) does the file work; this module
decides when, and runs it on a background `Worker` so the GUI thread never waits for a
disk. The GUI thread only takes snapshots of the undo stack (tuples of the immutable
patches it already holds) and submits jobs, which run one at a time in order:

- opening a photo: hash its file, read its journal, and when one matches restore it
  (silently: the photo comes back as it was, with Undo and Redo), bound the disk use;
- every `interval_ms` while it is being edited, and when it closes: write what changed;
- saving it to a file: the journal moves to that file's hash, starting at the saved state.

The journal object of a photo lives in a `_Journaled` box that only the background thread
reads or writes (jobs run there one after another), so no lock is needed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.jobs.worker import JobHandle, Worker
from app.open_photo import OpenPhoto
from engine.document.history_store import HistoryStore, file_digest
from engine.document.journal import HistorySnapshot, PhotoInfo, PhotoJournal, SavedHistory
from engine.events import Done, Failed, JobEvent

log = logging.getLogger(__name__)

AUTOSAVE_MS = 2000  # a crash loses at most this much editing (plus one write)
START_DELAY_MS = 150  # after a photo opens, before its file is hashed (first frame first)


@dataclass
class _Journaled:
    """A photo's journal; touched only by jobs on the background thread."""

    info: PhotoInfo
    journal: PhotoJournal | None = None


@dataclass(frozen=True)
class Found:
    key: str
    saved: SavedHistory | None


class HistoryKeeper(QObject):
    restored = Signal(object, str)  # photo, a status-bar message

    def __init__(self, worker: Worker, store: HistoryStore | None = None,
                 parent: QObject | None = None, interval_ms: int = AUTOSAVE_MS):
        super().__init__(parent)
        self.worker = worker
        self.store = store or HistoryStore()
        self._boxes: dict[int, _Journaled] = {}  # id(photo) -> its box
        self._photo: OpenPhoto | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._autosave)

    # -- the open photo -------------------------------------------------------------------

    def photo_opened(self, photo: OpenPhoto) -> None:
        """Find the photo's history in the background; restore it when it matches."""
        self._photo = photo
        pixels = photo.document.pixels
        name = photo.path.name if photo.path else "Untitled"
        box = self._boxes[id(photo)] = _Journaled(PhotoInfo(name, pixels.shape,
                                                            pixels.dtype.name))
        photo.history.indexChanged.connect(self._edited)
        photo.history.cleanChanged.connect(self._edited)
        if photo.path is None:
            return  # no file yet: the journal starts when it is saved
        try:
            stamp = _stamp(os.stat(photo.path))
        except OSError:
            return
        # Hashing holds the GIL in short bursts: start once the photo's first frame is drawn.
        QTimer.singleShot(START_DELAY_MS, lambda: self._identify(photo, box, stamp))

    def _identify(self, photo: OpenPhoto, box: _Journaled, stamp: tuple[int, int]) -> None:
        if photo.closed or photo.path is None:
            return
        handle = self._submit(_identify(self.store, box, photo.path, stamp),
                              f"history of {photo.name}")
        handle.done.connect(lambda event, photo=photo: self._found(photo, event.result))

    def photo_closing(self, photo: OpenPhoto) -> None:
        """Write the last edits. Closing with unsaved changes the person chose to discard
        keeps them to Redo, but the photo reopens as it is on disk."""
        box = self._boxes.pop(id(photo), None)
        if photo is self._photo:
            self._photo = None
            self._timer.stop()
        if box is None:
            return
        photo.history.indexChanged.disconnect(self._edited)
        photo.history.cleanChanged.disconnect(self._edited)
        snapshot = photo.history.snapshot()
        discarded = photo.is_modified and snapshot.clean >= 0
        self._submit(_sync(box, snapshot, snapshot.clean if discarded else None),
                     "history: last save")

    def photo_saved(self, photo: OpenPhoto, path: Path) -> None:
        """The photo was saved to `path` (and is clean): its journal follows that file."""
        box = self._boxes.get(id(photo))
        if box is None:
            return
        snapshot = photo.history.snapshot()
        mask = photo.document.mask
        painted = np.array(mask.array) if mask.any() else None
        handle = self._submit(_rekey(self.store, box, Path(path), snapshot, painted),
                              "history: saved file")
        handle.done.connect(lambda event, photo=photo: self._rekeyed(photo, event.result))

    def finish(self) -> None:
        """The window closes: let the queued writes end, then stop the worker."""
        self._timer.stop()
        self.worker.finish()

    # -- disk use -------------------------------------------------------------------------

    def usage(self) -> int:
        return self.store.usage()

    def clear(self) -> JobHandle:
        """Forget every history on disk, the open photo's too (written again once saved)."""
        boxes = list(self._boxes.values())
        return self._submit(_clear(self.store, boxes), "history: clear")

    # -- internals ------------------------------------------------------------------------

    def _submit(self, make_events, description: str) -> JobHandle:
        return self.worker.submit(make_events, description)

    @Slot()
    def _edited(self) -> None:
        if self._photo is not None and not self._timer.isActive():
            self._timer.start()

    @Slot()
    def _autosave(self) -> None:
        photo = self._photo
        box = self._boxes.get(id(photo)) if photo is not None else None
        if photo is None or box is None or photo.closed:
            return
        self._submit(_sync(box, photo.history.snapshot(), None), "history: autosave")

    def _found(self, photo: OpenPhoto, found: Found | None) -> None:
        if photo.closed or found is None:
            return
        photo.set_identity(found.key)
        if found.saved is None:
            return
        box = self._boxes.get(id(photo))
        count = photo.restore_history(found.saved)
        if count == 0 and box is not None:  # edited already: the new edits start afresh
            self._submit(_restart(box), "history: restart")
            return
        note = f" ({found.saved.damaged})" if found.saved.damaged else ""
        self.restored.emit(photo, f"Restored {count} step(s) of your last session on "
                                  f"{photo.name}: Undo and Redo work as before{note}.")

    def _rekeyed(self, photo: OpenPhoto, key: str) -> None:
        if not photo.closed:
            photo.set_identity(key)


def _stamp(st: os.stat_result) -> tuple[int, int]:
    return st.st_size, st.st_mtime_ns


# -- jobs (they run on the background worker; no Qt objects in them) ---------------------


def _job(work: Callable[[], object], what: str):
    """A job callable running `work()`: Done(its value), or Failed with one log line when
    the disk refuses (full, read-only, gone); the photo itself is never affected."""

    def make_events(cancel, host) -> Iterator[JobEvent]:
        try:
            yield Done(work())
        except OSError as exc:
            log.warning("edit history: could not %s: %s", what, exc)
            yield Failed(f"Could not {what}: {exc}")

    return make_events


def _identify(store: HistoryStore, box: _Journaled, path: Path, stamp: tuple[int, int]):
    def work() -> Found | None:
        key = file_digest(path)
        if _stamp(os.stat(path)) != stamp:  # changed since it was opened: not this photo
            log.info("%s changed on disk since it was opened: no history", path.name)
            return None
        box.journal, saved = PhotoJournal.open(store, key, box.info)
        store.enforce_limit(keep={key})
        return Found(key, saved)

    return _job(work, f"read the history of {path.name}")


def _sync(box: _Journaled, snapshot: HistorySnapshot, index: int | None):
    def work() -> None:
        if box.journal is not None:
            box.journal.sync(snapshot, index)

    return _job(work, f"save the history of {box.info.name}")


def _rekey(store: HistoryStore, box: _Journaled, path: Path, snapshot: HistorySnapshot,
           mask: np.ndarray | None):
    def work() -> str:
        key = file_digest(path)
        box.info.name = path.name
        if box.journal is None:
            box.journal = PhotoJournal(store, key, box.info)
        box.journal.rekey(key, snapshot, mask)
        store.enforce_limit(keep={key})
        return key

    return _job(work, f"move the history to {path.name}")


def _restart(box: _Journaled):
    def work() -> None:
        if box.journal is not None:
            box.journal.restart()

    return _job(work, f"restart the history of {box.info.name}")


def _clear(store: HistoryStore, boxes: list[_Journaled]):
    def work() -> int:
        for box in boxes:
            if box.journal is not None:
                box.journal.forget()
        store.clear()
        return store.usage()

    return _job(work, "clear the histories")
