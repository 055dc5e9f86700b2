"""Region planning: which parts of a photo the model sees, and at what scale.

The network only takes 512x512 pixels. A photo is handled one *region* at a time: a
connected part of the mask plus a square *context window* around it (about twice the
region's extent, never smaller than 512 px where the photo allows), cut out, resized to
the model's size and back. Regions whose windows would overlap are merged so that no
pixel is generated twice. A region much longer than the photo is high (a cable across a
panorama) is cut into pieces along its length, each with its own square window, so the
model sees it near full resolution instead of squashed into a sliver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.document.box import Box, overlaps, union_box


@dataclass(frozen=True)
class Window:
    """A square of side `size` with top-left (x, y); it may stick out of the photo, in
    which case the missing part is filled by reflection."""

    x: int
    y: int
    size: int

    @property
    def box(self) -> Box:
        return (self.x, self.y, self.x + self.size, self.y + self.size)


@dataclass(frozen=True)
class Region:
    bbox: Box  # the mask pixels this region is responsible for
    window: Window
    group: int = 0  # pieces cut from one long region share a group


def component_boxes(mask: np.ndarray) -> list[Box]:
    """Bounding boxes of the 8-connected parts of a bool mask."""
    import cv2

    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return []
    # Label only the mask's bounding box: on a 24 MP photo that is most of the saving.
    oy, ox = int(rows[0]), int(cols[0])
    sub = np.ascontiguousarray(mask[oy : rows[-1] + 1, ox : cols[-1] + 1]).view(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(sub, connectivity=8)
    return [
        (int(x) + ox, int(y) + oy, int(x + w) + ox, int(y + h) + oy)
        for x, y, w, h, _ in stats[1:n]  # label 0 is the background
    ]


def window_for(box: Box, width: int, height: int, min_size: int, context: float) -> Window:
    """A square around `box` with `context` times its extent, shifted inside the photo."""
    x0, y0, x1, y1 = box
    extent = max(x1 - x0, y1 - y0)
    size = max(round(context * extent), min_size)
    size = max(min(size, max(width, height)), extent)  # no larger than the photo allows
    return Window(_place(x0, x1, size, width), _place(y0, y1, size, height), size)


def _place(lo: int, hi: int, size: int, limit: int) -> int:
    """Start of a span of `size` centred on [lo, hi), shifted to stay inside [0, limit)."""
    start = (lo + hi - size) // 2
    if size >= limit:  # cannot fit: centre the photo's span in the window instead
        return min(max(start, limit - size), 0)
    return min(max(start, 0), limit - size)


def merge_boxes(boxes: list[Box], width: int, height: int, min_size: int,
                context: float) -> list[Box]:
    """Merge boxes until no two context windows overlap."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        windows = [window_for(b, width, height, min_size, context).box for b in boxes]
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if overlaps(windows[i], windows[j]):
                    boxes[i] = union_box(boxes[i], boxes[j])
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def split_long(box: Box, width: int, height: int) -> list[Box]:
    """Cut a box much longer than the photo's short side into pieces along its length.

    Each piece is at most half the short side long, so its square window (the short side)
    gives it context on both ends; a window longer than the photo's short side would be
    mostly reflection padding and squash the region far below full resolution.
    """
    short = min(width, height)
    x0, y0, x1, y1 = box
    horizontal = (x1 - x0) >= (y1 - y0)
    length = (x1 - x0) if horizontal else (y1 - y0)
    if length <= 1.5 * short:
        return [box]
    pieces = int(np.ceil(length / (short / 2)))
    cuts = np.linspace(x0 if horizontal else y0, x1 if horizontal else y1, pieces + 1)
    cuts = np.round(cuts).astype(int)
    if horizontal:
        return [(int(a), y0, int(b), y1) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    return [(x0, int(a), x1, int(b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def plan_regions(mask: np.ndarray, min_size: int = 512, context: float = 2.0) -> list[Region]:
    """Regions covering every True pixel of `mask` (bool [H, W]), top to bottom."""
    height, width = mask.shape
    boxes = merge_boxes(component_boxes(mask), width, height, min_size, context)
    regions = []
    for group, box in enumerate(sorted(boxes, key=lambda b: (b[1], b[0]))):
        pieces = split_long(box, width, height)
        # Pieces of a long region use the largest square the photo holds.
        piece_min = min(min_size, width, height) if len(pieces) > 1 else min_size
        for piece in pieces:
            if mask[piece[1] : piece[3], piece[0] : piece[2]].any():
                window = window_for(piece, width, height, piece_min, context)
                regions.append(Region(piece, window, group))
    return regions
