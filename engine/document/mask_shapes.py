"""Which pixels a brush segment or a polygon covers, row by row.

Pixel (i, j) covers [i, i+1) x [j, j+1), so its centre is (i + 0.5, j + 0.5); a shape
covers a pixel when it contains the pixel's centre. Boxes are (x0, y0, x1, y1),
end-exclusive.
"""

from __future__ import annotations

import math

import numpy as np

from engine.document.box import Box

Point = tuple[float, float]


def _interval_of_linear(coef: float, const: np.ndarray, lo: float, hi: float):
    """Per row, the x interval where lo <= coef * x + const <= hi (empty: lo > hi)."""
    if coef > 0:
        return (lo - const) / coef, (hi - const) / coef
    if coef < 0:
        return (hi - const) / coef, (lo - const) / coef
    inside = (const >= lo) & (const <= hi)
    return np.where(inside, -np.inf, np.inf), np.where(inside, np.inf, -np.inf)


def capsule_spans(a: Point, b: Point, radius: float, rows: np.ndarray):
    """For each pixel row, the x interval (lo, hi) of points within `radius` of segment ab.

    The capsule is convex, so each row meets it in one interval: the union of what the
    two end discs and the rectangle between them cut from the row. Exact, and O(rows)
    instead of O(area), which matters for big brushes on big photos.
    """
    cy = rows + 0.5
    r2 = radius * radius
    lo = np.full(cy.shape, np.inf)
    hi = np.full(cy.shape, -np.inf)
    for px, py in (a, b):
        h2 = r2 - (cy - py) ** 2
        h = np.sqrt(np.maximum(h2, 0.0))
        ok = h2 >= 0
        lo = np.minimum(lo, np.where(ok, px - h, np.inf))
        hi = np.maximum(hi, np.where(ok, px + h, -np.inf))
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy)
    if length > 0:
        ux, uy = dx / length, dy / length
        # Along the segment: 0 <= (p - a).u <= length; across: |(p - a).n| <= r, n = (-uy, ux).
        along_lo, along_hi = _interval_of_linear(ux, -a[0] * ux + (cy - a[1]) * uy, 0, length)
        across_lo, across_hi = _interval_of_linear(
            -uy, a[0] * uy + (cy - a[1]) * ux, -radius, radius
        )
        s_lo, s_hi = np.maximum(along_lo, across_lo), np.minimum(along_hi, across_hi)
        has = s_lo <= s_hi
        lo = np.minimum(lo, np.where(has, s_lo, np.inf))
        hi = np.maximum(hi, np.where(has, s_hi, -np.inf))
    return lo, hi


def segment_box(a: Point, b: Point, radius: float, width: int, height: int) -> Box | None:
    x0 = max(math.floor(min(a[0], b[0]) - radius - 0.5), 0)
    y0 = max(math.floor(min(a[1], b[1]) - radius - 0.5), 0)
    x1 = min(math.ceil(max(a[0], b[0]) + radius + 0.5), width)
    y1 = min(math.ceil(max(a[1], b[1]) + radius + 0.5), height)
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def polygon_inside(points: np.ndarray, box: Box) -> np.ndarray:
    """Bool block over `box`: pixel centres inside the closed polygon (even-odd rule).

    Each edge toggles the parity of every pixel right of where it crosses a row; a
    running sum along each row turns the toggles into inside/outside. Rows use a
    half-open test so a vertex shared by two edges is counted once.
    """
    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    p = points
    q = np.roll(points, -1, axis=0)
    ylo, yhi = np.minimum(p[:, 1], q[:, 1]), np.maximum(p[:, 1], q[:, 1])
    r_first = np.maximum(np.ceil(ylo - 0.5), y0).astype(np.int64)
    r_end = np.minimum(np.ceil(yhi - 0.5), y1).astype(np.int64)
    counts = np.maximum(r_end - r_first, 0)
    toggles = np.zeros((h, w + 1), dtype=np.uint8)
    if counts.sum() > 0:
        edge = np.repeat(np.arange(len(p)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        rows = r_first[edge] + offsets
        cy = rows + 0.5
        px, py, qx, qy = p[edge, 0], p[edge, 1], q[edge, 0], q[edge, 1]
        cross = px + (cy - py) * (qx - px) / (qy - py)
        cols = np.clip(np.ceil(cross - 0.5), x0, x1).astype(np.int64) - x0
        np.add.at(toggles, (rows - y0, cols), 1)
    # uint8 wraps around, which keeps the parity.
    return (np.cumsum(toggles[:, :w], axis=1, dtype=np.uint8) & 1).astype(bool)

