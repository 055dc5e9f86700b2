"""How far a fill is from the truth, and what it did around the hole.

* error: mean absolute difference from the truth inside the mask (8-bit levels, all
  channels) and the PSNR of the same pixels;
* halo: how much the ring 1-3 px outside the mask changed, relative to that ring's natural
  pixel-to-pixel gradient (0 = untouched; 1 = changed as much as neighbouring pixels
  differ anyway);
* seam: the mean step between 4-neighbours across the mask edge (one inside, one outside)
  in the result, relative to the same step in the truth (1 = as natural as the truth).
"""

from __future__ import annotations

import numpy as np


def _distance_outside(mask: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the mask (0 on the mask)."""
    import cv2

    return cv2.distanceTransform((~mask).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def ring(mask: np.ndarray, inner: float = 1.0, outer: float = 3.0) -> np.ndarray:
    dist = _distance_outside(mask)
    return (dist >= inner) & (dist <= outer)


def gradient_magnitude(img: np.ndarray) -> np.ndarray:
    """Mean absolute difference to the right and lower neighbours, per pixel (float)."""
    f = img.astype(np.float32)
    g = np.zeros(f.shape[:2], np.float32)
    g[:, :-1] += np.abs(f[:, 1:] - f[:, :-1]).mean(-1)
    g[:-1, :] += np.abs(f[1:, :] - f[:-1, :]).mean(-1)
    return g / 2


def inside_error(out: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(mean absolute error, PSNR in dB) of the masked pixels against the truth."""
    diff = out[mask].astype(np.float64) - truth[mask]
    mse = float((diff**2).mean())
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
    return float(np.abs(diff).mean()), psnr


def halo(out: np.ndarray, image: np.ndarray, mask: np.ndarray) -> float:
    """Change of the 1-3 px ring outside the mask / its natural gradient (in `image`)."""
    r = ring(mask)
    if not r.any():
        return 0.0
    change = np.abs(out[r].astype(np.float32) - image[r]).mean()
    natural = gradient_magnitude(image)[r].mean()
    return float(change / max(natural, 1e-6))


def edge_pairs(mask: np.ndarray) -> list[tuple[tuple, tuple, np.ndarray]]:
    """For each axis and direction: (slice a, slice b, where a is in and b out of the mask)."""
    pairs = []
    for a, b in (((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
                 ((slice(1, None), slice(None)), (slice(None, -1), slice(None)))):
        for first, second in ((a, b), (b, a)):
            sel = mask[first] & ~mask[second]
            pairs.append((first, second, sel))
    return pairs


def seam(out: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean step across the mask edge in `out`, relative to the same step in the truth."""
    steps, natural = [], []
    o, t = out.astype(np.float32), truth.astype(np.float32)
    for first, second, sel in edge_pairs(mask):
        steps.append(np.abs(o[first][sel] - o[second][sel]).mean(-1))
        natural.append(np.abs(t[first][sel] - t[second][sel]).mean(-1))
    s, n = np.concatenate(steps), np.concatenate(natural)
    if s.size == 0:
        return 1.0
    return float(s.mean() / max(float(n.mean()), 1e-6))
