"""What the window shows before a photo is open: open, sample photo, recent files."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.assets import SAMPLE_PHOTO
from app.icons import icon


class WelcomePage(QWidget):
    openRequested = Signal()
    pathRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        title = QLabel("<h1>Moebius Studio</h1>"
                       "<p>Open a photo, paint over what should disappear, press Enter.</p>"
                       "<p>You can also drop a photo anywhere on this window.</p>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.open_button = QPushButton(icon("file.open"), "  Open a photo…")
        self.open_button.setMinimumHeight(40)
        self.open_button.clicked.connect(self.openRequested)
        self.sample_button = QPushButton("Try it on the sample photo")
        self.sample_button.clicked.connect(lambda: self.pathRequested.emit(str(SAMPLE_PHOTO)))
        self.sample_button.setVisible(SAMPLE_PHOTO.is_file())
        self.recent = QListWidget()
        self.recent.setMaximumHeight(180)
        self.recent.itemActivated.connect(lambda item: self.pathRequested.emit(item.data(256)))
        self.recent_label = QLabel("Recent photos")

        column = QVBoxLayout()
        column.addStretch(1)
        column.addWidget(title)
        for w in (self.open_button, self.sample_button, self.recent_label, self.recent):
            column.addWidget(w)
        column.addStretch(2)
        outer = QVBoxLayout(self)
        box = QWidget()
        box.setLayout(column)
        box.setMaximumWidth(520)
        outer.addWidget(box, alignment=Qt.AlignmentFlag.AlignHCenter)

    def setRecent(self, paths: list[str]) -> None:
        self.recent.clear()
        for p in paths:
            item = QListWidgetItem(Path(p).name)
            item.setToolTip(p)
            item.setData(256, p)  # Qt.UserRole
            self.recent.addItem(item)
        self.recent.setVisible(bool(paths))
        self.recent_label.setVisible(bool(paths))
