"""The Quick engine's fill: classical, deterministic, at the photo's full resolution.

Measured against the truth (`bench/bench_quality.py`), no single classical fill wins
everywhere: diffusion (OpenCV's Navier-Stokes, radius 1) continues edges into the hole, a
membrane (harmonic) fill is the best guess for texture it cannot reproduce, and bricks,
windows and fences are best copied from elsewhere in the photo. So the hole is cut into
tiles and each tile takes whichever of the three best predicts the tile's *surroundings*:

* the two smooth fills are run a second time with the hole grown by `RING` px, and their
  error on that ring (pixels they did not see) says how well they guess this area;
* the copy is the shift whose ring best matches the tile's ring (searched at half
  resolution, refined at full), and its error is that match. A best match over thousands
  of shifts is optimistic, so a copy must beat the smooth fills by `COPY_BIAS`.

Only hole pixels change. Everything is computed within the hole's bounding box plus the
search distance, so the cost follows the hole, not the window.
"""

from __future__ import annotations

import numpy as np

from engine.removal.harmonic import membrane_fill, relax

TILE = 48  # px; smaller tiles adapt better but each searches on its own
RING = 6  # px of surroundings that judge a tile's candidates
SEARCH = 160  # px: how far from the tile a copy may come from
COPY_BIAS = 0.5  # a copy must predict the ring with half the smooth fills' squared error
NS_RADIUS = 1  # Navier-Stokes from the nearest pixels only: larger radii blur edges
DIFFUSION_RELAX = 5  # Jacobi steps after Navier-Stokes: smooths its streaks
MEMBRANE_RELAX = 8  # Jacobi steps per pyramid level of the membrane fill
MAX_GROUPS = 32  # more separate parts (dust) are filled as one: each part costs set-up


def fill(image: np.ndarray, hole: np.ndarray, target: np.ndarray | None = None) -> np.ndarray:
    """uint8 [H, W, 3] image and bool [H, W] hole -> a copy with the hole's `target` pixels
    (default: all of them) replaced; the rest of the hole is never used as a source."""
    out = image.copy()
    target = hole if target is None else target & hole
    if not target.any():
        return out
    # Copies may come from up to SEARCH px around the target; nothing further is looked at.
    y0, y1, x0, x1 = _bounds(target, TILE + SEARCH + RING, hole.shape)
    sub = np.ascontiguousarray(image[y0:y1, x0:x1])
    sub_hole = np.ascontiguousarray(hole[y0:y1, x0:x1])
    search = _CopySearch(sub, sub_hole)
    grown = dilate(sub_hole, RING)
    for box, own in _groups(target[y0:y1, x0:x1]):
        _fill_group(sub, sub_hole, grown, box, own, search, out[y0:y1, x0:x1])
    return out


def _bounds(mask: np.ndarray, margin: int, shape) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, shape[0]),
            max(int(cols[0]) - margin, 0), min(int(cols[-1]) + 1 + margin, shape[1]))


def _groups(target: np.ndarray):
    """(box, the group's own target pixels in it) for each group of target parts closer
    than the smooth fills look (RING + 2 px): a sign, a pole and a wire are filled in their
    own boxes, not in one box around all three."""
    import cv2

    hole = target
    near = dilate(hole, RING + 2)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(near.view(np.uint8),
                                                               connectivity=8)
    if count - 1 > MAX_GROUPS:
        box = _bounds(hole, RING + 2, hole.shape)
        yield box, hole[box[0] : box[1], box[2] : box[3]]
        return
    for label in range(1, count):
        x, y, w, h, _ = stats[label]
        own = (labels[y : y + h, x : x + w] == label) & hole[y : y + h, x : x + w]
        yield (int(y), int(y + h), int(x), int(x + w)), own


