"""Synthetic test photos: a smooth, slightly noisy scene with a red object to remove."""

from __future__ import annotations

import numpy as np

RED = np.array([230, 20, 20], np.uint8)


def scene(width: int, height: int, seed: int = 0, dtype=np.uint8, alpha: bool = False):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([
        60 + 80 * x / max(width - 1, 1),
        120 + 60 * y / max(height - 1, 1),
        160 - 40 * x / max(width - 1, 1),
    ], axis=-1)
    base += rng.normal(0, 4, base.shape).astype(np.float32)
    img = np.clip(base, 0, 255).astype(np.uint8)
    if dtype == np.uint16:
        img = img.astype(np.uint16) * 257 + rng.integers(0, 200, img.shape, dtype=np.uint16)
    if alpha:
        top = np.iinfo(dtype).max
        a = np.full((height, width, 1), top, dtype)
        a[: height // 4] = top // 2
        img = np.concatenate([img, a], axis=-1)
    return img


def with_object(img: np.ndarray, box):
    """Paint a red rectangle (the 'object') and return (photo, mask covering it)."""
    x0, y0, x1, y1 = box
    img = img.copy()
    scale = 257 if img.dtype == np.uint16 else 1
    img[y0:y1, x0:x1, :3] = RED.astype(img.dtype) * scale
    mask = np.zeros(img.shape[:2], bool)
    mask[max(0, y0 - 2) : y1 + 2, max(0, x0 - 2) : x1 + 2] = True
    return img, mask


def red_fraction(pixels: np.ndarray, mask: np.ndarray) -> float:
    rgb = pixels[..., :3].astype(np.int32)
    if pixels.dtype == np.uint16:
        rgb //= 257
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)
    return float(red[mask].mean())
