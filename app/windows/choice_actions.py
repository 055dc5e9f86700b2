"""The main window's side of live previews and variations (a mixin of MainWindow, split
out for size): the View menu's preview toggle, the preview on the canvas while a removal
denoises, and the strip of variations with its keys (click or ← →, Enter keeps the one
shown as one undo step, Esc keeps none; any new stroke keeps it too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Slot
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QMainWindow

from app.windows.variations_strip import VariationsStrip

if TYPE_CHECKING:
    from app.canvas.widget import MaskCanvas
    from app.jobs.removal import RemovalController
    from app.open_photo import Choice, OpenPhoto
    from app.settings import Settings


class ChoiceActions(QMainWindow):
    if TYPE_CHECKING:  # what MainWindow provides (declared for the type checker only)
        photo: OpenPhoto | None
        canvas: MaskCanvas
        jobs: RemovalController
        settings: Settings
        esc: QShortcut

        def _update_enabled(self) -> None: ...

    def _build_choice(self) -> VariationsStrip:
        """The preview toggle, the strip and its keys; returns the strip to lay out."""
        self.a_preview = QAction("Live &preview while removing", self)
        self.a_preview.setCheckable(True)
        self.a_preview.setChecked(self.settings.live_preview)
        self.a_preview.setStatusTip("Show the fill forming in the hole at every step")
        self.a_preview.toggled.connect(self._preview_toggled)
        self.strip = VariationsStrip()
        self.strip.chosen.connect(self._choose)
        self.strip.keep.connect(self.keep_choice)
        self.strip.discard.connect(self.discard_choice)
        self.choice_keys = [QShortcut(QKeySequence(key), self, slot) for key, slot in
                            (("Left", lambda: self._step_choice(-1)),
                             ("Right", lambda: self._step_choice(1)))]
        for shortcut in self.choice_keys:
            shortcut.setEnabled(False)
        self.canvas.choiceChanged.connect(self._choice_shown)
        self.jobs.preview.connect(self._preview)
        self.jobs.previewEnded.connect(self._preview_ended)
        return self.strip

    @property
    def choosing(self) -> bool:
        return self.photo is not None and self.photo.choice is not None

    def keep_choice(self) -> None:
        if self.photo is not None and self.photo.accept_choice():
            self.statusBar().showMessage("Kept that fill (Undo takes it back).", 5000)

    def discard_choice(self) -> None:
        if self.photo is not None and self.photo.discard_choice():
            self.statusBar().showMessage("Discarded the fills; the photo was not changed.",
                                         5000)

    @Slot(int)
    def _choose(self, index: int) -> None:
        if self.photo is not None:
            self.photo.choose(index)

    def _step_choice(self, direction: int) -> None:
        if self.photo is not None and self.photo.choice is not None:
            self.photo.choose(self.photo.choice.index + direction)

    @Slot(object)
    def _choice_shown(self, choice: Choice | None) -> None:
        self.strip.show_choice(choice)
        for shortcut in self.choice_keys:
            shortcut.setEnabled(choice is not None)
        self.esc.setEnabled(choice is not None or self.jobs.running(self.photo))
        self._update_enabled()

    @Slot(bool)
    def _preview_toggled(self, on: bool) -> None:
        self.settings.live_preview = on
        if not on:
            self.canvas.clearPreview()

    @Slot(object, object)
    def _preview(self, photo: OpenPhoto, patches) -> None:
        if photo is self.photo and self.a_preview.isChecked():
            self.canvas.showPreview(patches)

    @Slot(object)
    def _preview_ended(self, photo: OpenPhoto) -> None:
        if photo is self.photo:
            self.canvas.clearPreview()
