"""The strip under the photo that offers a removal's variations: a thumbnail of each
filled region with its seed, Keep and Discard. Clicking a thumbnail (or ← →, handled by
the window) shows that fill on the photo; nothing is written until one is kept."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QToolButton,
    QWidget,
)

from app.canvas.patches import patch_image
from app.open_photo import Choice

THUMB = 96  # px, the long side of a thumbnail


def thumbnail(pixels: np.ndarray) -> QPixmap:
    image = patch_image(pixels)
    return QPixmap.fromImage(image).scaled(
        THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation)


class VariationsStrip(QFrame):
    chosen = Signal(int)  # a thumbnail was clicked
    keep = Signal()
    discard = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Variations")
        self.label = QLabel("Choose a fill:")
        self.buttons: list[QToolButton] = []
        self._shown: list[object] = []  # the candidate each button shows
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.group.idClicked.connect(self.chosen)
        self.row = QHBoxLayout()
        self.row.setContentsMargins(0, 0, 0, 0)
        inner = QWidget()
        inner.setLayout(self.row)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setFixedHeight(THUMB + 48)
        self.keep_button = QPushButton("Keep (Enter)")
        self.keep_button.clicked.connect(self.keep)
        self.discard_button = QPushButton("Discard (Esc)")
        self.discard_button.clicked.connect(self.discard)
        layout = QHBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.keep_button)
        layout.addWidget(self.discard_button)
        self.setVisible(False)

    def show_choice(self, choice: Choice | None) -> None:
        """Show `choice`'s candidates with the shown one checked (hidden for None)."""
        if choice is None:
            self.setVisible(False)
            return
        for k in range(len(self.buttons), len(choice.candidates)):
            result = choice.candidates[k]
            button = QToolButton()
            button.setCheckable(True)
            button.setIcon(QIcon(thumbnail(result.pixels)))
            button.setIconSize(QSize(THUMB, THUMB))
            button.setText(f"seed {result.seed}")
            button.setToolTip(f"Variation {k + 1}: seed {result.seed}")
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            self.group.addButton(button, k)
            self.row.addWidget(button)
            self.buttons.append(button)
            self._shown.append(result)
        while len(self.buttons) > len(choice.candidates):  # a new choice with fewer
            button = self.buttons.pop()
            self._shown.pop()
            self.group.removeButton(button)
            button.deleteLater()
        for k, button in enumerate(self.buttons):  # a new choice: new pictures
            result = choice.candidates[k]
            if self._shown[k] is not result:
                button.setIcon(QIcon(thumbnail(result.pixels)))
                button.setText(f"seed {result.seed}")
                self._shown[k] = result
        self.buttons[choice.index].setChecked(True)
        self.label.setText(f"Choose a fill ({choice.index + 1} of {len(choice.candidates)}):")
        self.setVisible(True)
