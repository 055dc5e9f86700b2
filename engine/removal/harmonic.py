"""Laplace's equation on a hole: the smoothest values that meet the hole's edge.

Used by the Quick engine as its fill for texture it cannot reproduce (the best guess, in
the mean, for what lies behind an object) and as the last smoothing step of its diffusion
fill.
"""

from __future__ import annotations

import numpy as np


def relax(u: np.ndarray, hole: np.ndarray, steps: int) -> np.ndarray:
    """`steps` Jacobi steps on the hole pixels of float [H, W, C] `u`: each becomes the mean
    of its four neighbours (the array's edge repeats); the other pixels are the boundary
    values. Returns the result (`u` itself when it is contiguous).

    The cost follows the hole, not the array: a compact hole is relaxed in its bounding
    box with OpenCV's filter, a sparse one (a diagonal wire) pixel by pixel.
    """
    u = np.ascontiguousarray(u)
    h, w = hole.shape
    ys, xs = np.nonzero(hole)
    if len(ys) == 0 or steps <= 0:
        return u
    y0, y1 = max(int(ys.min()) - 1, 0), min(int(ys.max()) + 2, h)
    x0, x1 = max(int(xs.min()) - 1, 0), min(int(xs.max()) + 2, w)
    if len(ys) >= DENSE * (y1 - y0) * (x1 - x0):
        _relax_box(u[y0:y1, x0:x1], hole[y0:y1, x0:x1], steps)
        return u
    _relax_sparse(u.reshape(h * w, -1), ys * w + xs, ys, xs, h, w, steps)
    return u


def _relax_sparse(flat: np.ndarray, at: np.ndarray, ys: np.ndarray, xs: np.ndarray, h: int,
                  w: int, steps: int) -> None:
    """Jacobi steps on scattered hole pixels of `flat` ([H*W, C], a view): the hole pixels
    and their neighbours are gathered once into one compact array per channel, where the
    steps' gathers stay in cache (2.5x faster than gathering rows of the image)."""
    up, down = np.maximum(ys - 1, 0) * w + xs, np.minimum(ys + 1, h - 1) * w + xs
    left, right = ys * w + np.maximum(xs - 1, 0), ys * w + np.minimum(xs + 1, w - 1)
    slot = np.full(h * w, -1, np.int32)
    for idx in (at, up, down, left, right):
        slot[idx] = 0
    used = np.flatnonzero(slot == 0)
    slot[used] = np.arange(len(used), dtype=np.int32)
    values = np.ascontiguousarray(flat[used].T)  # [C, M]
    s_at, s_up, s_down, s_left, s_right = (slot[i] for i in (at, up, down, left, right))
    for _ in range(steps):
        for v in values:
            v[s_at] = 0.25 * (v[s_up] + v[s_down] + v[s_left] + v[s_right])
    flat[at] = values[:, s_at].T


DENSE = 0.2  # hole share of its box above which filtering the whole box is cheaper
_NEIGHBOURS = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], np.float32)


def _relax_box(box: np.ndarray, hole: np.ndarray, steps: int) -> None:
    """Jacobi steps on a view: the box holds the hole and a 1-px ring of boundary values
    (or the array's edge, which repeats like OpenCV's BORDER_REPLICATE)."""
    import cv2

    where = hole[..., None] if box.ndim == 3 else hole
    for _ in range(steps):
        np.copyto(box, cv2.filter2D(box, -1, _NEIGHBOURS, borderType=cv2.BORDER_REPLICATE),
                  where=where)


def membrane_fill(image: np.ndarray, hole: np.ndarray, steps: int = 8) -> np.ndarray:
    """Float [H, W, C] copy of `image` with the hole solved for Laplace's equation, coarse to
    fine: each level starts from the coarser level's answer and relaxes `steps` times, so a
    few steps per level converge where plain iteration would need as many as the hole is
    wide. A thin hole (a wire) needs no coarse level at all: there are only as many levels
    as halvings of the hole's depth."""
    import cv2

    u = np.array(image, np.float32)
    if not hole.any():
        return u
    depth = cv2.distanceTransform(np.pad(hole, 1).view(np.uint8), cv2.DIST_L2, 3).max()
    levels = int(np.ceil(np.log2(max(float(depth), 1.0))))
    return _membrane(u, hole, steps, levels)


def _membrane(u: np.ndarray, hole: np.ndarray, steps: int, levels: int) -> np.ndarray:
    import cv2

    h, w = hole.shape
    if not hole.any():
        return u
    if levels > 0 and min(h, w) >= 4:
        known = (~hole).astype(np.float32)
        size = ((w + 1) // 2, (h + 1) // 2)
        weight = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
        total = cv2.resize(u * known[..., None], size, interpolation=cv2.INTER_AREA)
        if total.ndim == 2:  # OpenCV drops a single channel
            total = total[..., None]
        coarse = _membrane(total / np.maximum(weight, 1e-6)[..., None], weight == 0, steps,
                           levels - 1)
        up = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
        np.copyto(u, up.reshape(u.shape), where=hole[..., None])
    return relax(u, hole, steps)
