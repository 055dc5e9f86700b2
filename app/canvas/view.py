"""Small pieces of the canvas that need no widget: tools, zoom steps, brush steps."""

from __future__ import annotations

import math
from enum import StrEnum


class Tool(StrEnum):
    """The canvas's tools; the value is what toolChanged(str) emits."""

    BRUSH = "brush"
    ERASER = "eraser"
    RECT = "rect"
    LASSO = "lasso"


TOOL_SHORTCUTS = {Tool.BRUSH: "B", Tool.ERASER: "E", Tool.RECT: "R", Tool.LASSO: "L"}
TOOL_LABELS = {Tool.BRUSH: "Brush", Tool.ERASER: "Eraser", Tool.RECT: "Rectangle",
               Tool.LASSO: "Lasso"}

# Undo-history names of each kind of edit: (painting, erasing).
STEP_NAMES = {
    Tool.BRUSH: ("Brush stroke", "Erase"),
    Tool.ERASER: ("Brush stroke", "Erase"),
    Tool.RECT: ("Rectangle", "Erase rectangle"),
    Tool.LASSO: ("Lasso", "Erase lasso"),
}

MIN_ZOOM = 0.01
MAX_ZOOM = 32.0
# Ctrl +/- walk these; the wheel zooms continuously in between.
ZOOM_STEPS = (0.01, 0.02, 1 / 32, 0.05, 1 / 16, 1 / 12, 0.125, 1 / 6, 0.25, 1 / 3, 0.5, 2 / 3,
              1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0)
WHEEL_NOTCH_FACTOR = 2 ** 0.25  # one wheel notch (120 units); four notches double the zoom

BRUSH_MIN = 1
BRUSH_MAX = 2000
BRUSH_DEFAULT = 40
_BRUSH_STEP = 1.25  # [ and ] scale the brush by this, and by at least one pixel


def clamp_zoom(zoom: float) -> float:
    return min(max(float(zoom), MIN_ZOOM), MAX_ZOOM)


def next_zoom_step(zoom: float, direction: int) -> float:
    """The next preset zoom above (direction > 0) or below the current one."""
    if direction > 0:
        above = [z for z in ZOOM_STEPS if z > zoom * 1.001]
        return above[0] if above else MAX_ZOOM
    below = [z for z in ZOOM_STEPS if z < zoom / 1.001]
    return below[-1] if below else MIN_ZOOM


def wheel_zoom(zoom: float, angle_delta: int) -> float:
    """Zoom after a wheel turn of `angle_delta` eighths of a degree (120 per notch)."""
    return clamp_zoom(zoom * WHEEL_NOTCH_FACTOR ** (angle_delta / 120))


def fit_zoom(image_w: int, image_h: int, view_w: int, view_h: int, margin: int = 8) -> float:
    """The zoom that shows the whole photo inside the view with `margin` px around it."""
    avail_w, avail_h = max(view_w - 2 * margin, 1), max(view_h - 2 * margin, 1)
    return clamp_zoom(min(avail_w / image_w, avail_h / image_h))


def step_brush(size: int, direction: int) -> int:
    """Brush size after one press of ] (direction > 0) or [."""
    if direction > 0:
        new = max(size + 1, math.ceil(size * _BRUSH_STEP))
    else:
        new = min(size - 1, math.floor(size / _BRUSH_STEP))
    return min(max(new, BRUSH_MIN), BRUSH_MAX)