def _fill_group(image, hole, grown, box, own, search, out) -> None:
    """Fill the `own` hole pixels of `box` into `out`, tile by tile. Every hole pixel in the
    box (another group's too) is hole to the fills, never a source."""
    y0, y1, x0, x1 = box
    img, h, g = image[y0:y1, x0:x1], hole[y0:y1, x0:x1], grown[y0:y1, x0:x1]
    smooth = [(diffusion_fill(img, h), diffusion_fill(img, g)),
              (membrane_fill(img, h, MEMBRANE_RELAX), membrane_fill(img, g, MEMBRANE_RELAX))]
    for ty, tx in _tiles(own):
        # The tile's frame: the tile plus its ring, in the box.
        fy0, fx0 = max(ty - RING, 0), max(tx - RING, 0)
        fy1, fx1 = min(ty + TILE + RING, h.shape[0]), min(tx + TILE + RING, h.shape[1])
        tile_hole = np.zeros((fy1 - fy0, fx1 - fx0), bool)
        tile_hole[ty - fy0 : min(ty + TILE, fy1) - fy0, tx - fx0 : min(tx + TILE, fx1) - fx0] = (
            own[ty : ty + TILE, tx : tx + TILE])
        ring = dilate(tile_hole, RING) & ~h[fy0:fy1, fx0:fx1]
        truth = img[fy0:fy1, fx0:fx1].astype(np.float32)
        candidates, errors = [], []
        for filled, predicted in smooth:
            candidates.append(filled[fy0:fy1, fx0:fx1])
            errors.append(_ring_error(predicted[fy0:fy1, fx0:fx1], truth, ring))
        copy = search.best(fy0 + y0, fx0 + x0, tile_hole, ring)
        if copy is not None:
            candidates.append(copy[0])
            errors.append(copy[1] / COPY_BIAS)
        best = np.clip(np.rint(candidates[int(np.argmin(errors))]), 0, 255).astype(np.uint8)
        np.copyto(out[fy0 + y0 : fy1 + y0, fx0 + x0 : fx1 + x0], best,
                  where=tile_hole[..., None])


def _tiles(hole: np.ndarray):
    """Top-left corners of the TILE-sized tiles of the hole's box that hold hole pixels."""
    y0, y1, x0, x1 = _bounds(hole, 0, hole.shape)
    for ty in range(y0, y1, TILE):
        for tx in range(x0, x1, TILE):
            if hole[ty : ty + TILE, tx : tx + TILE].any():
                yield ty, tx


def _ring_error(predicted: np.ndarray, truth: np.ndarray, ring: np.ndarray) -> float:
    if not ring.any():
        return 0.0
    return float(((predicted[ring] - truth[ring]) ** 2).mean())


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a bool mask by a disc of `radius` px (small radii: a kernel is fastest)."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.view(np.uint8), kernel) > 0


def diffusion_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """OpenCV's Navier-Stokes fill from the nearest pixels, its streaks relaxed (float)."""
    import cv2

    out = cv2.inpaint(np.ascontiguousarray(image), hole.view(np.uint8), NS_RADIUS,
                      cv2.INPAINT_NS).astype(np.float32)
    return relax(out, hole, DIFFUSION_RELAX)


