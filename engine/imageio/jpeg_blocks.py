"""Block-preserving JPEG saves: re-encode only the minimal coded units (MCUs) an edit touched.

A JPEG stores 8×8 blocks of quantized DCT coefficients; an MCU is the group of blocks of
all components that covers 8, 16 or 32 pixels a side, depending on chroma subsampling.
Decoding and re-encoding a whole photo changes every pixel a little (generation loss).
Instead, `keep_blocks` reads the source file's coefficients, replaces those of the MCUs
that contain a changed pixel with coefficients encoded from the edited pixels (with the
source's own quantization tables and sampling factors), and writes the coefficients back
losslessly. Every other MCU keeps its coefficients exactly, so outside the touched MCUs,
grown by one MCU because chroma upsampling reads neighbouring blocks, the saved file
decodes to exactly the source's pixels.

The photo keeps its stored orientation and EXIF orientation tag: the change, found on the
upright working pixels, is mapped back exactly. Metadata segments (EXIF, ICC, XMP,
comments, ...) are copied byte for byte; the one exception is the EXIF thumbnail, which is
redrawn in place from the edited photo so that it no longer shows what was removed. A
camera's Multi-Picture previews after the image are left out for the same reason.

The coefficients are read and written with jpeglib (libjpeg builds inside the wheel).
Baseline files are written by libjpeg-turbo 2.1 with the source's kind of Huffman tables
(standard or optimised), so an untouched baseline file comes back with the same scan bytes;
progressive files are written by mozjpeg, which chooses its own progressive scans.
Restart markers are not written (jpeglib has no setting for them); they only help a
decoder resynchronise in damaged files and do not change any pixel.

Whatever this path cannot do exactly raises `BlocksNotKept` with the reason, and the caller
re-encodes the whole picture instead.
"""

from __future__ import annotations

import io
import logging
import math
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.imageio import jpeg_segments as js
from engine.imageio.loaded import LoadedImage
from engine.imageio.pixels import luma

log = logging.getLogger(__name__)

# jpeglib selects its libjpeg build process-wide and keeps marker state in globals, so
# every use goes through this lock (the app may save while a batch saves on a worker).
_JPEGLIB = threading.Lock()
_BASELINE_WRITER = "turbo210"  # libjpeg-turbo 2.1: the same coder as Pillow's
_PROGRESSIVE_WRITER = "mozjpeg403"  # the only build whose coefficient writer is progressive
_THUMB_QUALITIES = (90, 80, 70, 60, 50, 40, 30)
_BAND = 64  # rows compared at a time: a 24 MP band is about 1 MB


class BlocksNotKept(Exception):
    """The block-preserving path cannot save this file; the message says why, in words
    that complete "the whole JPEG was re-encoded: ..."."""


@dataclass(frozen=True)
class BlockSave:
    """A block-preserving JPEG, ready to write, and how much of it was re-encoded."""

    data: bytes
    touched: int  # MCUs re-encoded from the edited pixels
    total: int  # MCUs in the picture

    def note(self) -> str:
        if self.touched == 0:
            return "no pixel changed; every JPEG block was kept as it was"
        kept = 100 * (1 - self.touched / self.total)
        kept_text = f"{kept:.1f}" if kept < 99.95 else f"{kept:.2f}"
        return f"kept {kept_text} % of the JPEG's blocks as they were; re-encoded the rest"


def keep_blocks(image: LoadedImage, pixels: np.ndarray) -> BlockSave:
    """The source JPEG of `image` with only the MCUs that `pixels` changed re-encoded.

    `pixels` are the edited upright working pixels; what changed is found by comparing
    them with `image.pixels`. Raises BlocksNotKept when the file or the edit is one this
    path does not handle exactly; other exceptions mean it failed unexpectedly.
    """
    source = image.jpeg_data
    if image.format != "JPEG" or source is None:
        raise BlocksNotKept("the original JPEG's bytes are not at hand")
    if pixels.shape != image.pixels.shape or pixels.dtype != image.pixels.dtype:
        raise BlocksNotKept("the edited picture's size or channels differ from the opened one")
    try:
        header = js.read_header(source)
    except ValueError as exc:
        raise BlocksNotKept(f"its structure could not be read ({exc})") from exc
    frame = header.frame
    _check_supported(header)
    turned = image.orientation >= 5  # a quarter turn: width and height swap
    upright = (frame.height, frame.width) if turned else (frame.width, frame.height)
    if upright != image.size:
        raise BlocksNotKept("the decoded size differs from the size in its header")

    changed = stored_view(changed_pixels(image.pixels, pixels), image.orientation)
    mcu_w, mcu_h = frame.mcu_size
    grid = touched_mcus(changed, mcu_w, mcu_h)
    metadata = _metadata(header, image, pixels, bool(grid.any()))
    with _JPEGLIB, tempfile.TemporaryDirectory(prefix="moebius-jpeg-") as tmp:
        coded = _recode(Path(tmp), header, source, stored_view(pixels, image.orientation), grid)
    return BlockSave(js.assemble(header, metadata, coded), int(grid.sum()), grid.size)


