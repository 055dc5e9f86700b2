"""The Preferences row for edit histories on disk: how much they use, the limit, Clear."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from app.jobs.keeper import HistoryKeeper


def _size(nbytes: int) -> str:
    if nbytes >= 2**30:
        return f"{nbytes / 2**30:.2f} GB"
    return f"{nbytes / 2**20:.1f} MB" if nbytes >= 2**20 else f"{nbytes / 1024:.0f} KB"


class HistoryDiskRow(QWidget):
    def __init__(self, keeper: HistoryKeeper, limit_mb: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.keeper = keeper
        self.used = QLabel()
        self.limit = QSpinBox()
        self.limit.setRange(100, 100_000)
        self.limit.setSingleStep(256)
        self.limit.setSuffix(" MB")
        self.limit.setValue(limit_mb)
        self.limit.setToolTip("Edit histories of all photos together stay under this; the "
                              "photos edited longest ago are forgotten first.")
        self.clear = QPushButton("Clear")
        self.clear.setToolTip("Forget every photo's saved edit history")
        self.clear.clicked.connect(self._clear)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.used, 1)
        row.addWidget(QLabel("at most"))
        row.addWidget(self.limit)
        row.addWidget(self.clear)
        self.refresh()

    def refresh(self) -> None:
        self.used.setText(f"{_size(self.keeper.usage())} used")

    def _clear(self) -> None:
        self.clear.setEnabled(False)
        handle = self.keeper.clear()
        handle.finished.connect(self._cleared)

    def _cleared(self) -> None:
        self.clear.setEnabled(True)
        self.refresh()
