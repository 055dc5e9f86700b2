"""The main window's removal, compare and mask commands (a mixin of MainWindow, split out
for size): start, retry and cancel removals and show their progress; compare with the
original (hold \\ or the before/after split); grow, shrink and load masks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, Slot
from PySide6.QtGui import QAction, QKeyEvent, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSlider,
    QToolButton,
)

from app.windows.dialogs import ask_large_mask
from engine.about import APP_NAME as APP
from engine.errors import MoebiusError, WeightsMissing
from engine.events import Failed
from engine.removal.masks import LARGE_MASK_SHARE

if TYPE_CHECKING:
    from app.canvas.widget import MaskCanvas
    from app.jobs.removal import RemovalController
    from app.open_photo import OpenPhoto

COMPARE_KEY = Qt.Key.Key_Backslash  # hold to see the original, as in many photo editors


class EditActions(QMainWindow):
    if TYPE_CHECKING:  # what MainWindow provides (declared for the type checker only)
        photo: OpenPhoto | None
        canvas: MaskCanvas
        jobs: RemovalController
        progress: QProgressBar
        progress_text: QLabel
        cancel_button: QToolButton
        esc: QShortcut
        a_cancel: QAction
        a_compare: QAction
        split_slider: QSlider
        _closing: bool

        def ensure_model(self) -> bool: ...
        def image_filter(self) -> str: ...
        def _folder(self): ...
        def _update_enabled(self) -> None: ...

    # -- removal --------------------------------------------------------------------------

    def remove(self) -> None:
        if self.photo is not None and self.photo.choice is not None:
            self.photo.accept_choice()  # Enter keeps the variation on show
            return
        if self.jobs.running(self.photo):
            return
        if self.photo is None or not self.photo.document.mask.any():
            self.statusBar().showMessage("Paint over what should disappear first.", 5000)
            return
        if not self.confirm_large_mask():
            return
        if not self.ensure_model():
            return
        reason = self.jobs.start(self.photo)
        if reason:
            self.statusBar().showMessage(reason, 5000)

    def confirm_large_mask(self) -> bool:
        """True unless the mask covers more than half of the photo and the person, asked,
        does not want that much replaced (an inverted mask from a file, say)."""
        mask = self.photo.document.mask if self.photo is not None else None
        if mask is None:
            return False
        share = mask.count() / (mask.width * mask.height)
        if share <= LARGE_MASK_SHARE or ask_large_mask(self, share):
            return True
        self.statusBar().showMessage("Not removed. Mask ▸ Invert (Ctrl+Shift+I) swaps what is "
                                     "marked and what is kept.", 8000)
        return False

    def try_again(self) -> None:
        if not self.ensure_model():
            return
        reason = self.jobs.try_again(self.photo)
        if reason:
            self.statusBar().showMessage(reason, 5000)

    def cancel_removal(self) -> None:
        """Esc or Cancel: say so at once; the job stops at the network's next block."""
        if self.jobs.cancel(self.photo):
            self.progress_text.setText("Cancelling…")
            self.a_cancel.setEnabled(False)
        elif self.photo is not None and self.photo.choice is not None:
            self.photo.discard_choice()  # Esc while choosing: none of them

    def _job_started(self) -> None:
        self.statusBar().clearMessage()  # a message would cover the progress
        self.progress.setValue(0)
        self.progress_text.setText("Starting…")
        for w in (self.progress_text, self.progress, self.cancel_button):
            w.setVisible(True)
        self.esc.setEnabled(True)
        self._update_enabled()

    def _job_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress_text.setText(text)

    @Slot()
    def _job_ended(self) -> None:
        if self._closing:
            return
        if self.jobs.running(self.photo):
            return
        for w in (self.progress_text, self.progress, self.cancel_button):
            w.setVisible(False)
        self.esc.setEnabled(self.photo is not None and self.photo.choice is not None)
        self._update_enabled()

    @Slot(str)
    def _job_finished(self, message: str) -> None:
        self.statusBar().showMessage(message, 10000)

    @Slot(object)
    def _job_failed(self, event: Failed) -> None:
        if event.is_a(WeightsMissing):  # e.g. files removed since the check: offer them again
            self.statusBar().showMessage("The model's weights are missing.", 8000)
            if self.ensure_model():
                self.remove()
        elif event.cancelled:
            self.statusBar().showMessage("Cancelled; the photo was not changed.", 8000)
        else:
            QMessageBox.warning(self, APP, event.message)

    # -- compare --------------------------------------------------------------------------

    @Slot(int)
    def _split_changed(self, percent: int) -> None:
        original = self.photo.original_pixels if self.photo is not None else None
        self.canvas.showSplit(original, percent / 100)

    def toggle_compare(self, on: bool) -> None:
        original = self.photo.original_pixels if (on and self.photo is not None) else None
        self.canvas.showOriginal(original)
        self.a_compare.setChecked(self.canvas.isShowingOriginal())

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if isinstance(event, QKeyEvent) and event.key() == COMPARE_KEY \
                and not event.isAutoRepeat():
            self.toggle_compare(event.type() == QEvent.Type.KeyPress)
            return True
        return super().eventFilter(obj, event)

    # -- mask helpers ---------------------------------------------------------------------

    def grow_mask(self) -> None:
        self._resize_mask(True)

    def shrink_mask(self) -> None:
        self._resize_mask(False)

    def pixels_dialog(self, grow: bool) -> QInputDialog:
        """Asks by how many pixels to grow or shrink the mask; wide enough for its title."""
        verb = "Grow" if grow else "Shrink"
        dialog = QInputDialog(self)
        dialog.setWindowTitle(f"{verb} the mask")
        dialog.setLabelText(f"{verb} the painted area by this many pixels on every side:")
        dialog.setInputMode(QInputDialog.InputMode.IntInput)
        dialog.setIntRange(1, 500)
        dialog.setIntValue(8)
        # Window managers cut a title that is wider than its dialog; leave room for it and
        # the title bar's buttons.
        title = dialog.fontMetrics().horizontalAdvance(dialog.windowTitle())
        dialog.setMinimumWidth(max(360, title + 160))
        return dialog

    def _resize_mask(self, grow: bool) -> None:
        dialog = self.pixels_dialog(grow)
        if dialog.exec() == QInputDialog.DialogCode.Accepted:
            (self.canvas.growMask if grow else self.canvas.shrinkMask)(dialog.intValue())
        dialog.deleteLater()

    def load_mask_dialog(self) -> None:
        doc = self.canvas.document()
        if doc is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Load mask", str(self._folder()),
                                              self.image_filter())
        if path:
            from engine.imageio.files import load_mask

            try:
                turn = self.photo.loaded.orientation if self.photo and self.photo.loaded else 1
                self.canvas.setMaskArray(load_mask(path, (doc.width, doc.height), resize=True,
                                                   orientation=turn))
            except MoebiusError as exc:
                QMessageBox.warning(self, APP, str(exc))
