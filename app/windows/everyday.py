"""The main window's everyday extras (a base class of MainWindow, split out for size):
the clipboard, saving the mask, the fine-tune suggestion bar and the edit history kept on
disk. Like FileActions it holds no state of its own."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Slot
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox

from app.open_photo import OpenPhoto
from app.windows import clipboard
from engine.about import APP_NAME as APP
from engine.errors import MoebiusError

if TYPE_CHECKING:
    from app.canvas.widget import MaskCanvas
    from app.jobs.keeper import HistoryKeeper
    from app.jobs.suggest import SuggestionController
    from app.windows.suggestion_bar import SuggestionBar

log = logging.getLogger(__name__)


class EverydayActions(QMainWindow):
    if TYPE_CHECKING:  # what MainWindow provides (declared for the type checker only)
        photo: OpenPhoto | None
        canvas: MaskCanvas
        keeper: HistoryKeeper
        suggestions: SuggestionController
        suggestion_bar: SuggestionBar
        _closing: bool

        def set_photo(self, photo: OpenPhoto | None) -> None: ...
        def set_engine_choice(self, choice: str) -> None: ...
        def open_path(self, path: Path) -> bool: ...
        def confirm_discard(self) -> bool: ...
        def _folder(self) -> Path: ...
        def keep_choice(self) -> None: ...  # the variation on show becomes an edit

    # -- the edit history on disk ---------------------------------------------------------

    def _after_save(self, photo: OpenPhoto, path: Path) -> None:
        self.keeper.photo_saved(photo, path)

    @Slot(object, str)
    def _history_restored(self, photo: OpenPhoto, message: str) -> None:
        if photo is self.photo:
            self.statusBar().showMessage(message, 10000)

    # -- the fine-tune suggestion ---------------------------------------------------------

    @Slot(object, object)
    def _suggestion_offered(self, photo: OpenPhoto, suggestion) -> None:
        if photo is self.photo and not self._closing:
            self.suggestion_bar.offer(suggestion)

    @Slot(object)
    def _suggestion_taken(self, suggestion) -> None:
        self.set_engine_choice(suggestion.variant)
        self.statusBar().showMessage(f"Removals now use {suggestion.name}.", 5000)

    @Slot()
    def _suggestion_declined(self) -> None:
        if self.photo is not None:
            self.suggestions.keep(self.photo)

    # -- clipboard ------------------------------------------------------------------------

    def paste(self) -> bool:
        """Open the clipboard's picture (or copied image file) as a new photo."""
        pixels, path = clipboard.clipboard_pixels()
        if path is not None:
            return self.open_path(Path(path))
        if pixels is None:
            self.statusBar().showMessage("The clipboard holds no picture.", 5000)
            return False
        if not self.confirm_discard():
            return False
        self.set_photo(OpenPhoto.untitled(pixels))
        self.statusBar().showMessage(f"Pasted a {pixels.shape[1]} × {pixels.shape[0]} picture; "
                                     "Save asks for a name.", 6000)
        return True

    def copy_image(self) -> None:
        if self.photo is not None and self.photo.choice is not None:
            self.keep_choice()  # what is copied is what the person sees
        doc = self.canvas.document()
        if doc is not None:
            clipboard.copy_pixels(doc.pixels)
            self.statusBar().showMessage("Copied the picture.", 3000)

    # -- the mask as a file ---------------------------------------------------------------

    def save_mask_dialog(self) -> bool:
        doc = self.canvas.document()
        if doc is None or self.photo is None:
            return False
        stem = self.photo.path.stem if self.photo.path else "Untitled"
        path, _ = QFileDialog.getSaveFileName(self, "Save mask",
                                              str(self._folder() / f"{stem}-mask.png"),
                                              "PNG mask (*.png)")
        if not path:
            return False
        from engine.imageio.mask_file import save_mask

        target = Path(path) if Path(path).suffix.lower() == ".png" else Path(path + ".png")
        try:
            save_mask(target, np.array(doc.mask.array))
        except MoebiusError as exc:
            QMessageBox.warning(self, APP, f"Could not save the mask: {exc}")
            return False
        self.statusBar().showMessage(f"Saved the mask to {target}", 6000)
        return True
