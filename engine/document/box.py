"""Axis-aligned pixel boxes: the one `Box` type every package uses.

A box is (x0, y0, x1, y1), end-exclusive, in photo pixels. Pixel (i, j) covers
[i, i+1) x [j, j+1), so a box of width x1 - x0 holds exactly that many columns.
"""

from __future__ import annotations

import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (end-exclusive)

# Rows handled at a time when comparing big blocks, so no temporary is as large as the
# block (allocating fresh memory is what makes big comparisons slow).
_BAND = 256


def overlaps(a: Box, b: Box) -> bool:
    """True when the boxes share at least one pixel."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def union_box(a: Box | None, b: Box | None) -> Box | None:
    """The smallest box holding both (None stands for the empty box)."""
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def sub_block(block: np.ndarray, outer: Box, inner: Box) -> np.ndarray:
    """The view of `block` (covering box `outer`) that covers box `inner`."""
    x0, y0 = inner[0] - outer[0], inner[1] - outer[1]
    return block[y0 : y0 + inner[3] - inner[1], x0 : x0 + inner[2] - inner[0]]


def changed_box(bbox: Box, old: np.ndarray, new: np.ndarray) -> Box | None:
    """The part of `bbox` where blocks `old` and `new` ([h, w] or [h, w, C]) differ."""
    h, w = old.shape[:2]
    rows = np.zeros(h, dtype=bool)
    cols = np.zeros(w, dtype=bool)
    for y in range(0, h, _BAND):
        diff = old[y : y + _BAND] != new[y : y + _BAND]
        if diff.ndim == 3:
            diff = diff.any(axis=2)
        rows[y : y + _BAND] = diff.any(axis=1)
        cols |= diff.any(axis=0)
    r = np.flatnonzero(rows)
    if r.size == 0:
        return None
    c = np.flatnonzero(cols)
    return (bbox[0] + int(c[0]), bbox[1] + int(r[0]),
            bbox[0] + int(c[-1]) + 1, bbox[1] + int(r[-1]) + 1)
