"""What the canvas draws: the photo and the mask overlay, each as a pyramid of QImages.

Level 0 is full resolution and shares memory with the document wherever it can (8-bit
photos and the mask itself), so a brush stroke never copies the photo. Level k is the
photo reduced 2^k times by box averaging; at low zoom the canvas draws from the level
just above the zoom, which is both fast (drawing cost follows screen pixels) and free of
the aliasing that sampling a 24 MP photo directly at 15 % would give. Only the changed
box is recomputed in each level when the photo or the mask changes.
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np
from PySide6.QtGui import QColor, QImage

from engine.document.box import Box

log = logging.getLogger(__name__)

MIN_LEVEL_SIDE = 256  # stop reducing once the long side is this small


def _halve(block: np.ndarray) -> np.ndarray:
    """2x2 box average; an odd last row/column is repeated so sizes round up."""
    h, w = block.shape[:2]
    if h % 2 or w % 2:
        pad = [(0, h % 2), (0, w % 2)] + [(0, 0)] * (block.ndim - 2)
        block = np.pad(block, pad, mode="edge")
        h, w = block.shape[:2]
    return cv2.resize(block, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def _qimage(array: np.ndarray, fmt: QImage.Format) -> QImage:
    """A QImage that reads `array`'s memory (the caller keeps the array alive)."""
    h, w = array.shape[:2]
    return QImage(array.data, w, h, array.strides[0], fmt)


class Pyramid:
    """Level 0 (given, shared) plus 2x reductions as uint8 arrays, updated by box."""

    def __init__(self, base: np.ndarray, base_to_8bit=None):
        self.base = base
        self._to8 = base_to_8bit or (lambda block: block)
        self.levels: list[np.ndarray] = [base]
        h, w = base.shape[:2]
        while max(h, w) > MIN_LEVEL_SIDE:
            h, w = (h + 1) // 2, (w + 1) // 2
            self.levels.append(np.zeros((h, w) + base.shape[2:], dtype=np.uint8))
        self.update((0, 0, base.shape[1], base.shape[0]))

    @property
    def count(self) -> int:
        return len(self.levels)

    def update(self, box: Box) -> None:
        """Recompute every reduced level under `box` (level-0 pixel coordinates)."""
        x0, y0, x1, y1 = box
        for k in range(1, len(self.levels)):
            prev = self.levels[k - 1]
            ph, pw = prev.shape[:2]
            # Align to whole 2x2 cells of the previous level.
            x0, y0 = x0 & ~1, y0 & ~1
            x1, y1 = min(x1 + (x1 & 1), pw), min(y1 + (y1 & 1), ph)
            if x0 >= x1 or y0 >= y1:
                return
            block = prev[y0:y1, x0:x1]
            small = _halve(self._to8(block) if k == 1 else block)
            x0, y0 = x0 // 2, y0 // 2
            x1, y1 = x0 + small.shape[1], y0 + small.shape[0]
            self.levels[k][y0:y1, x0:x1] = small


def level_for_zoom(zoom: float, count: int) -> int:
    """The most reduced level that still has at least one pixel per screen pixel."""
    if zoom >= 1.0:
        return 0
    return max(0, min(count - 1, math.floor(math.log2(1.0 / zoom) + 1e-9)))


class PhotoLayer:
    """The photo as 8-bit QImages. uint16 photos are reduced to 8 bits for display only."""

    _FORMATS = {
        (2, 1): QImage.Format.Format_Grayscale8,
        (3, 3): QImage.Format.Format_RGB888,
        (3, 4): QImage.Format.Format_RGBA8888,
    }

    def __init__(self, pixels: np.ndarray):
        self.pixels = pixels
        channels = pixels.shape[2] if pixels.ndim == 3 else 1
        self.format = self._FORMATS[(pixels.ndim, channels)]
        if pixels.dtype == np.uint8:
            display = pixels  # shared: no copy of the photo
        else:
            display = np.empty(pixels.shape, dtype=np.uint8)
            np.right_shift(pixels, 8, out=display, casting="unsafe")
        self.pyramid = Pyramid(display)
        self.images = [_qimage(level, self.format) for level in self.pyramid.levels]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    def update(self, box: Box) -> None:
        """The document's pixels changed inside `box`: refresh the display there."""
        x0, y0, x1, y1 = box
        base = self.pyramid.base
        if base is not self.pixels:
            np.right_shift(
                self.pixels[y0:y1, x0:x1], 8, out=base[y0:y1, x0:x1], casting="unsafe"
            )
        self.pyramid.update(box)


class MaskLayer:
    """The mask as a coloured, semi-transparent overlay.

    Level 0 is an Indexed8 image over the mask's own bool buffer (0: transparent,
    1: the overlay colour), so painting needs no copy at all. Reduced levels hold coverage
    (0..255) and a 256-entry colour table fading the alpha, so thin strokes stay visible
    and smooth when zoomed out instead of breaking into dots.
    """

    def __init__(self, mask_array: np.ndarray, color: QColor):
        self.mask = mask_array
        base = mask_array.view(np.uint8)
        self.pyramid = Pyramid(base, base_to_8bit=lambda block: block * np.uint8(255))
        fmt = QImage.Format.Format_Indexed8
        self.images = [_qimage(level, fmt) for level in self.pyramid.levels]
        self.set_color(color)

    def set_color(self, color: QColor) -> None:
        self.color = QColor(color)
        alpha = self.color.alphaF()
        r, g, b = self.color.red(), self.color.green(), self.color.blue()
        self.images[0].setColorTable([0, QColor(r, g, b, round(255 * alpha)).rgba()])
        ramp = [QColor(r, g, b, round(i * alpha)).rgba() for i in range(256)]
        for image in self.images[1:]:
            image.setColorTable(ramp)

    def update(self, box: Box) -> None:
        self.pyramid.update(box)
