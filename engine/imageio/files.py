"""Open and save photos faithfully; read removal masks.

Opening gives a `LoadedImage`: upright working pixels the editor paints on (RGB or RGBA,
uint8, or uint16 for 16-bit files) plus everything needed to save the file back as it was:
its mode, its pixels in that mode, EXIF, ICC profile, DPI, PNG text and JPEG settings.

Saving splices: only pixels that differ from what was opened are converted back into the
file's own mode, so untouched pixels come out bit-identical in lossless formats. Saves are
atomic (temporary file, fsync, rename), so a failed save never damages an existing file.

Decisions:
- GIF, and animated or multi-page files of any format, are refused rather than opened as
  their first frame: saving would silently drop the other frames.
- Palette (P) images stay palette images while every colour is in the palette; an edit
  that brings new colours saves RGB (or RGBA when the palette had transparency).
- CMYK keeps its original CMYK values where nothing changed; edited pixels are converted
  with Pillow's naive RGB -> CMYK. Formats without CMYK get the RGB working pixels.
- Formats that lack what the image has lose it with a logged warning: 16-bit saved as JPEG,
  WebP or BMP becomes 8-bit; transparency saved as JPEG or BMP is flattened onto white.

Helpers live beside this module: `meta` (file signatures, EXIF, JPEG settings), `pixels`
(modes, splicing, masks), `write` (encoders, atomic write), `sixteen_bit` (16-bit writers),
`jpeg_blocks` and `jpeg_segments` (JPEG saves that keep the untouched blocks) and `loaded`
(the LoadedImage and SavedImage types).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import (
    BmpImagePlugin,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from engine.errors import ImageFileError, MaskError
from engine.imageio import checks, heif, meta
from engine.imageio import pixels as px
from engine.imageio.checks import SUPPORTED_EXTENSIONS
from engine.imageio.jpeg_blocks import BlockSave, BlocksNotKept, keep_blocks
from engine.imageio.loaded import LoadedImage, SavedImage
from engine.imageio.pixels import mask_from_array, to_rgb8
from engine.imageio.write import atomic_write, encode

__all__ = [
    "MAX_PIXELS",
    "SUPPORTED_EXTENSIONS",
    "LoadedImage",
    "SavedImage",
    "is_supported",
    "load_image",
    "load_mask",
    "mask_from_array",
    "save_image",
    "to_rgb8",
]

log = logging.getLogger(__name__)

MAX_PIXELS = 250_000_000  # larger images are refused: likely decompression bombs
_FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF", "HEIC": "HEIF"}

# Pillow's per-format classes parse the header without Pillow's global decompression-bomb
# check (which would refuse images between ~179 and our 250 megapixels); ours runs instead.
_OPENERS: dict[str, Callable[[BinaryIO], ImageFile.ImageFile]] = {
    "JPEG": JpegImagePlugin.JpegImageFile,
    "PNG": PngImagePlugin.PngImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
}


def is_supported(path: str | os.PathLike) -> bool:
    """True if the file name has an extension we open and save (the content is not read)."""
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


# --- Loading --------------------------------------------------------------------------


def load_image(path: str | os.PathLike) -> LoadedImage:
    """Open a JPEG, PNG, WebP, TIFF, BMP, HEIC/HEIF or AVIF file; raise ImageFileError
    if we cannot."""
    path = Path(path)
    # The file's type, size and header first: only a plausible photo is read whole.
    with checks.open_regular(path) as fp:
        try:
            fmt = checks.format_of(path, fp.read(checks.HEAD_BYTES))
            fp.seek(0)
            # Parses the header only; HEIF and AVIF's opener is imported when first met.
            width, height = (_OPENERS.get(fmt) or heif.opener(fmt))(fp).size
        except ImageFileError:
            raise
        except Exception as exc:
            raise ImageFileError(f"Cannot open '{path}': {_damaged(fmt, exc)}") from exc
        if width * height > MAX_PIXELS:
            raise ImageFileError(
                f"Cannot open '{path}': the image is {width} × {height} pixels "
                f"({width * height / 1e6:.0f} megapixels), more than the limit of "
                f"{MAX_PIXELS / 1e6:.0f} megapixels."
            )
        data = checks.read_rest(path, fp)
    try:
        opener = _OPENERS.get(fmt) or heif.opener(fmt)  # HEIF and AVIF: imported when met
        im = opener(io.BytesIO(data))  # we decode from memory: no handle stays open
    except Exception as exc:
        raise ImageFileError(f"Cannot open '{path}': {_damaged(fmt, exc)}") from exc
    try:
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            raise ImageFileError(
                f"Cannot open '{path}': it holds {frames} frames or pages, and Moebius "
                "Studio edits single images. Export the frame you want as its own file."
            )
        # Pixels first, so a truncated file is reported as such and not as "damaged EXIF"
        # (a PNG's EXIF may follow its pixels); but a TIFF's EXIF first: Pillow 11+ turns
        # TIFFs upright while loading them and drops their orientation tag.
        if fmt != "TIFF":
            _load_whole(im, fmt, data)
        orientation, exif = meta.read_exif(im, fmt)
        _load_whole(im, fmt, data)
        mode, original, pixels = px.decode(im, fmt, data, str(path))
        # Pillow's TIFF pixels may be upright already (it then drops the tag), while
        # OpenCV's 16-bit colour pixels are always as stored.
        pillow_turned = fmt == "TIFF" and meta.ORIENTATION_TAG not in getattr(im, "tag_v2", {})
        turn = 1 if pillow_turned and mode not in px.OPENCV_MODES else orientation
    except ImageFileError:
        raise
    except MemoryError as exc:
        raise ImageFileError(
            f"Cannot open '{path}': not enough memory for a {width} × {height} image."
        ) from exc
    except Exception as exc:
        raise ImageFileError(f"Cannot open '{path}': {_damaged(fmt, exc)}") from exc

    same = original is pixels
    original = meta.apply_orientation(original, turn)
    pixels = original if same else meta.apply_orientation(pixels, turn)
    original.setflags(write=False)
    pixels.setflags(write=False)
    loaded = LoadedImage(
        path=path,
        format=fmt,
        mode=mode,
        pixels=pixels,
        original=original,
        bit_depth=1 if mode == "1" else 8 * pixels.dtype.itemsize,
        orientation=orientation,
        exif=exif,
        icc_profile=im.info.get("icc_profile") or None,
        dpi=_dpi(im.info.get("dpi")),
        text=dict(getattr(im, "text", None) or {}) if fmt == "PNG" else {},
        webp_lossless=meta.webp_is_lossless(data) if fmt == "WEBP" else None,
        tiff_compression=im.info.get("compression") if fmt == "TIFF" else None,
    )
    if fmt == "JPEG":
        loaded.jpeg_quality = meta.estimate_jpeg_quality(getattr(im, "quantization", None))
        loaded.jpeg_subsampling = meta.jpeg_subsampling(im)
        loaded.jpeg_data = data
    if mode == "P":
        loaded.palette, loaded.transparency = px.palette_of(im)
    log.info(
        "opened %s: %s %s %d×%d, orientation %d",
        path.name, fmt, mode, loaded.size[0], loaded.size[1], orientation,
    )  # fmt: skip
    return loaded


def _load_whole(im: ImageFile.ImageFile, fmt: str, data: bytes) -> None:
    """Decode everything now, so that truncated files fail here, not later."""
    im.load()
    if fmt == "PNG" and not meta.png_is_complete(data):
        raise OSError("the file ends before its last chunk")


def _damaged(fmt: str, exc: BaseException) -> str:
    detail = str(exc) or type(exc).__name__
    return f"the {fmt} file is damaged or incomplete ({detail})."


def _dpi(value) -> tuple[float, float] | None:
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 else None


# --- Saving ---------------------------------------------------------------------------


def save_image(
    path: str | os.PathLike,
    image: LoadedImage,
    pixels: np.ndarray,
    *,
    overwrite: bool = False,
    format: str | None = None,
    quality: int | None = None,
    keep_jpeg_blocks: bool = True,
) -> SavedImage:
    """Save edited working `pixels` of `image` to `path`, atomically.

    The format is `format`, else the extension's, else (no extension) the original one.
    Untouched pixels stay bit-identical in lossless formats, and 16-bit stays 16-bit where
    the format allows. `pixels` may also be uint8 for a 16-bit image: pixels equal to the
    8-bit rendering of the original keep their 16-bit values. `quality` (1..100) is for
    JPEG and lossy WebP; by default JPEG keeps the source's estimated quality.

    A JPEG saved as JPEG keeps every untouched block of the source file exactly
    (`engine.imageio.jpeg_blocks`) unless `keep_jpeg_blocks` is False or a `quality` is
    given; where that cannot be done, the whole picture is re-encoded as usual and the
    returned note says why.
    """
    path = Path(path)
    fmt = _target_format(path, format, image.format)
    if (
        not isinstance(pixels, np.ndarray)
        or pixels.ndim != 3
        or pixels.shape[2] not in (3, 4)
        or pixels.dtype not in (np.uint8, np.uint16)
    ):
        raise ValueError(
            "pixels must be an [H, W, 3|4] uint8 or uint16 array, got "
            f"{getattr(pixels, 'dtype', type(pixels))} {getattr(pixels, 'shape', '')}"
        )
    if quality is not None and not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1..100, got {quality}")
    if path.is_dir():
        raise ImageFileError(f"Cannot save '{path}': it is a folder.")
    if path.exists() and not overwrite:
        raise ImageFileError(
            f"Cannot save '{path}': the file already exists. "
            "Choose another name or allow overwriting."
        )
    note = ""
    if fmt == "JPEG" and image.format == "JPEG":
        kept, note = _keep_jpeg_blocks(image, pixels, quality, keep_jpeg_blocks)
        if kept is not None:
            data = kept.data
            atomic_write(path, lambda fp: _write_all(fp, data), overwrite)
            log.info("saved %s keeping the untouched JPEG blocks (%d of %d MCUs re-encoded)",
                     path.name, kept.touched, kept.total)
            return SavedImage(path, note, blocks_kept=True)
    out = px.fit_format(px.splice(image, pixels), fmt, pixels)
    atomic_write(path, lambda fp: encode(fp, fmt, out, image, quality), overwrite)
    log.info("saved %s as %s %s", path.name, fmt, out.mode)
    return SavedImage(path, note, blocks_kept=False if note else None)


def _write_all(fp: BinaryIO, data: bytes) -> None:
    fp.write(data)


def _keep_jpeg_blocks(
    image: LoadedImage, pixels: np.ndarray, quality: int | None, wanted: bool
) -> tuple[BlockSave | None, str]:
    """A JPEG source saved as JPEG: the block-preserving file and its note, or (None, why
    the whole picture is re-encoded). Any failure here only means a normal save."""
    reason = None
    if not wanted:
        reason = "re-encoding the whole JPEG was asked for"
    elif quality is not None:
        reason = f"quality {quality} was asked for"
    else:
        try:
            kept = keep_blocks(image, pixels)
            return kept, kept.note()
        except BlocksNotKept as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - never lose a save to this optimisation
            log.warning("the block-preserving JPEG save failed; re-encoding the whole "
                        "picture instead", exc_info=True)
            reason = f"keeping its blocks failed ({exc})"
    log.info("re-encoding the whole JPEG: %s", reason)
    return None, f"the whole JPEG was re-encoded: {reason}"


def _target_format(path: Path, format: str | None, original: str) -> str:
    if format is not None:
        name = format.upper().lstrip(".")
        fmt = _FORMAT_ALIASES.get(name, name)
        if fmt not in px.FORMAT_MODES:
            raise ImageFileError(f"Cannot save '{path}': unknown image format '{format}'.")
        return fmt
    return checks.output_format(path, original)


# --- Masks ----------------------------------------------------------------------------


def load_mask(
    path: str | os.PathLike,
    size: tuple[int, int] | None = None,
    *,
    resize: bool = False,
    orientation: int = 1,
) -> np.ndarray:
    """A removal mask from an image file: bool [H, W], True = remove.

    The mask is made upright with its own EXIF orientation and read as 8-bit grey, where
    >= 128 means remove (alpha masks: see `mask_from_array`). If `size` (width, height)
    differs, `resize=True` scales it with nearest neighbour when the aspect ratios agree
    within 1%; otherwise MaskError names both sizes. `orientation` is the photo's EXIF
    orientation: a mask drawn on the photo as stored (by a tool that ignores EXIF) has the
    stored, turned size, and is turned like the photo.
    """
    path = Path(path)
    loaded = load_image(path)
    pixels = loaded.pixels
    mask = mask_from_array(px.to_8bit(pixels) if pixels.dtype == np.uint16 else pixels)
    if size is None or (mask.shape[1], mask.shape[0]) == tuple(size):
        return mask
    width, height = size
    mask_h, mask_w = mask.shape
    if orientation in meta.TURNING_ORIENTATIONS and loaded.orientation == 1 \
            and _same_shape((mask_w, mask_h), (height, width), 0.01 if resize else 0.0):
        log.warning("The mask '%s' matches the photo as stored, before its EXIF rotation; "
                    "it was turned like the photo.", path.name)
        mask = meta.apply_orientation(mask, orientation)
        mask_h, mask_w = mask.shape
        if (mask_w, mask_h) == (width, height):
            return mask
    if resize and _same_shape((mask_w, mask_h), (width, height), 0.01):
        # Nearest neighbour, sampling at each target pixel's centre.
        rows = ((np.arange(height) + 0.5) * mask_h / height).astype(np.intp)
        cols = ((np.arange(width) + 0.5) * mask_w / width).astype(np.intp)
        return mask[rows[:, None], cols[None, :]]
    why = "their shapes differ, so it cannot be scaled to fit" if resize else \
        "and masks must have the photo's size"
    raise MaskError(
        f"The mask '{path.name}' is {mask_w} × {mask_h} pixels but the image is "
        f"{width} × {height} pixels; {why}: make the mask {width} × {height} pixels."
    )


def _same_shape(a: tuple[int, int], b: tuple[int, int], tolerance: float) -> bool:
    """True when the aspect ratios of sizes `a` and `b` (width, height) agree."""
    if tolerance == 0:
        return a == b
    return abs((a[0] / a[1]) / (b[0] / b[1]) - 1) <= tolerance
