"""Masks that make sense: the black/white convention, and masks that would erase the photo.

White marks what to remove. A mask that covers more than half of its photo is almost
always a mistake (masks of the other convention, an all-white image, the photo itself
chosen as its mask) and would replace most of the picture with invented pixels, so it is
refused with `MaskTooLarge` unless the person says the masks are inverted (black marks
what to remove) or confirms that so much should go. The command line, batch cleaning and
the app all apply this one `MaskPolicy`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import MaskError, MaskTooLarge

LARGE_MASK_SHARE = 0.5  # more than this share of the photo is "most of the photo"


def coverage(mask: np.ndarray) -> float:
    """The share of the photo a bool mask marks for removal, 0..1."""
    return float(np.count_nonzero(mask)) / mask.size if mask.size else 0.0


def is_large(mask: np.ndarray) -> bool:
    return coverage(mask) > LARGE_MASK_SHARE


@dataclass(frozen=True)
class MaskPolicy:
    invert: bool = False  # the masks mark what to remove in black
    allow_large: bool = False  # confirmed: a mask may cover more than half of its photo

    def apply(self, mask: np.ndarray, mask_name: str, photo_name: str) -> np.ndarray:
        """The mask to remove with (inverted if asked); MaskError if it marks nothing,
        MaskTooLarge if it marks most of the photo and that was not confirmed."""
        if self.invert:
            mask = ~mask
        if not mask.any():
            colour = "black" if self.invert else "white"
            raise MaskError(f"The mask '{mask_name}' marks nothing to remove in "
                            f"'{photo_name}': it has no {colour} pixels.")
        share = coverage(mask)
        if share > LARGE_MASK_SHARE and not self.allow_large:
            raise MaskTooLarge(f"The mask '{mask_name}' covers {share:.0%} of '{photo_name}', "
                               "more than half, so it was not used.", share)
        return mask
