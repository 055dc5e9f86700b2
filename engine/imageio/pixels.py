"""Pixel arrays for `engine.imageio.files`: from a file's own mode to working pixels and back.

Working pixels are what the editor paints on: [H, W, 3|4] RGB(A), uint8 or uint16. The
"original" array keeps the file's own mode (grey, palette indices, CMYK, 16-bit grey), so
saving can splice: only pixels that differ from the working pixels as opened are converted
back, and everything else keeps its exact original value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
from PIL import Image, TiffImagePlugin

from engine.errors import ImageFileError, MaskError
from engine.imageio import meta

if TYPE_CHECKING:
    from engine.imageio.loaded import LoadedImage

log = logging.getLogger(__name__)

# Modes each format can store. ";16" modes are 16 bits per channel (written by image_16bit).
FORMAT_MODES = {
    "JPEG": {"L", "RGB", "CMYK"},
    "PNG": {"1", "L", "LA", "P", "RGB", "RGBA", "I;16", "LA;16", "RGB;16", "RGBA;16"},
    # Few readers understand 16-bit grey + alpha TIFF, so that is saved as RGBA;16.
    "TIFF": {"1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "RGB;16", "RGBA;16"},
    "WEBP": {"RGB", "RGBA"},
    # Pillow writes 32-bit BMPs without an alpha mask, so BMP alpha would not come back.
    "BMP": {"1", "L", "P", "RGB"},
    "HEIF": {"RGB", "RGBA"},
    "AVIF": {"RGB", "RGBA"},
}
_EIGHT_BIT = {"I;16": "L", "LA;16": "LA", "RGB;16": "RGB", "RGBA;16": "RGBA"}
OPENCV_MODES = ("LA;16", "RGB;16", "RGBA;16")  # decoded by OpenCV: Pillow has no such modes


@dataclass
class Rendition:
    """Pixels ready for an encoder, in one of the modes of FORMAT_MODES."""

    mode: str
    array: np.ndarray
    palette: bytes | None = None
    transparency: int | bytes | None = None


def to_8bit(a: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 by round(v / 257), in integers: exact, and 65535 maps to 255."""
    return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Grey from [..., 3+] RGB with Pillow's fixed-point ITU-R 601 weights. They sum to
    2^16, so grey (v, v, v) gives v back exactly; the same formula serves 8 and 16 bits."""
    r, g, b = (rgb[..., i].astype(np.uint64) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(rgb.dtype)


# --- Decoding -------------------------------------------------------------------------


def decode(im: Image.Image, fmt: str, data: bytes, name: str):
    """(mode, original-mode array, working array) of a loaded Pillow image, not yet
    oriented. The two arrays are one object when the file is plain RGB(A)."""
    if _is_16bit_colour(im, fmt, data):
        return _decode_16bit_colour(im, fmt, data, name)
    mode = im.mode
    if mode in ("RGB", "L") and im.info.get("transparency") is not None:
        # A PNG colour key: turn it into a real alpha channel so edits cannot hit it.
        im = im.convert("RGBA" if mode == "RGB" else "LA")
        mode = im.mode
    if mode in ("RGB", "RGBA"):
        a = np.asarray(im)
        return mode, a, a
    if mode in ("L", "1"):
        grey = np.asarray(im.convert("L"))  # "1" is kept as 0/255 grey
        return mode, grey, np.repeat(grey[..., None], 3, axis=2)
    if mode == "LA":
        la = np.asarray(im)
        return mode, la, la[..., [0, 0, 0, 1]]
    if mode == "P":
        return mode, np.asarray(im), _palette_pixels(im)
    if mode == "CMYK":
        return mode, np.asarray(im), np.asarray(im.convert("RGB"))
    if mode.startswith("I;16") or (mode == "I" and _header_bits(im, fmt, data) == 16):
        grey = np.asarray(im).astype(np.uint16)  # also makes big-endian samples native
        return "I;16", grey, np.repeat(grey[..., None], 3, axis=2)
    if mode in ("I", "F") or mode.startswith("I;"):
        raise ImageFileError(
            f"Cannot open '{name}': 32-bit and floating-point images are not supported."
        )
    # Rare modes (YCbCr, LAB, premultiplied alpha, ...): keep the RGB(A) rendering.
    target = "RGBA" if ("A" in mode or "a" in mode) else "RGB"
    log.info("%s: converting %s to %s; it will be saved as %s", name, mode, target, target)
    a = np.asarray(im.convert(target))
    return target, a, a


def _tiff(im: Image.Image) -> TiffImagePlugin.TiffImageFile:
    return cast(TiffImagePlugin.TiffImageFile, im)


def _header_bits(im: Image.Image, fmt: str, data: bytes) -> int:
    if fmt == "PNG":
        return meta.png_header(data)[0]
    if fmt == "TIFF":
        bits = _tiff(im).tag_v2.get(258, (1,))
        return max(bits) if isinstance(bits, tuple) else int(bits)
    return 8


def _is_16bit_colour(im: Image.Image, fmt: str, data: bytes) -> bool:
    """16-bit colour (or grey + alpha), which Pillow would silently reduce to 8 bits."""
    if fmt == "PNG":
        depth, colour_type = meta.png_header(data)
        return depth == 16 and colour_type in (2, 4, 6)
    if fmt == "TIFF":
        bits = _tiff(im).tag_v2.get(258, (1,))
        return isinstance(bits, tuple) and len(bits) > 1 and max(bits) == 16
    return False


def _decode_16bit_colour(im: Image.Image, fmt: str, data: bytes, name: str):
    import cv2  # only 16-bit colour files need OpenCV

    if fmt == "TIFF" and _tiff(im).tag_v2.get(262) not in (1, 2):
        raise ImageFileError(f"Cannot open '{name}': 16-bit CMYK or Lab TIFF is not supported.")
    # IMREAD_UNCHANGED keeps 16 bits and alpha. We apply the orientation ourselves, later.
    stored = meta.without_orientation(data, fmt)
    a = cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_UNCHANGED)
    if a is None or a.dtype != np.uint16 or a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ImageFileError(f"Cannot open '{name}': could not decode its 16-bit colour data.")
    if a.shape[2] == 3:
        rgb = np.ascontiguousarray(a[..., ::-1])  # OpenCV gives BGR
        return "RGB;16", rgb, rgb
    rgba = np.ascontiguousarray(a[..., [2, 1, 0, 3]])
    if fmt == "PNG" and meta.png_header(data)[1] == 4:  # grey + alpha, expanded by OpenCV
        la = np.ascontiguousarray(rgba[..., [0, 3]])
        return "LA;16", la, la[..., [0, 0, 0, 1]]
    return "RGBA;16", rgba, rgba


def palette_of(im: Image.Image) -> tuple[bytes, int | bytes | None]:
    """(RGB palette bytes, transparency) of a P image: a transparent index or alpha bytes."""
    return bytes(im.getpalette("RGB") or []), im.info.get("transparency")


def _palette_tables(palette: bytes, transparency) -> tuple[np.ndarray, np.ndarray]:
    """256-entry RGB and alpha lookup tables for a palette image."""
    rgb = np.zeros((256, 3), np.uint8)
    entries = np.frombuffer(palette, np.uint8)[: 256 * 3]
    count = len(entries) // 3
    rgb[:count] = entries[: count * 3].reshape(-1, 3)
    alpha = np.full(256, 255, np.uint8)
    if isinstance(transparency, int):
        alpha[transparency] = 0
    elif isinstance(transparency, bytes):
        alpha[: len(transparency[:256])] = np.frombuffer(transparency[:256], np.uint8)
    return rgb, alpha


def _palette_pixels(im: Image.Image) -> np.ndarray:
    palette, transparency = palette_of(im)
    rgb, alpha = _palette_tables(palette, transparency)
    index = np.asarray(im)
    if transparency is None:
        return rgb[index]
    return np.concatenate([rgb[index], alpha[index][..., None]], axis=2)


# --- Saving ---------------------------------------------------------------------------


def splice(image: LoadedImage, pixels: np.ndarray) -> Rendition:
    """The pixels in the image's own mode: original values wherever nothing changed."""
    base = image.pixels
    if pixels.dtype == np.uint8 and base.dtype == np.uint16 and pixels.shape == base.shape:
        # 8-bit edits of a 16-bit image: unchanged pixels keep their 16-bit values.
        changed = np.any(pixels != to_8bit(base), axis=2)
        lifted = base.copy()
        lifted[changed] = pixels[changed].astype(np.uint16) * 257
        pixels = lifted
    if pixels.shape != base.shape or pixels.dtype != base.dtype:
        log.info(
            "pixels are %s %s but the image was %s %s; saving them without splicing",
            pixels.dtype, pixels.shape, base.dtype, base.shape,
        )  # fmt: skip
        return _plain(pixels)

    mode = image.mode
    if mode in ("RGB", "RGBA", "RGB;16", "RGBA;16"):
        return Rendition(mode, pixels)
    changed = np.any(pixels != base, axis=2)
    new = pixels[changed]  # [N, 3|4]: only the edited pixels get converted
    out = image.original.copy()
    if mode in ("L", "1", "I;16"):
        out[changed] = luma(new)
    elif mode in ("LA", "LA;16"):
        out[changed] = np.stack([luma(new), new[:, 3]], axis=1)
    elif mode == "CMYK":
        out[changed] = _pillow_convert(new[:, :3], "CMYK")
    elif mode == "P":
        return _splice_palette(image, pixels, changed, out)
    if mode == "1" and not np.isin(out, (0, 255)).all():
        mode = "L"  # edits brought grey levels a bilevel image cannot hold
    return Rendition(mode, out)


