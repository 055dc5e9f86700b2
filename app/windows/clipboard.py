"""The clipboard: Ctrl+V opens a copied picture as a new untitled photo, Edit ▸ Copy image
copies the current picture. Pixels cross as QImages (what browsers, file managers and
other editors put there); a copied image *file* (a file manager's Copy) opens that file."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QMimeData
from PySide6.QtGui import QGuiApplication, QImage

from engine.imageio.files import is_supported
from engine.imageio.pixels import to_8bit


def image_to_pixels(image: QImage) -> np.ndarray | None:
    """[H, W, 3] or [H, W, 4] (when the image has alpha) uint8 pixels, or None if empty."""
    if image.isNull() or image.width() == 0 or image.height() == 0:
        return None
    alpha = image.hasAlphaChannel()
    fmt = QImage.Format.Format_RGBA8888 if alpha else QImage.Format.Format_RGB888
    image = image.convertToFormat(fmt)
    w, h, channels = image.width(), image.height(), 4 if alpha else 3
    rows = np.frombuffer(image.constBits(), np.uint8, count=image.bytesPerLine() * h)
    rows = rows.reshape(h, image.bytesPerLine())
    return np.array(rows[:, : w * channels].reshape(h, w, channels))


def pixels_to_image(pixels: np.ndarray) -> QImage:
    """A QImage that owns a copy of working pixels ([H, W, 3|4], 8 or 16 bit: 8 bit out)."""
    a = to_8bit(pixels) if pixels.dtype == np.uint16 else pixels
    a = np.ascontiguousarray(a)
    h, w, channels = a.shape
    fmt = QImage.Format.Format_RGBA8888 if channels == 4 else QImage.Format.Format_RGB888
    return QImage(a.data, w, h, w * channels, fmt).copy()  # copy: a may be freed


def pasted_file(mime: QMimeData | None) -> str | None:
    """The local image file a file manager copied, if that is what the clipboard holds."""
    if mime is None or not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and is_supported(url.toLocalFile()):
            return url.toLocalFile()
    return None


def clipboard_pixels() -> tuple[np.ndarray | None, str | None]:
    """(pixels of a copied picture, or the path of a copied image file); (None, None) when
    the clipboard holds neither."""
    clipboard = QGuiApplication.clipboard()
    path = pasted_file(clipboard.mimeData())
    if path is not None:
        return None, path
    mime = clipboard.mimeData()
    if mime is None or not mime.hasImage():
        return None, None
    return image_to_pixels(clipboard.image()), None


def copy_pixels(pixels: np.ndarray) -> None:
    QGuiApplication.clipboard().setImage(pixels_to_image(pixels))
