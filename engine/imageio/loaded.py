"""`LoadedImage`: an opened photo plus everything needed to save it back as it was."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(eq=False)
class LoadedImage:
    """An opened photo. `pixels` and `original` are read-only: edit a copy."""

    path: Path
    format: str  # the file's real format: "JPEG", "PNG", "WEBP", "TIFF" or "BMP"
    # The file's own mode: a Pillow mode ("RGB", "L", "P", "CMYK", "I;16", ...) or, for
    # 16-bit files Pillow cannot hold, "LA;16", "RGB;16" or "RGBA;16".
    mode: str
    pixels: np.ndarray  # working pixels, upright: [H, W, 3|4] uint8, or uint16 for 16-bit
    original: np.ndarray  # the same pixels in `mode` (P: palette indices; "1": 0/255)
    bit_depth: int = 8  # bits per channel of the file: 1, 8 or 16
    orientation: int = 1  # the EXIF orientation the file had (already applied)
    exif: bytes | None = None  # EXIF to write back: orientation reset to 1, no thumbnail
    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    text: dict[str, str] = field(default_factory=dict)  # PNG tEXt/zTXt/iTXt chunks
    jpeg_quality: int | None = None  # estimated from the quantization tables
    jpeg_subsampling: int | None = None  # 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0
    jpeg_data: bytes | None = None  # a JPEG file as opened: saves keep its untouched blocks
    palette: bytes | None = None  # P: RGB triplets
    transparency: int | bytes | None = None  # P: transparent index, or alpha per index
    webp_lossless: bool | None = None
    tiff_compression: str | None = None

    @property
    def has_alpha(self) -> bool:
        return self.pixels.shape[2] == 4

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the upright image."""
        return self.pixels.shape[1], self.pixels.shape[0]


def untitled(pixels: np.ndarray, name: str = "Untitled.png") -> LoadedImage:
    """A LoadedImage for pixels that come from no file (a pasted picture): it saves like a
    PNG of those pixels, with no metadata. `pixels` is [H, W, 3|4], uint8 or uint16."""
    pixels = np.array(pixels)  # our own read-only copy
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or \
            pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"pixels must be [H, W, 3|4] uint8 or uint16, not "
                         f"{pixels.dtype} {pixels.shape}")
    pixels.setflags(write=False)
    mode = ("RGB" if pixels.shape[2] == 3 else "RGBA") + (";16" if pixels.itemsize == 2 else "")
    return LoadedImage(path=Path(name), format="PNG", mode=mode, pixels=pixels,
                       original=pixels, bit_depth=8 * pixels.itemsize)


@dataclass(frozen=True)
class SavedImage:
    """Where a photo was saved, and a note for the status bar or the command line."""

    path: Path
    note: str = ""  # how a JPEG was written: blocks kept, or why it was re-encoded whole
    # For a JPEG saved as JPEG: True if its untouched blocks were kept, False if the whole
    # picture was re-encoded (asked for, or a fallback: see note); None for other saves.
    blocks_kept: bool | None = None