class _CopySearch:
    """Finds, for a tile of the hole, the shift whose surroundings best match the tile's.

    The search runs at half resolution over +-SEARCH px (masked sum of squared differences
    through three correlations, which OpenCV computes with FFTs), then the best shift is
    refined at full resolution. A source must hold no hole pixel.
    """

    def __init__(self, src: np.ndarray, hole: np.ndarray):
        import cv2

        self.src, self.hole = src, hole  # uint8: float copies are made per tile only
        h, w = hole.shape
        self.half_size = ((w + 1) // 2, (h + 1) // 2)
        self.half = cv2.resize(src, self.half_size, interpolation=cv2.INTER_AREA).astype(
            np.float32)
        self.half_hole = cv2.resize(hole.astype(np.float32), self.half_size,
                                    interpolation=cv2.INTER_AREA) > 0
        self.half_sq = (self.half * self.half).sum(-1)
        self.holes_full = _integral(hole)
        self.holes_half = _integral(self.half_hole)

    def best(self, y: int, x: int, tile_hole: np.ndarray,
             ring: np.ndarray) -> tuple[np.ndarray, float] | None:
        """(the copied frame, its mean squared ring error) for the frame at (y, x)."""
        if ring.sum() < 8:
            return None
        fh, fw = tile_hole.shape
        hy, hx = y // 2, x // 2
        hh, hw = (y + fh + 1) // 2 - hy, (x + fw + 1) // 2 - hx
        found = self._search_half(hy, hx, hh, hw, tile_hole, ring, y, x)
        if found is None:
            return None
        return self._refine(2 * found[0], 2 * found[1], y, x, tile_hole, ring)

    def _search_half(self, hy, hx, hh, hw, tile_hole, ring, y, x):
        import cv2

        H, W = self.half_hole.shape
        r = SEARCH // 2
        sy0, sx0 = max(hy - r, 0), max(hx - r, 0)
        sy1, sx1 = min(hy + hh + r, H), min(hx + hw + r, W)
        if sy1 - sy0 < hh + 2 or sx1 - sx0 < hw + 2 or hy + hh > H or hx + hw > W:
            return None
        # The ring at half resolution: a half pixel is ring if any of its pixels is.
        full_ring = np.zeros((2 * hh, 2 * hw), np.float32)
        oy, ox = y - 2 * hy, x - 2 * hx
        crop = ring[: 2 * hh - oy, : 2 * hw - ox]
        full_ring[oy : oy + crop.shape[0], ox : ox + crop.shape[1]] = crop
        m = cv2.resize(full_ring, (hw, hh), interpolation=cv2.INTER_AREA) > 0
        m &= ~self.half_hole[hy : hy + hh, hx : hx + hw]
        if m.sum() < 4:
            return None
        m32 = m.astype(np.float32)
        tmpl = self.half[hy : hy + hh, hx : hx + hw] * m32[..., None]
        area = self.half[sy0:sy1, sx0:sx1]
        ssd = (cv2.matchTemplate(self.half_sq[sy0:sy1, sx0:sx1], m32, cv2.TM_CCORR)
               - 2 * cv2.matchTemplate(area, tmpl, cv2.TM_CCORR))  # + a constant: the ring's
        holes = _box_sums(self.holes_half, sy0, sx0, sy1 - hh + 1, sx1 - hw + 1, hh, hw)
        ssd[holes > 0] = np.inf  # the source must be whole photo
        iy, ix = hy - sy0, hx - sx0
        ssd[max(iy - 2, 0) : iy + 3, max(ix - 2, 0) : ix + 3] = np.inf  # not itself
        k = int(np.argmin(ssd))
        if not np.isfinite(ssd.flat[k]):
            return None
        by, bx = np.unravel_index(k, ssd.shape)
        return int(by + sy0 - hy), int(bx + sx0 - hx)  # the shift, in half pixels

    def _refine(self, dy, dx, y, x, tile_hole, ring):
        H, W = self.hole.shape
        fh, fw = tile_hole.shape
        truth = self.src[y : y + fh, x : x + fw][ring].astype(np.float32)
        best = None
        for ey in (-1, 0, 1):
            for ex in (-1, 0, 1):
                sy, sx = y + dy + ey, x + dx + ex
                if sy < 0 or sx < 0 or sy + fh > H or sx + fw > W:
                    continue
                if _box_sums(self.holes_full, sy, sx, sy + 1, sx + 1, fh, fw)[0, 0] > 0:
                    continue
                source = self.src[sy : sy + fh, sx : sx + fw].astype(np.float32)
                err = float(((source[ring] - truth) ** 2).mean())
                if best is None or err < best[1]:
                    best = (source, err)
        return best


def _integral(mask: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.integral(mask.view(np.uint8))


def _box_sums(integral: np.ndarray, y0: int, x0: int, y1: int, x1: int, bh: int,
              bw: int) -> np.ndarray:
    """Sums of the bh x bw boxes whose top-left corners are in [y0, y1) x [x0, x1)."""
    ii = integral
    return (ii[y0 + bh : y1 + bh, x0 + bw : x1 + bw] - ii[y0:y1, x0 + bw : x1 + bw]
            - ii[y0 + bh : y1 + bh, x0:x1] + ii[y0:y1, x0:x1])
