"""An open photo: its pixels, its removal mask, and undoable edits of both.

A removal result changes the photo's pixels in a region and clears the mask there; a
`CompositeEdit` (an optional ImagePatch plus an optional MaskPatch) makes that one step
that undo can take back exactly. Like mask patches, image patches hold only the box of
pixels that really changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from engine.document.box import Box, changed_box, sub_block
from engine.document.mask import MaskModel, MaskPatch
from engine.errors import MaskError

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ImagePatch:
    """`old` and `new` pixel blocks ([h, w] or [h, w, C], the photo's dtype) of `bbox`."""

    bbox: Box
    old: np.ndarray
    new: np.ndarray

    def __post_init__(self):
        x0, y0, x1, y1 = self.bbox
        if self.old.shape != self.new.shape or self.old.shape[:2] != (y1 - y0, x1 - x0):
            raise ValueError(f"patch blocks {self.old.shape}/{self.new.shape} != box {self.bbox}")
        self.old.setflags(write=False)
        self.new.setflags(write=False)

    @property
    def nbytes(self) -> int:
        return self.old.nbytes + self.new.nbytes

    @classmethod
    def capture(cls, pixels: np.ndarray, bbox: Box, new: np.ndarray) -> ImagePatch | None:
        """The patch that would write `new` into `bbox` of `pixels` (None: no change)."""
        x0, y0, x1, y1 = bbox
        old = pixels[y0:y1, x0:x1]
        new = np.asarray(new)
        if new.shape != old.shape:
            raise ValueError(f"block of shape {new.shape} does not fit box {bbox} {old.shape}")
        new = new.astype(pixels.dtype, copy=False)
        box = changed_box(bbox, old, new)
        if box is None:
            return None
        return cls(box, sub_block(old, bbox, box).copy(), sub_block(new, bbox, box).copy())


@dataclass(frozen=True, eq=False)
class CompositeEdit:
    """One undoable step that may change both the photo and the mask."""

    image: ImagePatch | None = None
    mask: MaskPatch | None = None

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in (self.image, self.mask) if p is not None)

    @property
    def empty(self) -> bool:
        return self.image is None and self.mask is None


class Document:
    """A photo ([H, W], [H, W, 3] or [H, W, 4]; uint8 or uint16) and its mask."""

    def __init__(self, pixels: np.ndarray, mask: MaskModel | None = None):
        pixels = np.ascontiguousarray(pixels)
        if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
            raise ValueError(f"pixels must be [H, W], [H, W, 3] or [H, W, 4], not {pixels.shape}")
        if pixels.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"pixels must be uint8 or uint16, not {pixels.dtype}")
        height, width = pixels.shape[:2]
        if mask is None:
            mask = MaskModel(width, height)
        elif (mask.width, mask.height) != (width, height):
            raise MaskError(f"mask {mask.width}x{mask.height} does not fit photo {width}x{height}")
        self._pixels = pixels
        self.mask = mask

    @property
    def pixels(self) -> np.ndarray:
        """The photo, read-only: change it through replace_region so undo sees it."""
        view = self._pixels.view()
        view.setflags(write=False)
        return view

    @property
    def width(self) -> int:
        return self._pixels.shape[1]

    @property
    def height(self) -> int:
        return self._pixels.shape[0]

    def replace_region(self, bbox: Box, new: np.ndarray,
                       clear_mask: bool | np.ndarray = True):
        """Write a removal result `new` into `bbox` and clear the mask: inside `bbox`
        (True), nowhere (False), or exactly where a full-size bool array is True (the
        removal's own mask, so strokes painted while it ran survive).

        Applies the edit and returns it as a CompositeEdit, or None if nothing changed."""
        image = ImagePatch.capture(self._pixels, bbox, new)
        if image is not None:
            self._write(image.bbox, image.new)
        if isinstance(clear_mask, np.ndarray):
            mask = self.mask.set_array(self.mask.array & ~clear_mask)
        else:
            mask = self.mask.clear(bbox) if clear_mask else None
        edit = CompositeEdit(image, mask)
        log.debug("replace_region %s: %d bytes of patches", bbox, edit.nbytes)
        return None if edit.empty else edit

    def apply(self, edit: CompositeEdit) -> None:
        """Redo an edit."""
        if edit.image is not None:
            self._write(edit.image.bbox, edit.image.new)
        if edit.mask is not None:
            self.mask.apply(edit.mask)

    def revert(self, edit: CompositeEdit) -> None:
        """Undo an edit."""
        if edit.mask is not None:
            self.mask.revert(edit.mask)
        if edit.image is not None:
            self._write(edit.image.bbox, edit.image.old)

    def _write(self, bbox: Box, block: np.ndarray) -> None:
        x0, y0, x1, y1 = bbox
        self._pixels[y0:y1, x0:x1] = block
