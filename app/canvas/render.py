"""Render the canvas offscreen to a PNG, to look at it without a screen.

    python -m app.canvas.render OUT.png [--width 960 --height 640]

Makes a synthetic landscape photo with a pole and a wire to remove, paints a mask over
them with a few strokes, a rectangle and a lasso, shows the brush ring, and saves
QWidget.grab() of the canvas.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

PHOTO_SIZE = (1200, 800)  # width, height


def synthetic_photo(width: int = PHOTO_SIZE[0], height: int = PHOTO_SIZE[1]) -> np.ndarray:
    """An RGB uint8 landscape: sky, sun, hills, a pole with a wire, a bench. No red."""
    import cv2

    y = np.linspace(0, 1, height)[:, None, None]
    sky = (np.array([90, 150, 225]) * (1 - y) + np.array([200, 225, 245]) * y)
    img = np.broadcast_to(sky, (height, width, 3)).astype(np.uint8).copy()
    horizon = int(height * 0.62)
    xs = np.arange(width)
    hills = (horizon - 40 * np.sin(xs / width * 5.0) - 25 * np.sin(xs / width * 13.0)).astype(int)
    for x, top in enumerate(hills):
        img[top:, x] = (70, 125, 60)
    cv2.circle(img, (int(width * 0.8), int(height * 0.18)), int(height * 0.07), (250, 235, 150), -1)
    pole_x = int(width * 0.35)
    cv2.rectangle(img, (pole_x - 6, int(height * 0.2)), (pole_x + 6, int(height * 0.8)),
                  (60, 55, 50), -1)
    cv2.line(img, (0, int(height * 0.3)), (pole_x, int(height * 0.22)), (40, 40, 40), 3)
    cv2.line(img, (pole_x, int(height * 0.22)), (width, int(height * 0.35)), (40, 40, 40), 3)
    cv2.rectangle(img, (int(width * 0.6), int(height * 0.78)), (int(width * 0.72),
                  int(height * 0.82)), (110, 80, 50), -1)
    return img


def render(out: Path, view_size: tuple[int, int] = (960, 640)) -> Path:
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from app.canvas.widget import MaskCanvas

    app = QApplication.instance() or QApplication([])
    canvas = MaskCanvas()
    canvas.resize(*view_size)
    pixels = synthetic_photo()
    w, h = pixels.shape[1], pixels.shape[0]
    canvas.setImage(pixels)
    canvas.setBrushSize(36)
    pole_x = w * 0.35
    canvas.paintStroke([(pole_x, h * 0.2), (pole_x, h * 0.8)])  # the pole
    canvas.paintStroke([(0, h * 0.3), (pole_x, h * 0.22), (w, h * 0.35)], brush_size=14)
    canvas.fillRect(w * 0.59, h * 0.76, w * 0.73, h * 0.84)  # the bench
    canvas.fillLasso([(w * 0.05, h * 0.85), (w * 0.2, h * 0.8), (w * 0.25, h * 0.95),
                      (w * 0.1, h * 0.97)])
    canvas.paintStroke([(w * 0.12, h * 0.9), (w * 0.18, h * 0.88)], erase=True, brush_size=20)
    canvas.show()
    app.processEvents()
    # Hover the mouse so the brush ring shows.
    hover = canvas.mapFromImage(QPointF(w * 0.5, h * 0.5))
    move = QMouseEvent(QEvent.Type.MouseMove, hover, canvas.mapToGlobal(hover),
                       Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(canvas, move)
    image = canvas.grab()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out), "PNG"):
        raise OSError(f"could not write {out}")
    log.info("wrote %s (%dx%d, zoom %.3f)", out, image.width(), image.height(), canvas.zoom())
    canvas.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--height", type=int, default=640)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no screen needed
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    render(args.out, (args.width, args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
