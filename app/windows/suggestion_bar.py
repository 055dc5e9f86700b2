"""The quiet bar above the photo that offers a better fine-tune: "[Switch] [Keep]".

Non-modal: the photo stays usable, the bar does not take focus, and it goes away by itself
when another photo opens."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from engine.removal.suggest import Suggestion


class SuggestionBar(QFrame):
    switchRequested = Signal(object)  # the Suggestion
    keepRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("suggestion-bar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.suggestion: Suggestion | None = None
        self.text = QLabel()
        self.switch = QPushButton("Switch")
        self.keep = QPushButton("Keep")
        for button in (self.switch, self.keep):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # painting keeps the keyboard
        self.keep.setToolTip("Keep the current fine-tune; this photo will not ask again")
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 3, 8, 3)
        row.addWidget(self.text, 1)
        row.addWidget(self.switch)
        row.addWidget(self.keep)
        self.switch.clicked.connect(self._switch)
        self.keep.clicked.connect(self._keep)
        self.hide()

    def offer(self, suggestion: Suggestion) -> None:
        self.suggestion = suggestion
        if suggestion.variant == "ft_celebahq":
            question = f"This looks like a portrait: use {suggestion.name}?"
        else:
            question = f"This photo is about people's faces: use {suggestion.name}?"
        self.text.setText(question)
        self.setToolTip(f"Found {suggestion.reason[0].lower()}{suggestion.reason[1:]}")
        self.switch.setToolTip(f"Use {suggestion.name} for removals (Model menu)")
        self.show()

    def dismiss(self) -> None:
        self.suggestion = None
        self.hide()

    def _switch(self) -> None:
        if self.suggestion is not None:
            self.switchRequested.emit(self.suggestion)
        self.dismiss()

    def _keep(self) -> None:
        self.keepRequested.emit()
        self.dismiss()
