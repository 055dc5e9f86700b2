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
from typing import TYPE_CHECKING

import numpy as np

from engine.document.box import Box

if TYPE_CHECKING:
    from engine.events import CancelToken


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
    x, y, size = _windows(np.array([box], dtype=np.int64), width, height, min_size, context)[0]
    return Window(int(x), int(y), int(size))


def _windows(boxes: np.ndarray, width: int, height: int, min_size: int | np.ndarray,
             context: float) -> np.ndarray:
    """`window_for` of every row of `boxes` ([n, 4] int64) at once, as [n, 3] (x, y, size);
    `min_size` may differ per box.

    One implementation for one box and for thousands, so the merge and the final windows
    can never disagree by a pixel. np.rint rounds halves to even, as Python's round does.
    """
    x0, y0, x1, y1 = boxes.T
    extent = np.maximum(x1 - x0, y1 - y0)
    size = np.maximum(np.rint(context * extent).astype(np.int64), min_size)
    size = np.maximum(np.minimum(size, max(width, height)), extent)
    return np.stack([_place(x0, x1, size, width), _place(y0, y1, size, height), size], axis=1)


def _place(lo: np.ndarray, hi: np.ndarray, size: np.ndarray, limit: int) -> np.ndarray:
    """Start of a span of `size` centred on [lo, hi), shifted to stay inside [0, limit)."""
    start = (lo + hi - size) // 2
    # A window that cannot fit centres the photo's span in itself instead.
    too_big = np.minimum(np.maximum(start, limit - size), 0)
    fits = np.minimum(np.maximum(start, 0), limit - size)
    return np.where(size >= limit, too_big, fits)


def merge_boxes(boxes: list[Box], width: int, height: int, min_size: int, context: float,
                cancel: CancelToken | None = None) -> list[Box]:
    """Merge boxes until no two context windows overlap.

    Works in rounds over all boxes at once instead of restarting a pairwise scan after each
    merge (quadratic per merge: seconds for a few thousand specks on a 12 MP photo). A
    round first collapses windows whose corners share a grid cell (they overlap for sure),
    which leaves at most one window per cell; once no cell holds two, a sort-and-sweep
    finds every overlapping pair, and each connected group becomes the union of its boxes.
    Merged boxes get larger windows, which may overlap again, hence the rounds. Every
    result is a union of input boxes; groups keep the order of their first box.
    """
    arr = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    while len(arr) > 1:
        _check(cancel)
        win = _windows(arr, width, height, min_size, context)
        labels = _same_cell_groups(win)
        if labels is None:
            labels = _overlap_groups(win, cancel)
            if labels is None:
                break
        arr = _union_groups(arr, labels)
    return [(int(a), int(b), int(c), int(d)) for a, b, c, d in arr]


def _same_cell_groups(win: np.ndarray) -> np.ndarray | None:
    """Group windows whose top-left corners fall in one cell of a grid as fine as the
    smallest window: their corners are closer than either side, so they overlap. Labels
    are each group's lowest index; None when every window has a cell of its own."""
    cell = int(win[:, 2].min())
    cx, cy = win[:, 0] // cell, win[:, 1] // cell
    key = (cx - cx.min()) * (int(cy.max() - cy.min()) + 1) + (cy - cy.min())
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    if len(first) == len(win):
        return None
    # np.unique's first occurrence is each key's lowest index.
    return first[inverse.reshape(-1)]


# Candidate pairs looked at per step of the sweep: bounds the memory on unusual masks.
_PAIRS_PER_STEP = 1 << 20