def _pillow_convert(rgb: np.ndarray, mode: str) -> np.ndarray:
    """Pillow's RGB -> `mode` conversion of an [N, 3] uint8 list of pixels."""
    if len(rgb) == 0:
        return np.zeros((0, len(mode)), np.uint8)
    strip = Image.frombytes("RGB", (len(rgb), 1), np.ascontiguousarray(rgb).tobytes())
    return np.asarray(strip.convert(mode)).reshape(len(rgb), -1)


def _splice_palette(image: LoadedImage, pixels, changed, out) -> Rendition:
    """Give edited pixels the palette entry with exactly their colour and alpha; if some
    colour has none, the image is saved as RGB(A) instead (untouched pixels still match)."""
    rgb, alpha = _palette_tables(image.palette or b"", image.transparency)
    count = max(1, len(image.palette or b"") // 3)

    def key(colours: np.ndarray, alphas: np.ndarray) -> np.ndarray:
        c = colours.astype(np.uint32)
        return (c[:, 0] << 24) | (c[:, 1] << 16) | (c[:, 2] << 8) | alphas.astype(np.uint32)

    new = pixels[changed]
    wanted = key(new[:, :3], new[:, 3] if new.shape[1] == 4 else np.full(len(new), 255))
    known, first = np.unique(key(rgb[:count], alpha[:count]), return_index=True)
    where = np.clip(np.searchsorted(known, wanted), 0, len(known) - 1)
    if not np.all(known[where] == wanted):
        log.info("edits added colours the palette lacks; saving %d-channel colour", new.shape[1])
        return _plain(pixels)
    out[changed] = first[where].astype(np.uint8)
    return Rendition("P", out, image.palette, image.transparency)


def _plain(pixels: np.ndarray) -> Rendition:
    mode = "RGB" if pixels.shape[2] == 3 else "RGBA"
    return Rendition(mode + (";16" if pixels.dtype == np.uint16 else ""), pixels)


def fit_format(out: Rendition, fmt: str, pixels: np.ndarray) -> Rendition:
    """Change what the target format cannot store, saying so in the log."""
    allowed = set(FORMAT_MODES[fmt])
    if out.transparency is not None and fmt != "PNG":
        allowed.discard("P")  # only PNG stores palette transparency
    if out.mode in allowed:
        return out
    if out.mode == "LA;16" and "RGBA;16" in allowed:
        return Rendition("RGBA;16", out.array[..., [0, 0, 0, 1]])
    if out.mode in _EIGHT_BIT:
        log.warning("%s cannot store 16 bits per channel; saving 8 bits", fmt)
        out = Rendition(_EIGHT_BIT[out.mode], to_8bit(out.array))
        if out.mode in allowed:
            return out
    colour = to_8bit(pixels) if pixels.dtype == np.uint16 else pixels
    if colour.shape[2] == 4 and "RGBA" not in allowed:
        log.warning("%s cannot store transparency; flattening onto white", fmt)
        a = colour[..., 3:].astype(np.uint32)
        flat = (colour[..., :3] * a + 255 * (255 - a) + 127) // 255
        return Rendition("RGB", flat.astype(np.uint8))
    return _plain(colour)


# --- Masks ----------------------------------------------------------------------------


def mask_from_array(a: np.ndarray) -> np.ndarray:
    """A bool [H, W] removal mask (True = remove) from an array:

    - bool: as it is.
    - uint8 (like a mask image): [H, W] grey, or [H, W, 2|3|4] grey+alpha/RGB/RGBA made
      grey with Pillow's weights; grey >= 128 means remove. When there is an alpha channel
      that varies and the grey is blank (one uniform value, or nothing reaches 128), alpha
      >= 128 is the mask instead. A uint8 0/1 array therefore selects nothing: pass bool.
    - other integers and floats: a 0/1 mask, [H, W]; any non-zero value means remove.
    [H, W, 1] counts as [H, W]. Anything else raises MaskError.
    """
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] in (2, 3, 4):
        grey = a[..., 0] if a.shape[2] == 2 else luma(a)
        alpha = a[..., -1] if a.shape[2] in (2, 4) else None
        blank = grey.size == 0 or grey.min() == grey.max() or grey.max() < 128
        if alpha is not None and blank and alpha.min() != alpha.max():
            return alpha >= 128
        a = grey
    if a.ndim != 2:
        raise MaskError(f"A mask must be an [H, W] array; got shape {a.shape}.")
    if a.dtype == bool:
        return a.copy()
    if a.dtype == np.uint8:
        if a.max(initial=0) == 1:
            log.warning("uint8 mask holds only 0 and 1, which selects nothing; pass bool")
        return a >= 128
    if np.issubdtype(a.dtype, np.integer):
        return a != 0
    if np.issubdtype(a.dtype, np.floating):
        if np.isnan(a).any():
            raise MaskError("The mask array contains NaN values.")
        return a != 0
    raise MaskError(f"Cannot use a {a.dtype} array as a mask.")


def to_rgb8(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB of working pixels, for display and the model: alpha dropped, 16 -> 8 bit
    by rounding v / 257."""
    rgb = pixels[..., :3]
    return to_8bit(rgb) if rgb.dtype == np.uint16 else np.ascontiguousarray(rgb)
