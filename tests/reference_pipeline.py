"""The authors' end-to-end behaviour at the network's own size, for parity and comparison.

Moebius Studio does not use this to edit photos (see `engine.removal.run`, which works at
full resolution and leaves unmasked pixels untouched). It exists so tests can prove our
parts reproduce the reference pipeline bit for bit, and so benchmarks can compare the
two on equal terms.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
from PIL import Image, ImageFilter

from engine.sampling.inpainter import MoebiusInpainter
from engine.sampling.sampler import SamplerSettings, StepOutput


def binarize_mask(mask_u8: np.ndarray) -> np.ndarray:
    """Values >= 128 are hole (255), the rest known (0), as the reference thresholds."""
    return np.where(mask_u8 >= 128, 255, 0).astype(np.uint8)


def reference_paste(generated: np.ndarray, image: np.ndarray, mask_u8: np.ndarray) -> np.ndarray:
    """Blend with a Gaussian-blurred (radius 3) mask, truncating to uint8 like the authors."""
    soft = Image.fromarray(binarize_mask(mask_u8)).convert("RGB")
    m = np.asarray(soft.filter(ImageFilter.GaussianBlur(radius=3))) / 255.0
    blended = (generated / 255.0 * m + image / 255.0 * (1.0 - m)) * 255.0
    return blended.astype(np.uint8)


def reference_call(
    inpainter: MoebiusInpainter,
    image: np.ndarray,
    mask_u8: np.ndarray,
    settings: SamplerSettings | None = None,
    seed: int = 0,
) -> Generator[StepOutput, None, np.ndarray]:
    """The reference `__call__` on one square image of the network's size (paste=True)."""
    settings = settings or SamplerSettings()
    out = yield from inpainter.inpaint(
        image[None], binarize_mask(mask_u8)[None] > 0, settings, seed
    )
    return reference_paste(out[0], image, mask_u8)
