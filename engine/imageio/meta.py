"""Small, Qt-free helpers for `engine.imageio.files`: recognising files, EXIF and JPEG settings.

Nothing here decodes pixels. Everything works on the file's bytes or on an opened (lazy)
Pillow image, so `image_io` can refuse bad files before it spends memory on them.
"""

from __future__ import annotations

import logging
import struct
from functools import lru_cache

import numpy as np
from PIL import Image

from engine.imageio import heif

log = logging.getLogger(__name__)

ORIENTATION_TAG = 0x0112
EXIF_IFD_TAG = 0x8769
GPS_IFD_TAG = 0x8825
INTEROP_IFD_TAG = 0xA005
TURNING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height

# Formats we open, keyed by what their first bytes look like.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"II+\x00", 0, "TIFF"),  # BigTIFF
    (b"MM\x00+", 0, "TIFF"),
    (b"BM", 0, "BMP"),
)

# Formats people may well try to open, so the message can name them.
_KNOWN_UNSUPPORTED: tuple[tuple[bytes, int, str], ...] = (
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"8BPS", 0, "Photoshop (PSD)"),
    (b"%PDF", 0, "PDF"),
    (b"\x00\x00\x00\x0cjP  ", 0, "JPEG 2000"),
)

# TIFF tags that describe how a file stores its pixels (or that we write separately, like
# resolution and the ICC profile). Copied into another file's EXIF they would be wrong.
TIFF_LAYOUT_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 282, 283,
     284, 296, 317, 320, 322, 323, 324, 325, 330, 332, 338, 339, 340, 341, 347, 512, 513,
     514, 515, 517, 518, 519, 520, 521, 529, 530, 531, 532, 700, 33723, 34377, 34675}
)  # fmt: skip


def sniff_format(data: bytes) -> tuple[str | None, str | None]:
    """(format we open, None) or (None, name of a known format we do not open) or (None, None)."""
    for magic, offset, name in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return name, None
    # WebP is a RIFF container whose form type says WEBP.
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP", None
    container = heif.sniff(data)  # HEIC/HEIF and AVIF
    if container is not None:
        return container, None
    for magic, offset, name in _KNOWN_UNSUPPORTED:
        if data[offset : offset + len(magic)] == magic:
            return None, name
    return None, None


def png_header(data: bytes) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR, which the PNG spec puts first."""
    return data[24], data[25]


def png_is_complete(data: bytes) -> bool:
    """True if the PNG's chunks are intact up to IEND.

    Pillow accepts a PNG whose end is cut off after the last pixel data, but such a file
    has lost whatever came after (text, EXIF) and is truncated all the same.
    """
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos <= len(data)
    return False


def without_orientation(data: bytes, fmt: str) -> bytes:
    """A copy of a PNG or TIFF file whose EXIF no longer says how to turn it.

    For decoders whose habits differ between versions (OpenCV's TIFF reader turns images
    even when asked for them unchanged), so that we alone apply the orientation.
    """
    if fmt == "PNG":  # drop the eXIf chunks
        out, pos = bytearray(data[:8]), 8
        while pos + 12 <= len(data):
            (length,) = struct.unpack(">I", data[pos : pos + 4])
            chunk = data[pos : pos + 12 + length]
            if chunk[4:8] != b"eXIf":
                out += chunk
            pos += 12 + length
        return bytes(out)
    if fmt == "TIFF" and data[:4] in (b"II*\x00", b"MM\x00*"):  # set tag 274 to 1
        e = "<" if data[:2] == b"II" else ">"
        (ifd,) = struct.unpack(e + "I", data[4:8])
        (count,) = struct.unpack(e + "H", data[ifd : ifd + 2])
        for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
            if struct.unpack(e + "H", data[entry : entry + 2])[0] == ORIENTATION_TAG:
                out = bytearray(data)
                struct.pack_into(e + "H", out, entry + 8, 1)  # SHORT value, stored inline
                return bytes(out)
    return data


def webp_is_lossless(data: bytes) -> bool:
    """True if a WebP file holds a lossless (VP8L) bitstream rather than lossy VP8."""
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if kind == b"VP8L":
            return True
        if kind == b"VP8 ":
            return False
        pos += 8 + size + (size & 1)  # RIFF chunks are padded to even sizes
    return False


def apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an array the way EXIF orientation `orientation` (1..8) says, so it is upright.

    Works on [H, W] and [H, W, C] arrays alike, so original-mode and working pixels turn
    together. Matches Pillow's ImageOps.exif_transpose (the tests check all eight).
    """
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1]
    elif orientation == 5:
        a = a.swapaxes(0, 1)
    elif orientation == 6:
        a = np.rot90(a, -1)
    elif orientation == 7:
        a = np.rot90(a, 2).swapaxes(0, 1)
    elif orientation == 8:
        a = np.rot90(a, 1)
    return np.ascontiguousarray(a)


