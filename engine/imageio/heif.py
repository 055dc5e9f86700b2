"""HEIC/HEIF (iPhone photos) and AVIF files for `engine.imageio.files`.

Both are ISO-BMFF containers whose `ftyp` box names the codec in its brands. HEIF (HEVC)
is read and written by pillow-heif (libheif inside its wheel); AVIF (AV1) by Pillow's own
AVIF plugin (libavif inside Pillow's wheel, Pillow 11.3 and later).

Orientation: libheif applies a HEIF's rotation and mirroring (`irot`/`imir`) while
decoding and pillow-heif then reports EXIF orientation 1, so the pixels arrive upright.
Pillow's AVIF plugin leaves the pixels as stored and reports the rotation as the EXIF
orientation, which `files.load_image` applies like any other. Saved files get EXIF with
orientation 1 (the pixels are upright), the ICC profile (e.g. an iPhone's Display P3)
and the EXIF of the source.
"""

from __future__ import annotations

import struct
import threading
from functools import lru_cache

from PIL import ImageFile

HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm",
                         b"hevs", b"mif1", b"msf1", b"mif2"})
AVIF_BRANDS = frozenset({b"avif", b"avis"})
DEFAULT_QUALITY = 90  # both formats are lossy; high enough that a re-save loses little
_register_lock = threading.Lock()


def sniff(data: bytes) -> str | None:
    """"HEIF" or "AVIF" when `data` starts with an ftyp box naming one of them, else None.

    The major brand may be the generic `mif1`, so the compatible brands decide: AVIF
    when any is AV1's, else HEIF."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    (size,) = struct.unpack(">I", data[:4])
    end = min(max(size, 16), len(data), 4096)
    brands = {data[8:12]} | {data[i : i + 4] for i in range(16, end - 3, 4)}
    if brands & AVIF_BRANDS:
        return "AVIF"
    if brands & HEIF_BRANDS:
        return "HEIF"
    return None


def opener(fmt: str) -> type[ImageFile.ImageFile]:
    """The Pillow image class that reads `fmt` ("HEIF" or "AVIF")."""
    if fmt == "AVIF":
        from PIL import AvifImagePlugin

        return AvifImagePlugin.AvifImageFile
    register_heif()
    from pillow_heif.as_plugin import HeifImageFile

    return HeifImageFile


@lru_cache(maxsize=1)
def _registered() -> bool:
    import pillow_heif

    # Thumbnails are not kept (they would still show what was removed).
    pillow_heif.register_heif_opener(thumbnails=False)
    return True


def register_heif() -> None:
    """Teach Pillow to open and save HEIF (once per process; lazy: pillow-heif is only
    imported when a HEIF file is met)."""
    with _register_lock:
        _registered()
