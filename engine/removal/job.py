"""What a removal is asked to do (`RemovalJob`) and what it gives back (`RemovalResult`).

A job is one frozen value: the photo, the mask and the `RemovalSettings`. The photo is
never modified; the result is a patch (bounding box + new pixels) that the caller applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from engine.document.box import Box
from engine.removal.settings import RemovalSettings


@dataclass(frozen=True, eq=False)
class RemovalJob:
    image: np.ndarray  # [H, W, 3|4] uint8 or uint16, never modified
    mask: np.ndarray  # [H, W] bool, True = remove
    settings: RemovalSettings = field(default_factory=RemovalSettings)

    def with_seed(self, seed: int) -> RemovalJob:
        return replace(self, settings=self.settings.with_seed(seed))


@dataclass(frozen=True, eq=False)
class RemovalResult:
    box: Box  # x0, y0, x1, y1 of every changed pixel (may be a little larger)
    pixels: np.ndarray  # the new pixels of `box`, same dtype/channels as the photo
    regions: int
    seconds: float
    engine: str  # what ran, e.g. "Moebius ft_places2 · CPU fp32"
    seed: int
    # The other variations of the same job (engine.removal.settings: variations), each a
    # whole result with its own seed; empty for a single removal.
    others: tuple[RemovalResult, ...] = ()

    @property
    def candidates(self) -> list[RemovalResult]:
        """Every variation, this one first."""
        return [self, *self.others]

    def apply_to(self, image: np.ndarray) -> np.ndarray:
        """A copy of `image` with the result pasted in."""
        out = image.copy()
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = self.pixels
        return out