def read_exif(im: Image.Image, fmt: str) -> tuple[int, bytes | None]:
    """(orientation, EXIF bytes ready to embed in a saved file) for an opened image.

    The bytes have the orientation reset to 1 because the loaded pixels are already upright.
    Pillow re-serialises the block, which drops IFD1: the embedded thumbnail would still
    show what the user removed. For TIFF, Pillow's "EXIF" is the image's own tag directory,
    so only the descriptive tags are kept. Damaged EXIF is dropped with a warning rather
    than refusing the photo.
    """
    try:
        source = im.getexif()
        orientation = _valid_orientation(source.get(ORIENTATION_TAG, 1))
    except Exception as exc:  # any parse failure means "no usable EXIF"
        log.warning("ignoring damaged EXIF data: %s", exc)
        return 1, None
    try:
        # Work on a copy: Pillow consults its own cached EXIF while loading the pixels.
        exif = Image.Exif()
        exif.load(source.tobytes())
        if fmt == "TIFF":
            for tag in [t for t in exif if t in TIFF_LAYOUT_TAGS]:
                del exif[tag]
        if len(exif) == 0:
            return orientation, None
        if ORIENTATION_TAG in exif:
            exif[ORIENTATION_TAG] = 1
        return orientation, exif.tobytes()
    except Exception as exc:  # the orientation still counts, the rest cannot be kept
        log.warning("EXIF data will not be saved, it could not be re-encoded: %s", exc)
        return orientation, None


def _valid_orientation(value) -> int:
    if isinstance(value, int) and 1 <= value <= 8:
        return value
    log.warning("ignoring invalid EXIF orientation %r", value)
    return 1


def exif_for_tiff(exif_bytes: bytes) -> dict[int, object]:
    """EXIF as TIFF tags for a TIFF we write: sub-directories become dicts, which Pillow's
    TIFF directory writer stores as real sub-IFDs; layout tags are left out."""
    exif = Image.Exif()
    exif.load(exif_bytes)
    tags: dict[int, object] = {}
    for tag, value in exif.items():
        if tag in TIFF_LAYOUT_TAGS:
            continue
        if tag in (EXIF_IFD_TAG, GPS_IFD_TAG):
            sub = dict(exif.get_ifd(tag))
            if INTEROP_IFD_TAG in sub:
                sub[INTEROP_IFD_TAG] = exif.get_ifd(INTEROP_IFD_TAG)
            if not sub:
                continue
            value = sub
        tags[tag] = value
    return tags


def icc_colour_space(icc: bytes | None) -> str | None:
    """'RGB', 'GRAY' or 'CMYK' from an ICC profile's header (bytes 16..20), else None."""
    if not icc or len(icc) < 20:
        return None
    return icc[16:20].decode("ascii", "replace").strip() or None


# --- JPEG settings --------------------------------------------------------------------

# The example tables of the JPEG standard (ITU T.81, Annex K), in natural (row) order,
# which libjpeg scales for its quality setting and Pillow reports.
_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
_CHROMA = (
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
) + (99,) * 32  # fmt: skip


@lru_cache(maxsize=1)
def _scaled_tables() -> tuple[np.ndarray, np.ndarray]:
    """The tables libjpeg writes for quality 1..100: shape [100, 64] each."""
    q = np.arange(1, 101)
    scale = np.where(q < 50, 5000 // q, 200 - 2 * q)[:, None]
    luma = np.clip((np.array(_LUMA)[None] * scale + 50) // 100, 1, 255)
    chroma = np.clip((np.array(_CHROMA)[None] * scale + 50) // 100, 1, 255)
    return luma, chroma


def estimate_jpeg_quality(qtables: dict | None) -> int | None:
    """The libjpeg quality (1..100) whose tables are closest to a JPEG's own.

    Exact for files libjpeg wrote (most software); for cameras with their own tables it is
    the nearest equivalent. Closeness is the summed absolute difference over both tables;
    among equally close qualities the highest wins (above ~97 several round to all ones).
    """
    if not qtables or 0 not in qtables:
        return None
    luma_ref, chroma_ref = _scaled_tables()
    error = np.abs(luma_ref - np.asarray(qtables[0])[None, :64]).sum(axis=1)
    if 1 in qtables:
        error = error + np.abs(chroma_ref - np.asarray(qtables[1])[None, :64]).sum(axis=1)
    best = np.flatnonzero(error == error.min())[-1]
    return int(best) + 1


def jpeg_subsampling(im: Image.Image) -> int | None:
    """Pillow's subsampling code for a colour JPEG (0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0).

    None for greyscale or CMYK files and for unusual layouts, where Pillow's default is used.
    """
    layers = getattr(im, "layer", None)
    if not layers or len(layers) != 3:
        return None
    (_, h0, v0, _), (_, h1, v1, _), (_, h2, v2, _) = layers
    if (h1, v1) != (1, 1) or (h2, v2) != (1, 1):
        return None
    return {(1, 1): 0, (2, 1): 1, (2, 2): 2}.get((h0, v0))
