"""Saving a removal mask as a PNG that `load_mask` (the CLI's `--mask`, Mask ▸ Load mask)
reads back identically: 8-bit grey, 255 where the mask removes and 0 elsewhere, upright
and without EXIF, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from engine.errors import MaskError
from engine.imageio.write import atomic_write

REMOVE, KEEP = 255, 0  # load_mask reads grey >= 128 as "remove"


def save_mask(path: str | os.PathLike, mask: np.ndarray, *, overwrite: bool = True) -> Path:
    """Write a bool [H, W] mask (True = remove) to `path` as a PNG; returns the path."""
    path = Path(path)
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.ndim != 2 or 0 in mask.shape:
        raise MaskError(f"a mask to save must be a non-empty bool [H, W] array, "
                        f"not {mask.dtype} {mask.shape}")
    grey = np.where(mask, np.uint8(REMOVE), np.uint8(KEEP))
    image = Image.fromarray(grey, mode="L")
    atomic_write(path, lambda fp: image.save(fp, format="PNG", optimize=False), overwrite)
    return path
