"""Pictures shown over the photo for a while and never written into it: the live preview
of a removal while it denoises, and the variation being looked at before one is kept.

Each is a box of the photo and an image stretched over it (a preview is smaller than its
box; a variation has the photo's own pixels). They are drawn above the photo and the
mask's tint, so the hole shows the fill instead of red.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter

from engine.document.box import Box

_FORMATS = {3: QImage.Format.Format_RGB888, 4: QImage.Format.Format_RGBA8888}


def patch_image(pixels: np.ndarray) -> QImage:
    """uint8 or uint16 RGB / RGBA (or grey) pixels -> a QImage that owns a copy."""
    if pixels.dtype != np.uint8:
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    pixels = np.ascontiguousarray(pixels)
    h, w, c = pixels.shape
    return QImage(pixels.data, w, h, w * c, _FORMATS[c]).copy()


class Patches:
    """Images over boxes of the photo, drawn in order."""

    def __init__(self) -> None:
        self.items: list[tuple[Box, QImage]] = []

    def set(self, items: list[tuple[Box, np.ndarray]]) -> list[Box]:
        """Replace the shown patches; returns the boxes to redraw (old and new)."""
        old = [box for box, _ in self.items]
        self.items = [(box, patch_image(pixels)) for box, pixels in items]
        return old + [box for box, _ in self.items]

    def clear(self) -> list[Box]:
        return self.set([])

    def draw(self, painter: QPainter, to_widget: Callable[[Box], QRectF],
             exposed: QRectF) -> None:
        for box, image in self.items:
            target = to_widget(box)
            if target.intersects(exposed):
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform,
                                      image.width() < target.width())
                painter.drawImage(target, image)
