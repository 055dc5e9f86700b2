"""Opening and saving photos from the main window (a mixin of MainWindow).

Originals are never overwritten without an explicit Save that the person confirms;
every write goes through the engine's atomic `save_image`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox

from app.assets import SAMPLE_PHOTO
from app.open_photo import OpenPhoto
from engine.about import APP_NAME as APP
from engine.disk import remove_stale_temps
from engine.errors import MoebiusError
from engine.imageio.checks import check_output
from engine.imageio.files import SUPPORTED_EXTENSIONS, is_supported, save_image
from engine.imageio.loaded import untitled

if TYPE_CHECKING:
    from app.settings import Settings
    from app.windows.welcome import WelcomePage

log = logging.getLogger(__name__)

SAVE_FILTERS = {
    "JPEG (*.jpg *.jpeg)": ".jpg",
    "PNG (*.png)": ".png",
    "WebP (*.webp)": ".webp",
    "TIFF (*.tif *.tiff)": ".tif",
    "BMP (*.bmp)": ".bmp",
    "HEIC (*.heic *.heif)": ".heic",
    "AVIF (*.avif)": ".avif",
}


class FileActions(QMainWindow):
    """The main window's file menu (a base class of MainWindow, split out for size). It
    holds no state: the open photo (`self.photo`, an OpenPhoto) does."""

    if TYPE_CHECKING:  # what MainWindow provides (declared for the type checker only)
        photo: OpenPhoto | None
        settings: Settings
        welcome: WelcomePage
        recent_menu: QMenu

        def set_photo(self, photo: OpenPhoto | None) -> None: ...
        def _after_save(self, photo: OpenPhoto, path: Path) -> None: ...  # saved to path
        def keep_choice(self) -> None: ...  # the variation on show becomes an edit

    @staticmethod
    def image_filter() -> str:
        patterns = " ".join(f"*{e}" for e in SUPPORTED_EXTENSIONS)
        return f"Photos ({patterns});;All files (*)"

    def _folder(self) -> Path:
        if self.photo is not None and self.photo.path is not None:
            return self.photo.path.parent
        recent = self.settings.recent_files
        return Path(recent[0]).parent if recent else Path.home()

    # -- open -----------------------------------------------------------------------------

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a photo", str(self._folder()),
                                              self.image_filter())
        if path:
            self.open_path(Path(path))

    def open_sample(self) -> None:
        self.open_path(SAMPLE_PHOTO)

    def open_path(self, path: Path) -> bool:
        """Open a photo (after asking about unsaved changes). False if it did not open."""
        if not self.confirm_discard():
            return False
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            photo = OpenPhoto.open(Path(path))
        except MoebiusError as exc:
            QGuiApplication.restoreOverrideCursor()
            QMessageBox.warning(self, APP, str(exc))
            return False
        QGuiApplication.restoreOverrideCursor()
        self.set_photo(photo)  # closes the previous photo, cancelling its jobs
        if Path(path) != SAMPLE_PHOTO:
            self.settings.add_recent(str(Path(path).resolve()))
            self.welcome.setRecent(self.settings.recent_files)
        self.statusBar().showMessage(f"Opened {Path(path).name}", 4000)
        return True

    def close_photo(self) -> None:
        if not self.confirm_discard():
            return
        self.set_photo(None)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for p in self.settings.recent_files:
            action = self.recent_menu.addAction(Path(p).name)
            action.setToolTip(p)
            action.triggered.connect(lambda _=False, p=p: self.open_path(Path(p)))
        if not self.settings.recent_files:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear the list", self._clear_recent)

    def _clear_recent(self) -> None:
        self.settings.clear_recent()
        self.welcome.setRecent([])

    # -- save -----------------------------------------------------------------------------

    def save(self) -> bool:
        photo = self.photo
        if photo is None:
            return False
        if photo.path is None or photo.path == SAMPLE_PHOTO or not photo.path.parent.exists():
            return self.save_as()
        if not photo.confirmed_overwrite:
            box = QMessageBox(QMessageBox.Icon.Question, APP,
                              f"Replace the original {photo.path.name}?",
                              parent=self)
            box.setInformativeText("The original photo is replaced by the edited one. "
                                   "Choose Save As to keep the original.")
            replace = box.addButton("&Replace", QMessageBox.ButtonRole.AcceptRole)
            save_as = box.addButton("Save &As…", QMessageBox.ButtonRole.ActionRole)
            box.addButton("&Cancel", QMessageBox.ButtonRole.RejectRole)
            box.exec()
            if box.clickedButton() is save_as:
                return self.save_as()
            if box.clickedButton() is not replace:
                return False
            photo.confirmed_overwrite = True
        return self._write(photo.path, mark_clean=True)

    def save_as(self) -> bool:
        photo = self.photo
        target = self._ask_target("Save as", suffix="-clean")
        if target is None or photo is None:
            return False
        if self._write(target, mark_clean=True):
            photo.set_path(target)
            photo.confirmed_overwrite = True  # the person chose this file
            self.settings.add_recent(str(target.resolve()))
            self.welcome.setRecent(self.settings.recent_files)
            return True
        return False

    def export(self) -> bool:
        target = self._ask_target("Export a copy", suffix="-clean")
        return target is not None and self._write(target, mark_clean=False)

    def _ask_target(self, title: str, suffix: str) -> Path | None:
        if self.photo is None:
            return None
        src = self.photo.path or Path("Untitled.png")
        ext = src.suffix.lower() if is_supported(src) else ".png"
        stem = src.stem if src.stem.endswith(suffix) else f"{src.stem}{suffix}"  # once only
        default = self._folder() / (f"{stem}{ext}" if self.photo.path else src.name)
        if default == self.photo.path:  # never suggest writing over the file being edited
            default = default.with_name(f"{stem}-copy{ext}")
        wanted = next((f for f, e in SAVE_FILTERS.items() if e == ext.replace(".jpeg", ".jpg")
                       .replace(".tiff", ".tif")), None)
        name, chosen = QFileDialog.getSaveFileName(self, title, str(default),
                                                   ";;".join(SAVE_FILTERS), wanted or "")
        if not name:
            return None
        path = Path(name)
        if not is_supported(path):
            path = path.with_suffix(SAVE_FILTERS.get(chosen, ".png"))
        return path

    def _write(self, target: Path, mark_clean: bool) -> bool:
        photo = self.photo
        if photo is None:
            return False
        if photo.choice is not None:  # what is written is what the person sees
            self.keep_choice()
        pixels = np.asarray(photo.document.pixels)
        loaded = photo.loaded or untitled(pixels)  # a picture from no file saves as it is
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            # Whatever can be known before encoding (the person confirmed replacing).
            check_output(target, overwrite=True, default_format=loaded.format)
            remove_stale_temps(target.parent)  # left by a save that was killed
            saved = save_image(target, loaded, pixels,
                               overwrite=True,
                               keep_jpeg_blocks=not self.settings.reencode_jpeg)
        except MoebiusError as exc:
            QGuiApplication.restoreOverrideCursor()
            QMessageBox.warning(self, APP, f"Could not save: {exc}")
            return False
        QGuiApplication.restoreOverrideCursor()
        if mark_clean:
            photo.mark_saved()
            self._after_save(photo, target)
        note = f" ({saved.note})" if saved.note else ""
        self.statusBar().showMessage(f"Saved {target}{note}", 8000)
        log.info("saved %s", target)
        return True

    def confirm_discard(self) -> bool:
        """True if there is nothing unsaved, or the person saved or chose to discard it."""
        if self.photo is None or not self.photo.is_modified:
            return True
        box = QMessageBox(QMessageBox.Icon.Question, APP,
                          f"Save the changes to {self.photo.name}?", parent=self)
        save = box.addButton("&Save", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Do&n't save", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("&Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(save)
        box.exec()
        if box.clickedButton() is save:
            return self.save()
        return box.clickedButton() is discard

    # -- drag and drop --------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and is_supported(urls[0].toLocalFile()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()
            self.open_path(Path(urls[0].toLocalFile()))