def _overlap_groups(win: np.ndarray, cancel: CancelToken | None) -> np.ndarray | None:
    """Connected groups of overlapping windows (labels: each group's lowest index), or None
    when no two overlap.

    Sort-and-sweep: after sorting by left edge, the windows that overlap window i in x and
    start no earlier are a contiguous run after it; only those are checked in y. With at
    most one corner per grid cell that run is a strip of a few cells across the windows'
    spread, so the sweep goes along the axis they spread most in (the strip's length is
    then the shorter spread): a tall panorama is swept top to bottom.
    """
    n = len(win)
    x0, y0, size = win[:, 0], win[:, 1], win[:, 2]
    if np.ptp(y0) > np.ptp(x0):
        x0, y0 = y0, x0  # overlap is symmetric in x and y
    order = np.argsort(x0, kind="stable")
    xs = x0[order]
    ends = np.searchsorted(xs, xs + size[order], side="left")  # first start past i's right
    counts = ends - np.arange(n) - 1
    firsts, seconds = [], []
    for lo, hi in _chunks(counts, _PAIRS_PER_STEP):
        _check(cancel)
        c = counts[lo:hi]
        i = np.repeat(np.arange(lo, hi), c)
        j = i + 1 + np.arange(len(i)) - np.repeat(np.cumsum(c) - c, c)
        a, b = order[i], order[j]
        hit = (y0[a] < y0[b] + size[b]) & (y0[b] < y0[a] + size[a])
        firsts.append(a[hit])
        seconds.append(b[hit])
    a, b = np.concatenate(firsts), np.concatenate(seconds)
    if len(a) == 0:
        return None
    return _components(n, a, b)


def _chunks(counts: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Split range(len(counts)) into runs whose counts sum to about `budget` (a run holds
    at least one index, however large its count)."""
    total = np.cumsum(counts)
    bounds, lo = [], 0
    while lo < len(counts):
        base = total[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(total, base + budget, side="right")), lo + 1)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of the graph on n nodes with edges a[k]-b[k]: each node's label
    is the lowest node of its component.

    Union-find done in numpy passes: every edge between two trees hooks the larger root
    under the smaller, then paths are halved until each tree is a star. Edges inside a tree
    drop out, and the roots shrink geometrically in practice (about log n passes), where a
    plain propagation of the lowest label would need as many passes as the longest path.
    """
    parent = np.arange(n)
    while True:
        ra, rb = parent[a], parent[b]  # parent is a forest of stars: these are roots
        between = ra != rb
        if not between.any():
            return parent
        a, b, ra, rb = a[between], b[between], ra[between], rb[between]
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))
        while True:  # hooks only go to lower nodes, so there are no cycles to chase
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def _union_groups(boxes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One box per label (the union of its boxes), in the order of the labels' values."""
    keys, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(-1)
    out = np.empty((len(keys), 4), dtype=np.int64)
    out[:, :2] = np.iinfo(np.int64).max
    out[:, 2:] = np.iinfo(np.int64).min
    for k in range(2):
        np.minimum.at(out[:, k], inverse, boxes[:, k])
        np.maximum.at(out[:, k + 2], inverse, boxes[:, k + 2])
    return out


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


def plan_regions(mask: np.ndarray, min_size: int = 512, context: float = 2.0,
                 cancel: CancelToken | None = None) -> list[Region]:
    """Regions covering every True pixel of `mask` (bool [H, W]), top to bottom.

    `cancel` is checked between the steps that can take long on a big, busy mask
    (labelling, each merge round, each region), so planning never delays a cancel.
    """
    _check(cancel)
    height, width = mask.shape
    boxes = component_boxes(mask)
    _check(cancel)
    boxes = merge_boxes(boxes, width, height, min_size, context, cancel)
    pieces, groups, mins = [], [], []
    for group, box in enumerate(sorted(boxes, key=lambda b: (b[1], b[0]))):
        _check(cancel)
        cut = split_long(box, width, height)
        # Pieces of a long region use the largest square the photo holds.
        piece_min = min(min_size, width, height) if len(cut) > 1 else min_size
        for piece in cut:
            if mask[piece[1] : piece[3], piece[0] : piece[2]].any():
                pieces.append(piece)
                groups.append(group)
                mins.append(piece_min)
    if not pieces:
        return []
    # All windows at once: thousands of regions one by one would cost more than the merge.
    windows = _windows(np.array(pieces, dtype=np.int64), width, height, np.array(mins),
                       context)
    return [Region(piece, Window(int(x), int(y), int(size)), group)
            for piece, group, (x, y, size) in zip(pieces, groups, windows, strict=True)]


def _check(cancel: CancelToken | None) -> None:
    """Raise Cancelled when the job was cancelled (planning alone has no token)."""
    if cancel is not None:
        cancel.raise_if_cancelled()
