"""The removal mask at full resolution, edited by brush, rectangle, lasso and morphology.

Every edit returns a `MaskPatch` that records exactly what changed (the bounding box of the
changed pixels with their old and new values), or None when nothing changed. Patches are
what the undo history keeps, so they never hold more than the changed box.

Geometry convention (shared with the canvas): pixel (i, j) covers [i, i+1) x [j, j+1) in
image space, so its centre is (i + 0.5, j + 0.5). A shape covers a pixel when the shape
contains the pixel's centre. A brush stroke of radius r is the set of points within r of
the polyline through its points: discs at the points joined by capsules, so a fast mouse
never leaves gaps. Boxes are (x0, y0, x1, y1), end-exclusive.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from engine.document.box import Box, changed_box, sub_block
from engine.document.live_stroke import LiveStroke
from engine.document.mask_patch import MaskPatch, decode_bits_into, encode_bits
from engine.document.mask_shapes import Point, polygon_inside
from engine.errors import MaskError

log = logging.getLogger(__name__)

# Importers take the patch type and its bit coding from here too (one name for "the mask").
__all__ = ["MAX_MORPH", "MaskModel", "MaskPatch", "Point", "decode_bits_into", "encode_bits"]

MAX_MORPH = 2000  # px; grow/shrink stay exact up to here (see _morph)


class MaskModel:
    """A width x height bool mask and the edits on it.

    Each edit applies itself and returns the MaskPatch it made (None: nothing changed).
    A live brush stroke (begin_stroke / stroke_segment / end_stroke) paints as the mouse
    moves and yields one patch for the whole drag; no other edit may run during it.
    """

    def __init__(self, width: int, height: int):
        if width <= 0 or height <= 0:
            raise MaskError(f"a mask needs a positive size, not {width}x{height}")
        self._array = np.zeros((height, width), dtype=bool)
        self._stroke: LiveStroke | None = None

    # -- reading ----------------------------------------------------------------------

    @property
    def width(self) -> int:
        return self._array.shape[1]

    @property
    def height(self) -> int:
        return self._array.shape[0]

    @property
    def array(self) -> np.ndarray:
        """The live [H, W] bool array, read-only. The buffer never moves, so a display
        may wrap it once and see every edit."""
        view = self._array.view()
        view.setflags(write=False)
        return view

    def any(self) -> bool:
        return bool(self._array.any())

    def count(self) -> int:
        return int(np.count_nonzero(self._array))

    def bbox(self) -> Box | None:
        """Bounding box of the masked pixels, or None when the mask is empty."""
        rows = np.flatnonzero(self._array.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(self._array[rows[0] : rows[-1] + 1].any(axis=0))
        return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)

    # -- patches ----------------------------------------------------------------------

    def apply(self, patch: MaskPatch) -> None:
        """Redo: write the patch's new pixels."""
        self._check_idle()
        decode_bits_into(patch.new_bits, self._view(patch.bbox))

    def revert(self, patch: MaskPatch) -> None:
        """Undo: write the patch's old pixels back."""
        self._check_idle()
        decode_bits_into(patch.old_bits, self._view(patch.bbox))

    def _view(self, box: Box) -> np.ndarray:
        return self._array[box[1] : box[3], box[0] : box[2]]

    def _replace(self, box: Box, new: np.ndarray) -> MaskPatch | None:
        """Write `new` into `box` and return the patch of what really changed."""
        self._check_idle()
        region = self._view(box)
        changed = changed_box(box, region, new)
        if changed is None:
            return None
        new = sub_block(new, box, changed)
        patch = MaskPatch.from_blocks(changed, sub_block(region, box, changed), new)
        self._view(changed)[...] = new
        return patch

    def _clip(self, box: Box) -> Box | None:
        x0, y0 = max(box[0], 0), max(box[1], 0)
        x1, y1 = min(box[2], self.width), min(box[3], self.height)
        return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None

    def _check_idle(self) -> None:
        if self._stroke is not None:
            raise RuntimeError("a live stroke is in progress; end or cancel it first")

    # -- edits --------------------------------------------------------------------------

    def stroke(self, points: Sequence[Point], radius: float, erase: bool = False):
        """Paint (or erase) the polyline through `points` with a round brush of `radius`."""
        points = list(points)
        if not points:
            return None
        self.begin_stroke(points[0], radius, erase)
        for p in points[1:]:
            self.stroke_segment(p)
        return self.end_stroke()

    def fill_rect(self, x0: float, y0: float, x1: float, y1: float, erase: bool = False):
        """Fill (or clear) the pixels whose centres lie in the rectangle (any corner order).

        Integer corners (0, 0, 10, 10) cover exactly pixels 0..9 in each direction."""
        c0 = math.ceil(min(x0, x1) - 0.5)
        c1 = math.floor(max(x0, x1) - 0.5) + 1
        r0 = math.ceil(min(y0, y1) - 0.5)
        r1 = math.floor(max(y0, y1) - 0.5) + 1
        box = self._clip((c0, r0, c1, r1))
        if box is None:
            return None
        shape = (box[3] - box[1], box[2] - box[0])
        return self._replace(box, np.full(shape, not erase))

    def fill_polygon(self, points: Sequence[Point], erase: bool = False):
        """Fill (or clear) the inside of a closed polygon (a lasso), even-odd rule."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if len(pts) < 3:
            return None
        (x0, y0), (x1, y1) = np.floor(pts.min(axis=0)), np.ceil(pts.max(axis=0)) + 1
        box = self._clip((int(x0), int(y0), int(x1), int(y1)))
        if box is None:
            return None
        inside = polygon_inside(pts, box)
        region = self._view(box)
        new = region & ~inside if erase else region | inside
        return self._replace(box, new)

    def clear(self, box: Box | None = None):
        """Clear the whole mask, or only the pixels inside `box`."""
        self._check_idle()
        area = self.bbox()
        if area is not None and box is not None:
            inter = (max(area[0], box[0]), max(area[1], box[1]),
                     min(area[2], box[2]), min(area[3], box[3]))
            area = self._clip(inter)
        if area is None:
            return None
        shape = (area[3] - area[1], area[2] - area[0])
        return self._replace(area, np.zeros(shape, dtype=bool))

    def invert(self):
        """Swap masked and unmasked pixels; the patch really spans the whole image."""
        self._check_idle()
        return self._replace((0, 0, self.width, self.height), ~self._array)

    def grow(self, pixels: int):
        """Add every pixel within `pixels` (Euclidean) of the mask: a disc dilation."""
        return self._morph(int(pixels), grow=True)

    def shrink(self, pixels: int):
        """Keep only pixels farther than `pixels` from any unmasked pixel: a disc erosion.

        The photo's border does not count as unmasked, so a mask touching it stays there."""
        return self._morph(int(pixels), grow=False)

    def _morph(self, pixels: int, grow: bool):
        import cv2

        self._check_idle()
        if pixels > MAX_MORPH:
            raise ValueError(f"grow/shrink by at most {MAX_MORPH} px, not {pixels}")
        area = self.bbox()
        if pixels <= 0 or area is None:
            return None
        pad = pixels if grow else 1
        box = self._clip((area[0] - pad, area[1] - pad, area[2] + pad, area[3] + pad))
        assert box is not None  # the mask's own bounding box, grown, is inside the photo
        region = self._array[box[1] : box[3], box[0] : box[2]]
        # An exact Euclidean distance transform costs the same for any radius, unlike a
        # dilation whose kernel grows with it. Distances are square roots of integers and
        # the next one above p is about p + 1/(2p), so a threshold a quarter of that gap
        # above p is exact (in float32 up to p of a few thousand, hence MAX_MORPH).
        source = ~region if grow else region
        dist = cv2.distanceTransform(source.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        near = dist <= np.float32(pixels + 0.25 / (pixels + 1))
        return self._replace(box, near if grow else region & ~near)

    def set_array(self, array: np.ndarray):
        """Replace the mask's content (e.g. a loaded mask); nonzero means masked."""
        array = np.asarray(array)
        if array.shape != self._array.shape:
            raise MaskError(f"mask of shape {array.shape} does not fit {self._array.shape}")
        self._check_idle()
        return self._replace((0, 0, self.width, self.height), array.astype(bool, copy=False))

    # -- live strokes ---------------------------------------------------------------------

    @property
    def stroke_active(self) -> bool:
        return self._stroke is not None

    def begin_stroke(self, point: Point, radius: float, erase: bool = False) -> Box | None:
        """Start a live stroke with a dab at `point`; returns the box it changed."""
        self._check_idle()
        if radius < 0:
            raise ValueError(f"brush radius must be >= 0, not {radius}")
        self._stroke = LiveStroke(self._array, float(radius), erase)
        return self._stroke.add(point)

    def stroke_segment(self, point: Point) -> Box | None:
        """Extend the live stroke to `point`; returns the box it changed (for redrawing)."""
        if self._stroke is None:
            raise RuntimeError("no live stroke: call begin_stroke first")
        return self._stroke.add(point)

    def end_stroke(self) -> MaskPatch | None:
        """Finish the live stroke: one patch for the whole drag, already applied."""
        if self._stroke is None:
            raise RuntimeError("no live stroke: call begin_stroke first")
        stroke, self._stroke = self._stroke, None
        return stroke.patch()

    def cancel_stroke(self) -> Box | None:
        """Abandon the live stroke, restoring every pixel it changed; returns their box."""
        if self._stroke is None:
            return None
        stroke, self._stroke = self._stroke, None
        patch = stroke.patch()
        if patch is None:
            return None
        self.revert(patch)
        return patch.bbox
