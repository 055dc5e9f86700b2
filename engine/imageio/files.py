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
from engine.imageio import heif, meta
from engine.imageio import pixels as px
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
SUPPORTED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp",
                        ".heic", ".heif", ".hif", ".avif")
_EXTENSION_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
    ".heic": "HEIF", ".heif": "HEIF", ".hif": "HEIF", ".avif": "AVIF",
}  # fmt: skip
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
    data = _read_file(path)
    fmt = _format_of(path, data)
    try:
        opener = _OPENERS.get(fmt) or heif.opener(fmt)  # HEIF and AVIF: imported when met
        im = opener(io.BytesIO(data))  # reads the header only
    except Exception as exc:
        raise ImageFileError(f"Cannot open '{path}': {_damaged(fmt, exc)}") from exc
    width, height = im.size
    if width * height > MAX_PIXELS:
        raise ImageFileError(
            f"Cannot open '{path}': the image is {width} × {height} pixels "
            f"({width * height / 1e6:.0f} megapixels), more than the limit of "
            f"{MAX_PIXELS / 1e6:.0f} megapixels."
        )
    try:
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            raise ImageFileError(
                f"Cannot open '{path}': it holds {frames} frames or pages, and Moebius "
                "Studio edits single images. Export the frame you want as its own file."
            )
        # EXIF first: Pillow 11+ turns TIFFs upright while loading and drops their tag.
        orientation, exif = meta.read_exif(im, fmt)
        im.load()  # decodes everything now, so truncated files fail here, not later
        if fmt == "PNG" and not meta.png_is_complete(data):
            raise OSError("the file ends before its last chunk")
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


def _read_file(path: Path) -> bytes:
    """The whole file: we decode from memory, which also keeps no file handle open."""
    if path.is_dir():
        raise ImageFileError(f"Cannot open '{path}': it is a folder, not an image file.")
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ImageFileError(f"Cannot open '{path}': the file does not exist.") from exc
    except PermissionError as exc:
        raise ImageFileError(f"Cannot open '{path}': permission denied.") from exc
    except OSError as exc:
        raise ImageFileError(f"Cannot open '{path}': {exc.strerror or exc}.") from exc
    if not data:
        raise ImageFileError(f"Cannot open '{path}': the file is empty (0 bytes).")
    return data


def _format_of(path: Path, data: bytes) -> str:
    """The format from the file's content (its extension may lie)."""
    fmt, other = meta.sniff_format(data)
    if fmt is not None:
        return fmt
    if other is not None:
        raise ImageFileError(
            f"Cannot open '{path}': {other} images are not supported. "
            "Convert it to PNG or JPEG first."
        )
    raise ImageFileError(
        f"Cannot open '{path}': it is not an image file Moebius Studio can read "
        "(JPEG, PNG, WebP, TIFF, BMP, HEIC or AVIF)."
    )


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
    suffix = path.suffix.lower()
    if not suffix:
        return original
    if suffix not in _EXTENSION_FORMATS:
        raise ImageFileError(
            f"Cannot save '{path}': '{suffix}' files are not supported. "
            f"Use one of {', '.join(SUPPORTED_EXTENSIONS)}."
        )
    return _EXTENSION_FORMATS[suffix]


# --- Masks ----------------------------------------------------------------------------


def load_mask(
    path: str | os.PathLike,
    size: tuple[int, int] | None = None,
    *,
    resize: bool = False,
) -> np.ndarray:
    """A removal mask from an image file: bool [H, W], True = remove.

    The mask is made upright with its own EXIF orientation and read as 8-bit grey, where
    >= 128 means remove (alpha masks: see `mask_from_array`). If `size` (width, height)
    differs, `resize=True` scales it with nearest neighbour when the aspect ratios agree
    within 1%; otherwise MaskError names both sizes.
    """
    path = Path(path)
    pixels = load_image(path).pixels
    mask = mask_from_array(px.to_8bit(pixels) if pixels.dtype == np.uint16 else pixels)
    if size is None or (mask.shape[1], mask.shape[0]) == tuple(size):
        return mask
    width, height = size
    mask_h, mask_w = mask.shape
    if resize and abs((mask_w / mask_h) / (width / height) - 1) <= 0.01:
        # Nearest neighbour, sampling at each target pixel's centre.
        rows = ((np.arange(height) + 0.5) * mask_h / height).astype(np.intp)
        cols = ((np.arange(width) + 0.5) * mask_w / width).astype(np.intp)
        return mask[rows[:, None], cols[None, :]]
    why = "and their shapes differ too much to resize" if resize else "and resizing is off"
    raise MaskError(
        f"The mask '{path.name}' is {mask_w} × {mask_h} pixels but the image is "
        f"{width} × {height} pixels, {why}."
    )
