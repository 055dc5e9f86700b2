"""The History panel: every step of the open photo; click one to go back to it."""

from __future__ import annotations

from PySide6.QtWidgets import QUndoView, QWidget

from app.history import HistoryStack


class HistoryPanel(QUndoView):
    """The list of steps; clicking one moves the photo back (or forward) to it."""

    def __init__(self, stack: HistoryStack, parent: QWidget | None = None):
        super().__init__(stack, parent)
        self.setEmptyLabel("Original")
        self.setObjectName("historyPanel")
