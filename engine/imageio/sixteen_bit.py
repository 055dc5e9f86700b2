"""Writers for 16-bit-per-channel PNG and TIFF files, metadata included.

Pillow has no 16-bit colour image mode (it reads 48-bit PNGs as 8-bit RGB) and OpenCV's
encoders drop EXIF, ICC profiles and text, so 16-bit files are written here with numpy and
zlib. Both writers take uint16 arrays shaped [H, W] (grey), [H, W, 2] (grey + alpha),
[H, W, 3] (RGB) or [H, W, 4] (RGBA), and stream to an open binary file.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np
from PIL import TiffImagePlugin
from PIL.TiffImagePlugin import IFDRational

from engine.imageio.meta import exif_for_tiff

# Rows are filtered and compressed in bands of about this many bytes, to bound memory.
_BAND_BYTES = 4 << 20
_ZLIB_LEVEL = 6


def _channels(a: np.ndarray) -> int:
    if a.dtype != np.uint16 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] > 4):
        raise ValueError(f"expected a uint16 [H, W] or [H, W, 1..4] array, got {a.dtype} {a.shape}")
    return 1 if a.ndim == 2 else a.shape[2]


# --- PNG ------------------------------------------------------------------------------


def _chunk(fp: BinaryIO, kind: bytes, body: bytes) -> None:
    fp.write(struct.pack(">I", len(body)) + kind + body)
    fp.write(struct.pack(">I", zlib.crc32(kind + body)))


def _text_chunk(key: str, value: str) -> tuple[bytes, bytes]:
    """tEXt when key and value are Latin-1 (what every reader understands), else iTXt."""
    try:
        return b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")
    except UnicodeEncodeError:
        lang = getattr(value, "lang", None) or ""
        tkey = getattr(value, "tkey", None) or ""
        body = key.encode("latin-1", "replace") + b"\0\0\0" + lang.encode("ascii", "replace")
        return b"iTXt", body + b"\0" + tkey.encode("utf-8") + b"\0" + value.encode("utf-8")


def _paeth_filter(raw: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    """PNG filter type 4 for a band of rows at once (every input is an unfiltered byte)."""
    up = np.vstack([above[None], raw[:-1]]).astype(np.int16)
    cur = raw.astype(np.int16)
    left = np.zeros_like(cur)
    left[:, bpp:] = cur[:, :-bpp]
    upleft = np.zeros_like(up)
    upleft[:, bpp:] = up[:, :-bpp]
    pa = np.abs(up - upleft)  # |p - a| with p = a + b - c
    pb = np.abs(left - upleft)
    pc = np.abs(left + up - 2 * upleft)
    pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    return ((cur - pred) & 0xFF).astype(np.uint8)


def write_png16(
    fp: BinaryIO,
    a: np.ndarray,
    *,
    icc: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    text: dict[str, str] | None = None,
    exif: bytes | None = None,
) -> None:
    channels = _channels(a)
    height, width = a.shape[:2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    fp.write(b"\x89PNG\r\n\x1a\n")
    _chunk(fp, b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))
    if icc:
        _chunk(fp, b"iCCP", b"ICC profile\0\0" + zlib.compress(icc))
    if dpi:
        # pHYs stores pixels per metre; rounding as Pillow does keeps DPI stable on reload.
        ppm = [int(d / 0.0254 + 0.5) for d in dpi]
        _chunk(fp, b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1))
    if exif:
        _chunk(fp, b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif)
    for key, value in (text or {}).items():
        _chunk(fp, *_text_chunk(key, value))

    # PNG stores samples big-endian; each row gets a filter-type byte (4 = Paeth).
    stride = width * channels * 2
    rows = a.reshape(height, stride // 2)
    band = max(1, _BAND_BYTES // max(stride, 1))
    above = np.zeros(stride, np.uint8)
    compressor = zlib.compressobj(_ZLIB_LEVEL)
    for top in range(0, height, band):
        raw = rows[top : top + band].astype(">u2").view(np.uint8).reshape(-1, stride)
        filtered = np.empty((raw.shape[0], stride + 1), np.uint8)
        filtered[:, 0] = 4
        filtered[:, 1:] = _paeth_filter(raw, above, channels * 2)
        above = raw[-1].copy()
        out = compressor.compress(filtered.tobytes())
        if out:
            _chunk(fp, b"IDAT", out)
    _chunk(fp, b"IDAT", compressor.flush())
    _chunk(fp, b"IEND", b"")


# --- TIFF -----------------------------------------------------------------------------


def write_tiff16(
    fp: BinaryIO,
    a: np.ndarray,
    *,
    icc: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    exif: bytes | None = None,
) -> None:
    """Baseline little-endian TIFF, Deflate with the horizontal predictor (lossless)."""
    channels = _channels(a)
    height, width = a.shape[:2]
    samples = a.reshape(height, width, channels)

    # The predictor stores each sample as the difference to its left neighbour (mod 2^16),
    # which compresses photos far better than raw samples. Strips are compressed first
    # because the directory, written before them, lists their sizes.
    rows_per_strip = max(1, (1 << 20) // max(width * channels * 2, 1))
    strips = []
    for top in range(0, height, rows_per_strip):
        block = samples[top : top + rows_per_strip]
        diff = block.copy()
        diff[:, 1:] -= block[:, :-1]
        strips.append(zlib.compress(diff.astype("<u2", copy=False).tobytes(), _ZLIB_LEVEL))

    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    if exif:
        for tag, value in exif_for_tiff(exif).items():
            ifd[tag] = value
    ifd[256] = width
    ifd[257] = height
    ifd[258] = (16,) * channels
    ifd[259] = 8  # Adobe Deflate
    ifd[262] = 2 if channels >= 3 else 1  # RGB or BlackIsZero
    # Strip offsets are relative to the end of the directory; Pillow's writer adds that.
    ifd[273] = tuple(np.cumsum([0] + [len(s) for s in strips[:-1]]).tolist())
    ifd[277] = channels
    ifd[278] = rows_per_strip
    ifd[279] = tuple(len(s) for s in strips)
    ifd[284] = 1  # samples interleaved
    ifd[317] = 2  # horizontal differencing
    if channels in (2, 4):
        ifd[338] = (2,)  # the extra sample is unassociated (straight) alpha
    ifd[339] = (1,) * channels  # unsigned integers
    if dpi:
        ifd[282] = IFDRational(dpi[0])
        ifd[283] = IFDRational(dpi[1])
        ifd[296] = 2  # inches
    if icc:
        ifd[34675] = icc
    ifd.save(fp)
    for strip in strips:
        fp.write(strip)