def _check_supported(header: js.Header) -> None:
    frame = header.frame
    if frame.arithmetic:
        raise BlocksNotKept("it is arithmetic-coded")
    if frame.lossless:
        raise BlocksNotKept("it is a lossless JPEG")
    if frame.hierarchical:
        raise BlocksNotKept("it is a hierarchical JPEG")
    if frame.precision != 8:
        raise BlocksNotKept(f"it has {frame.precision} bits per sample")
    count = len(frame.components)
    if count == 4:
        raise BlocksNotKept("it is a CMYK or YCCK JPEG")
    if count not in (1, 3):
        raise BlocksNotKept(f"it has {count} colour components")
    if count == 3 and header.adobe_transform == 0:
        raise BlocksNotKept("it stores RGB rather than YCbCr")
    hmax = max(c.h for c in frame.components)
    vmax = max(c.v for c in frame.components)
    if any(hmax % c.h or vmax % c.v for c in frame.components):
        raise BlocksNotKept("its chroma subsampling is fractional")


# --- Where the edit is -----------------------------------------------------------------


def changed_pixels(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """bool [H, W]: pixels that differ in any channel.

    Compared as rows of bytes in bands that stay in the cache; the per-pixel map is only
    built for the rows that changed (a removal is a small part of a 24 MP photo). Folding
    the channels with strided ORs is ten times faster than `.any(axis=2)`.
    """
    h, w, c = before.shape
    a, b = before.reshape(h, w * c), after.reshape(h, w * c)
    out = np.zeros((h, w), bool)
    for r in range(0, h, _BAND):
        diff = a[r : r + _BAND] != b[r : r + _BAND]
        if not diff.any():
            continue
        band = diff[:, 0::c]
        for k in range(1, c):
            band |= diff[:, k::c]
        out[r : r + _BAND] = band
    return out


def stored_view(a: np.ndarray, orientation: int) -> np.ndarray:
    """The upright array `a` as the file stores it: the exact inverse of
    `meta.apply_orientation`, as a view (nothing is copied)."""
    if orientation in (2, 3, 4, 5, 7):  # mirrors, half turn, transposes: their own inverse
        if orientation == 2:
            return a[:, ::-1]
        if orientation == 3:
            return a[::-1, ::-1]
        if orientation == 4:
            return a[::-1]
        if orientation == 5:
            return a.swapaxes(0, 1)
        return np.rot90(a, 2).swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(a, 1)
    if orientation == 8:
        return np.rot90(a, -1)
    return a


def touched_mcus(changed: np.ndarray, mcu_w: int, mcu_h: int) -> np.ndarray:
    """bool [MCU rows, MCU columns]: the MCUs that hold at least one changed pixel.

    `changed` may be a turned view; only the MCUs inside the changed pixels' bounding
    box are looked at.
    """
    h, w = changed.shape
    grid = np.zeros((math.ceil(h / mcu_h), math.ceil(w / mcu_w)), bool)
    rows = np.flatnonzero(changed.any(axis=1))
    if rows.size == 0:
        return grid
    cols = np.flatnonzero(changed.any(axis=0))
    r0, r1 = rows[0] // mcu_h, rows[-1] // mcu_h + 1
    c0, c1 = cols[0] // mcu_w, cols[-1] // mcu_w + 1
    box = changed[r0 * mcu_h : r1 * mcu_h, c0 * mcu_w : c1 * mcu_w]
    padded = np.zeros(((r1 - r0) * mcu_h, (c1 - c0) * mcu_w), bool)  # the last MCUs may
    padded[: box.shape[0], : box.shape[1]] = box  # stick out of the picture
    grid[r0:r1, c0:c1] = padded.reshape(r1 - r0, mcu_h, c1 - c0, mcu_w).any(axis=(1, 3))
    return grid


# --- Coefficients ------------------------------------------------------------------------


def _recode(tmp: Path, header: js.Header, source: bytes, stored: np.ndarray,
            grid: np.ndarray) -> bytes:
    """The source's coefficients with the touched MCUs replaced, written as a new JPEG."""
    import jpeglib

    frame = header.frame
    jpeglib.version.set(_BASELINE_WRITER)
    (tmp / "source.jpg").write_bytes(source)
    coefs = jpeglib.read_dct(str(tmp / "source.jpg"))
    coefs.load()
    if grid.any():
        fresh = _encode_mcus(tmp, jpeglib, coefs, frame, stored, grid)
        _splice_mcus(coefs, fresh, frame, grid)
    coefs.markers = []  # ours are copied byte for byte by js.assemble
    if frame.progressive:
        jpeglib.version.set(_PROGRESSIVE_WRITER)
        flags = []
    else:
        # Without the source's bytes, libjpeg-turbo takes the tables and sampling from the
        # object instead of decoding the whole source a second time: the same file, 20 %
        # sooner. (mozjpeg's writer needs the source.)
        coefs.content = None
        standard = js.standard_huffman_tables()
        optimised = any(t not in standard for t in header.huffman_tables())
        flags = ["+OPTIMIZE_CODING" if optimised else "-OPTIMIZE_CODING"]
    try:
        coefs.write_dct(str(tmp / "out.jpg"), flags=flags)
    finally:
        jpeglib.version.set(_BASELINE_WRITER)
    return (tmp / "out.jpg").read_bytes()


def _components(coefs) -> list[np.ndarray]:
    return [coefs.Y] if coefs.Cb is None else [coefs.Y, coefs.Cb, coefs.Cr]


def _encode_mcus(tmp: Path, jpeglib, coefs, frame: js.Frame, stored: np.ndarray,
                 grid: np.ndarray):
    """Encode the touched MCUs' edited pixels with the source's tables and sampling.

    The MCUs are laid side by side in a mosaic and encoded as one small JPEG. An MCU is
    encoded on its own (colour conversion, downsampling and the DCT never reach past its
    edge), and MCUs at the picture's right and bottom edges are padded by repeating the
    last column and row, as libjpeg pads them, so each comes out as in a whole encode.
    """
    mcu_w, mcu_h = frame.mcu_size
    my, mx = np.nonzero(grid)
    count = len(my)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    h, w = stored.shape[:2]
    ys = np.minimum(my[:, None] * mcu_h + np.arange(mcu_h), h - 1)  # [N, mcu_h]
    xs = np.minimum(mx[:, None] * mcu_w + np.arange(mcu_w), w - 1)  # [N, mcu_w]
    tiles = stored[ys[:, :, None], xs[:, None, :], :3]  # [N, mcu_h, mcu_w, 3]
    if len(frame.components) == 1:
        tiles = luma(tiles)[..., None]  # grey files: the grey the normal save would write
    mosaic = np.zeros((rows * cols, mcu_h, mcu_w, tiles.shape[3]), np.uint8)
    mosaic[:count] = tiles
    mosaic = mosaic.reshape(rows, cols, mcu_h, mcu_w, -1).swapaxes(1, 2)
    mosaic = np.ascontiguousarray(mosaic.reshape(rows * mcu_h, cols * mcu_w, -1))

    encoder = jpeglib.from_spatial(mosaic)
    encoder.samp_factor = np.array([[c.v, c.h] for c in frame.components], np.int32)
    qt = np.asarray(coefs.qt)
    encoder.write_spatial(str(tmp / "mcus.jpg"), qt=qt,
                          quant_tbl_no=np.asarray(coefs.quant_tbl_no),
                          dct_method=jpeglib.JDCT_ISLOW, flags=["-OPTIMIZE_CODING"])
    fresh = jpeglib.read_dct(str(tmp / "mcus.jpg"))
    fresh.load()
    for c in range(len(frame.components)):  # the tables must be the source's own
        if not np.array_equal(fresh.get_component_qt(c), coefs.get_component_qt(c)):
            raise RuntimeError("the MCUs were not encoded with the source's tables")
    return fresh


def _splice_mcus(coefs, fresh, frame: js.Frame, grid: np.ndarray) -> None:
    """Copy each touched MCU's blocks from the mosaic encoding into the source's arrays."""
    my, mx = np.nonzero(grid)
    cols = math.ceil(math.sqrt(len(my)))
    ry, rx = np.divmod(np.arange(len(my)), cols)  # each MCU's place in the mosaic
    for comp, target, new in zip(frame.components, _components(coefs), _components(fresh),
                                 strict=True):
        by = np.arange(comp.v)[None, :, None]
        bx = np.arange(comp.h)[None, None, :]
        ty, tx = my[:, None, None] * comp.v + by, mx[:, None, None] * comp.h + bx
        fy, fx = ry[:, None, None] * comp.v + by, rx[:, None, None] * comp.h + bx
        ty, tx, fy, fx = np.broadcast_arrays(ty, tx, fy, fx)
        # Blocks past the component's edge only pad the last MCU: the file has none.
        inside = (ty < target.shape[0]) & (tx < target.shape[1])
        target[ty[inside], tx[inside]] = new[fy[inside], fx[inside]]


# --- Metadata ----------------------------------------------------------------------------


def _metadata(header: js.Header, image: LoadedImage, pixels: np.ndarray,
              edited: bool) -> list[js.Segment]:
    """The source's metadata segments, in order and unchanged, except the EXIF thumbnail
    (redrawn when the picture changed) and a Multi-Picture index (left out with the
    previews it points to, which follow the image and still show the old picture)."""
    out = []
    for seg in header.segments:
        if not seg.is_metadata:
            continue
        if seg.is_mpf:
            log.info("leaving out the Multi-Picture previews: they show the unedited photo")
            continue
        if seg.is_exif and edited:
            seg = _redraw_thumbnail(seg, image, pixels)
        out.append(seg)
    if header.trailing:
        log.info("leaving out %d bytes that followed the image", header.trailing)
    return out


def _redraw_thumbnail(seg: js.Segment, image: LoadedImage, pixels: np.ndarray) -> js.Segment:
    from PIL import Image

    try:
        where = js.exif_thumbnail(seg)
    except ValueError as exc:
        raise BlocksNotKept(f"its EXIF thumbnail cannot be redrawn ({exc})") from exc
    if where is None:
        return seg
    try:
        old = Image.open(io.BytesIO(seg.raw[where.start:where.start + where.length]))
        size = old.size
    except Exception as exc:  # noqa: BLE001 - any decoder complaint: a damaged thumbnail
        raise BlocksNotKept(f"its EXIF thumbnail is damaged ({exc})") from exc
    thumb = _thumbnail_pixels(pixels[..., :3], image.orientation, size)
    for quality in _THUMB_QUALITIES:
        buf = io.BytesIO()
        Image.fromarray(thumb).save(buf, "JPEG", quality=quality, optimize=True)
        if buf.tell() <= where.length:
            return js.replace_exif_thumbnail(seg, where, buf.getvalue())
    raise BlocksNotKept("the redrawn EXIF thumbnail does not fit in the old one's place")


def _thumbnail_pixels(upright: np.ndarray, orientation: int, size: tuple[int, int]) -> np.ndarray:
    """The edited photo at the thumbnail's stored size: scaled to fit, centred on black
    where the aspect ratios differ (as cameras letterbox their thumbnails)."""
    from PIL import Image

    tw, th = size if orientation < 5 else (size[1], size[0])  # the upright thumbnail size
    h, w = upright.shape[:2]
    scale = min(tw / w, th / h)
    fw, fh = max(1, round(w * scale)), max(1, round(h * scale))
    if abs(fw - tw) <= 1 and abs(fh - th) <= 1:
        fw, fh = tw, th
    small = np.asarray(Image.fromarray(np.ascontiguousarray(upright)).resize(
        (fw, fh), Image.Resampling.LANCZOS, reducing_gap=3.0))
    canvas = np.zeros((th, tw, 3), np.uint8)
    top, left = (th - fh) // 2, (tw - fw) // 2
    canvas[top:top + fh, left:left + fw] = small
    return np.ascontiguousarray(stored_view(canvas, orientation))
