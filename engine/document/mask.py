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
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.document.box import Box, changed_box, sub_block, union_box
from engine.errors import MaskError

log = logging.getLogger(__name__)

Point = tuple[float, float]

# Snapshot granularity of a live stroke: the first time a stroke touches a tile, the
# tile's old content is saved so the finished stroke can produce an exact patch.
_TILE = 128
# Rows handled at a time when comparing or encoding big blocks, so no temporary is as
# large as the block (allocating fresh memory is what makes big copies slow).
_BAND = 256
MAX_MORPH = 2000  # px; grow/shrink stay exact up to here (see _morph)


def encode_bits(block: np.ndarray) -> bytes:
    """A bool block as zlib-compressed packed bits (rows padded to whole bytes).

    Masks are long runs of equal values, so a brush stroke across a 24 MP photo, whose
    box holds 2 x 9 MB of bools, encodes to tens of kilobytes in a few milliseconds."""
    z = zlib.compressobj(3)
    parts = [z.compress(np.packbits(block[y : y + _BAND], axis=1).tobytes())
             for y in range(0, block.shape[0], _BAND)]
    return b"".join(parts) + z.flush()


def decode_bits_into(data: bytes, out: np.ndarray) -> None:
    """Write the bool block encoded by encode_bits into `out` (a view of its shape)."""
    h, w = out.shape
    row_bytes = (w + 7) // 8
    z = zlib.decompressobj()
    pending = data
    for y in range(0, h, _BAND):
        rows = min(_BAND, h - y)
        chunk = z.decompress(pending, rows * row_bytes)
        pending = z.unconsumed_tail
        packed = np.frombuffer(chunk, dtype=np.uint8).reshape(rows, row_bytes)
        out[y : y + rows] = np.unpackbits(packed, axis=1, count=w).view(bool)


@dataclass(frozen=True, eq=False)
class MaskPatch:
    """What one edit changed: the box `bbox` and its old and new pixels.

    The pixels are kept encoded (encode_bits) because the undo history holds many
    patches; `old` and `new` decode them. Build one with MaskPatch.from_blocks."""

    bbox: Box
    old_bits: bytes
    new_bits: bytes

    @classmethod
    def from_blocks(cls, bbox: Box, old: np.ndarray, new: np.ndarray) -> MaskPatch:
        shape = (bbox[3] - bbox[1], bbox[2] - bbox[0])
        if old.shape != shape or new.shape != shape:
            raise ValueError(f"patch blocks {old.shape}/{new.shape} != box {shape}")
        return cls(bbox, encode_bits(old), encode_bits(new))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.bbox[3] - self.bbox[1], self.bbox[2] - self.bbox[0])

    @property
    def old(self) -> np.ndarray:
        return self._decode(self.old_bits)

    @property
    def new(self) -> np.ndarray:
        return self._decode(self.new_bits)

    def _decode(self, data: bytes) -> np.ndarray:
        out = np.empty(self.shape, dtype=bool)
        decode_bits_into(data, out)
        return out

    @property
    def nbytes(self) -> int:
        return len(self.old_bits) + len(self.new_bits)


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


def _segment_box(a: Point, b: Point, radius: float, width: int, height: int) -> Box | None:
    x0 = max(math.floor(min(a[0], b[0]) - radius - 0.5), 0)
    y0 = max(math.floor(min(a[1], b[1]) - radius - 0.5), 0)
    x1 = min(math.ceil(max(a[0], b[0]) + radius + 0.5), width)
    y1 = min(math.ceil(max(a[1], b[1]) + radius + 0.5), height)
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


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
        self._stroke: _LiveStroke | None = None

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
        self._stroke = _LiveStroke(self._array, float(radius), erase)
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


class _LiveStroke:
    """Paints segment by segment and remembers old tiles so it can make one exact patch."""

    def __init__(self, array: np.ndarray, radius: float, erase: bool):
        self.array = array
        self.radius = radius
        self.value = not erase
        self.last: Point | None = None
        self.saved: dict[tuple[int, int], np.ndarray] = {}

    def add(self, point: Point) -> Box | None:
        """Paint the capsule from the previous point; returns the box it touched."""
        point = (float(point[0]), float(point[1]))
        start = self.last if self.last is not None else point
        self.last = point
        h, w = self.array.shape
        box = _segment_box(start, point, self.radius, w, h)
        if box is None:
            return None
        x0, y0, x1, y1 = box
        rows = np.arange(y0, y1)
        lo, hi = capsule_spans(start, point, self.radius, rows)
        first = np.maximum(np.ceil(lo - 0.5), x0)
        end = np.minimum(np.floor(hi - 0.5) + 1, x1)
        keep = first < end
        if not keep.any():
            return None
        rows, first, end = rows[keep], first[keep].astype(int), end[keep].astype(int)
        self._save_tiles(rows, first, end)
        for y, a, b in zip(rows.tolist(), first.tolist(), end.tolist(), strict=True):
            self.array[y, a:b] = self.value
        return (int(first.min()), int(rows[0]), int(end.max()), int(rows[-1]) + 1)

    def _save_tiles(self, rows: np.ndarray, first: np.ndarray, end: np.ndarray) -> None:
        """Save the old content of every tile the spans are about to touch, once."""
        tile_rows = rows // _TILE
        for ty in range(int(tile_rows[0]), int(tile_rows[-1]) + 1):
            sel = tile_rows == ty
            # The capsule is convex, so its spans within a tile row form one interval.
            for tx in range(int(first[sel].min()) // _TILE, (int(end[sel].max()) - 1) // _TILE + 1):
                if (tx, ty) not in self.saved:
                    block = self.array[ty * _TILE : (ty + 1) * _TILE,
                                       tx * _TILE : (tx + 1) * _TILE]
                    self.saved[(tx, ty)] = block.copy()

    def patch(self) -> MaskPatch | None:
        # Only saved tiles can hold changes: find the exact changed box from them alone.
        changed = None
        for key, saved in self.saved.items():
            tile = self._tile_box(key, saved)
            changed = union_box(changed, changed_box(tile, saved, self._at(tile)))
        if changed is None:
            return None
        x0, y0, x1, y1 = changed
        # Rebuild the old pixels band by band from the current ones plus the saved tiles.
        by_row: dict[int, list] = {}
        for key, saved in self.saved.items():
            by_row.setdefault(key[1], []).append((self._tile_box(key, saved), saved))
        z = zlib.compressobj(3)
        parts = []
        for by in range(y0, y1, _BAND):
            band_box = (x0, by, x1, min(by + _BAND, y1))
            band = self._at(band_box).copy()
            tiles = range(by // _TILE, (band_box[3] - 1) // _TILE + 1)
            for tile, saved in (item for ty in tiles for item in by_row.get(ty, ())):
                inter = (max(tile[0], x0), max(tile[1], by),
                         min(tile[2], x1), min(tile[3], band_box[3]))
                if inter[0] < inter[2] and inter[1] < inter[3]:
                    sub_block(band, band_box, inter)[...] = sub_block(saved, tile, inter)
            parts.append(z.compress(np.packbits(band, axis=1).tobytes()))
        old_bits = b"".join(parts) + z.flush()
        return MaskPatch(changed, old_bits, encode_bits(self._at(changed)))

    def _at(self, box: Box) -> np.ndarray:
        return self.array[box[1] : box[3], box[0] : box[2]]

    @staticmethod
    def _tile_box(key: tuple[int, int], block: np.ndarray) -> Box:
        x0, y0 = key[0] * _TILE, key[1] * _TILE
        return (x0, y0, x0 + block.shape[1], y0 + block.shape[0])


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

