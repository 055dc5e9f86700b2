"""A brush stroke being painted: segment by segment, then one exact undo patch."""

from __future__ import annotations

import zlib

import numpy as np

from engine.document.box import Box, changed_box, sub_block, union_box
from engine.document.mask_patch import BAND, MaskPatch, encode_bits
from engine.document.mask_shapes import Point, capsule_spans, segment_box

# Snapshot granularity of a live stroke: the first time a stroke touches a tile, the
# tile's old content is saved so the finished stroke can produce an exact patch.
TILE = 128


class LiveStroke:
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
        box = segment_box(start, point, self.radius, w, h)
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
        tile_rows = rows // TILE
        for ty in range(int(tile_rows[0]), int(tile_rows[-1]) + 1):
            sel = tile_rows == ty
            # The capsule is convex, so its spans within a tile row form one interval.
            for tx in range(int(first[sel].min()) // TILE, (int(end[sel].max()) - 1) // TILE + 1):
                if (tx, ty) not in self.saved:
                    block = self.array[ty * TILE : (ty + 1) * TILE,
                                       tx * TILE : (tx + 1) * TILE]
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
        for by in range(y0, y1, BAND):
            band_box = (x0, by, x1, min(by + BAND, y1))
            band = self._at(band_box).copy()
            tiles = range(by // TILE, (band_box[3] - 1) // TILE + 1)
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
        x0, y0 = key[0] * TILE, key[1] * TILE
        return (x0, y0, x0 + block.shape[1], y0 + block.shape[0])
