"""Suggesting the right fine-tune for the open photo, found in the background.

When a photo opens, its faces are looked for on the background worker (about 0.2 s, on a
small grey copy: engine/removal/faces.py). When faces dominate the picture and the chosen
engine is a scene fine-tune, `offered` asks the window to show its quiet suggestion bar,
once per opened photo. *Keep* is remembered per photo, by the SHA-256 of its file, so the
same photo never asks again (and a photo saved after *Keep* is remembered too).
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.jobs.worker import Worker
from app.open_photo import OpenPhoto
from app.settings import Settings
from engine.removal.suggest import Suggestion, suggest_events

log = logging.getLogger(__name__)

START_DELAY_MS = 150  # after the photo opens: its first frame is drawn by then


class SuggestionController(QObject):
    offered = Signal(object, object)  # OpenPhoto, Suggestion

    def __init__(self, worker: Worker, settings: Settings, parent: QObject | None = None):
        super().__init__(parent)
        self.worker, self.settings = worker, settings
        self._asked: set[int] = set()  # id() of photos already offered a switch
        self._hashes: dict[int, str] = {}  # id(photo) -> its last known content hash

    def photo_opened(self, photo: OpenPhoto) -> None:
        """Look for faces in the background once the photo is on screen (the GUI thread
        only queues the job)."""
        photo.identified.connect(lambda key, photo=photo: self._identified(photo, key))
        # The detector holds the GIL in short bursts; started while the GUI thread draws
        # the new photo for the first time, it would make that first frame wait for it.
        QTimer.singleShot(START_DELAY_MS, lambda photo=photo: self._start(photo))

    def _start(self, photo: OpenPhoto) -> None:
        pixels = photo.original_pixels
        if photo.closed or pixels is None:
            return
        handle = self.worker.submit(_detect(pixels), f"faces in {photo.name}")
        handle.done.connect(lambda event, photo=photo: self._found(photo, event.result))

    def photo_closed(self, photo: OpenPhoto) -> None:
        self._asked.discard(id(photo))
        self._hashes.pop(id(photo), None)

    def keep(self, photo: OpenPhoto) -> None:
        """The person keeps the current fine-tune for this photo: never ask about it again."""
        if photo.content_hash:
            self.settings.keep_fine_tune(photo.content_hash)

    def _found(self, photo: OpenPhoto, suggestion: Suggestion) -> None:
        photo.suggestion = suggestion
        self._decide(photo)

    def _identified(self, photo: OpenPhoto, key: str) -> None:
        before = self._hashes.get(id(photo))
        self._hashes[id(photo)] = key
        if before is not None and before != key and self.settings.kept_fine_tune(before):
            self.settings.keep_fine_tune(key)  # saved after Keep: the new file keeps it too
        self._decide(photo)

    def _decide(self, photo: OpenPhoto) -> None:
        found = photo.suggestion
        if photo.closed or found is None or id(photo) in self._asked:
            return
        if photo.path is not None and photo.content_hash is None:
            return  # wait for the hash: Keep may have been said for this very file
        if photo.content_hash and self.settings.kept_fine_tune(photo.content_hash):
            return
        if found.improves_on(self.settings.engine_choice):
            self._asked.add(id(photo))
            log.info("suggesting %s for %s: %s", found.variant, photo.name, found.reason)
            self.offered.emit(photo, found)


def _detect(pixels: np.ndarray):
    """The worker's job callable: Done(Suggestion) (pixels are the read-only original)."""

    def make_events(cancel, host):
        return suggest_events(pixels, cancel, host)

    return make_events
