"""engine.imageio.files: faithful opening and saving, bad files, atomic saves and masks.

Every file is generated in tmp_path. Independent decoders (Pillow for 8-bit, OpenCV for
16-bit) check what was written, so a writer bug cannot hide behind the matching reader.
"""

from __future__ import annotations

import errno
import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image, ImageOps, PngImagePlugin

from engine.errors import ImageFileError, MaskError
from engine.imageio import files as image_io
from engine.imageio.files import (
    SUPPORTED_EXTENSIONS,
    is_supported,
    load_image,
    load_mask,
    mask_from_array,
    save_image,
    to_rgb8,
)
from engine.imageio.sixteen_bit import write_png16, write_tiff16
from engine.imageio.write import DEFAULT_JPEG_QUALITY

ROOT = Path(__file__).resolve().parent.parent
H, W = 36, 52  # stored size of generated photos (not square, so turns show)
RECT = (slice(5, 17), slice(9, 30))  # the edited rectangle, in upright coordinates


def photo(seed: int = 0, h: int = H, w: int = W, channels: int = 3) -> np.ndarray:
    """A smooth gradient with noise: compresses like a photo, no two rows alike."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], axis=2)
    noisy = base + rng.integers(-12, 13, (h, w, 3))
    rgb = np.clip(noisy, 0, 255).astype(np.uint8)
    if channels == 4:
        alpha = rng.integers(0, 256, (h, w, 1), dtype=np.uint8)
        alpha[:4] = 0  # fully transparent rows whose colour must survive too
        return np.concatenate([rgb, alpha], axis=2)
    return rgb


def fake_icc(space: bytes = b"RGB ") -> bytes:
    """Bytes shaped like an ICC profile header: size, then colour space at offset 16."""
    body = bytes(range(256)) * 2
    return struct.pack(">I", 128 + len(body)) + bytes(12) + space + b"XYZ " + bytes(104) + body


def camera_exif(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Moebius Camera Co"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"  # DateTimeOriginal
    return exif.tobytes()


def edit(image: image_io.LoadedImage, seed: int = 99) -> np.ndarray:
    """The working pixels with RECT painted in new random colours (alpha kept)."""
    pixels = image.pixels.copy()
    rng = np.random.default_rng(seed)
    top = np.iinfo(pixels.dtype).max
    patch = rng.integers(0, top + 1, pixels[RECT].shape, dtype=np.int64).astype(pixels.dtype)
    if image.has_alpha:
        patch[..., 3] = pixels[RECT][..., 3]
    pixels[RECT] = patch
    return pixels


def outside(a: np.ndarray) -> np.ndarray:
    keep = np.ones(a.shape[:2], bool)
    keep[RECT] = False
    return a[keep]


def cv2_read(path: Path) -> np.ndarray:
    """OpenCV's reading, as RGB(A) (it gives BGR(A))."""
    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert a is not None
    if a.ndim == 3:
        a = a[..., [2, 1, 0, 3]] if a.shape[2] == 4 else a[..., ::-1]
    return a


# --- Orientation and metadata ---------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    src = tmp_path / "o.png"
    Image.fromarray(photo(orientation)).save(src, exif=camera_exif(orientation))
    image = load_image(src)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(src)))
    assert image.orientation == orientation
    assert np.array_equal(image.pixels, expected)


ROUND_TRIPS = {
    # format: (extension, extra Pillow save arguments, lossless?)
    "JPEG": ("jpg", {"quality": 90}, False),
    "PNG": ("png", {}, True),
    "WEBP": ("webp", {"lossless": True}, True),
    "TIFF": ("tif", {}, True),  # Pillow writes EXIF sub-directories only uncompressed
}


@pytest.mark.parametrize("fmt", ROUND_TRIPS)
def test_round_trip_keeps_metadata(tmp_path, fmt):
    ext, extra, lossless = ROUND_TRIPS[fmt]
    src, dst = tmp_path / f"src.{ext}", tmp_path / f"dst.{ext}"
    stored = photo(1)
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "Harbour at dawn")
    info.add_itxt("Comment", "Möbius ✓", lang="en", tkey="Kommentar")
    dpi = {} if fmt == "WEBP" else {"dpi": (300, 240)}
    png = {"pnginfo": info} if fmt == "PNG" else {}
    icc = fake_icc()
    Image.fromarray(stored).save(
        src, fmt, exif=camera_exif(6), icc_profile=icc, **dpi, **png, **extra
    )

    image = load_image(src)
    assert image.format == fmt and image.orientation == 6
    assert image.size == (H, W)  # turned a quarter: width and height swap
    if lossless:
        assert np.array_equal(image.pixels, np.rot90(stored, -1))
    assert image.icc_profile == icc

    save_image(dst, image, image.pixels.copy())
    saved = Image.open(dst)
    exif = saved.getexif()
    # Pixels are stored upright now, except in a JPEG saved as JPEG: it keeps its stored
    # blocks and so its orientation tag (tests/test_jpeg_blocks.py).
    turned = 6 if fmt == "JPEG" else 1
    assert exif.get(0x0112) == turned
    assert exif.get(0x010F) == "Moebius Camera Co"
    assert exif.get_ifd(0x8769).get(0x9003) == "2024:05:06 07:08:09"
    assert saved.info.get("icc_profile") == icc
    again = load_image(dst)
    assert again.orientation == turned and again.size == image.size
    if fmt != "WEBP":
        assert again.dpi == pytest.approx(image.dpi, abs=1e-3)
        assert image.dpi == pytest.approx((300, 240), abs=0.01)
    if fmt == "PNG":
        assert again.text == {"Title": "Harbour at dawn", "Comment": "Möbius ✓"}
        assert again.text["Comment"].lang == "en"
    if lossless:
        assert np.array_equal(again.pixels, image.pixels)


def test_compressed_tiff_keeps_compression_orientation_and_exif(tmp_path):
    src, dst = tmp_path / "src.tif", tmp_path / "dst.tif"
    stored = photo(2)
    Image.fromarray(stored).save(src, compression="tiff_lzw", tiffinfo={0x0112: 6, 0x010F: "Co"})
    image = load_image(src)
    assert image.orientation == 6 and image.tiff_compression == "tiff_lzw"
    assert np.array_equal(image.pixels, np.rot90(stored, -1))
    image.exif = camera_exif(1)  # libtiff cannot write the EXIF sub-directory itself
    pixels = edit(image)
    save_image(dst, image, pixels)
    saved = Image.open(dst)
    assert saved.info["compression"] == "tiff_lzw"
    assert saved.getexif().get_ifd(0x8769).get(0x9003) == "2024:05:06 07:08:09"
    assert saved.getexif().get(0x010F) == "Moebius Camera Co"
    assert np.array_equal(load_image(dst).pixels, pixels)


def test_bmp_round_trip_keeps_pixels_and_dpi(tmp_path):
    src, dst = tmp_path / "a.bmp", tmp_path / "b.bmp"
    Image.fromarray(photo(2)).save(src, dpi=(150, 150))
    image = load_image(src)
    pixels = edit(image)
    save_image(dst, image, pixels)
    again = load_image(dst)
    assert np.array_equal(again.pixels, pixels)
    assert again.dpi == pytest.approx((150, 150), abs=0.05)


@pytest.mark.parametrize(("quality", "subsampling"), [(35, 2), (60, 1), (82, 2), (95, 0)])
def test_jpeg_quality_estimate_and_subsampling_are_kept(tmp_path, quality, subsampling):
    src, dst = tmp_path / "src.jpg", tmp_path / "dst.jpg"
    Image.fromarray(photo(3)).save(src, quality=quality, subsampling=subsampling)
    image = load_image(src)
    assert abs(image.jpeg_quality - quality) <= 3
    assert image.jpeg_subsampling == subsampling
    save_image(dst, image, edit(image))
    again = load_image(dst)
    assert abs(again.jpeg_quality - quality) <= 3
    assert again.jpeg_subsampling == subsampling


def _with_thumbnail(exif: bytes, thumbnail: bytes) -> bytes:
    """EXIF with an IFD1 holding `thumbnail` (Pillow writes no IFD1 of its own)."""
    tiff = bytearray(exif[6:])
    e = "<" if tiff[:2] == b"II" else ">"
    (ifd0,) = struct.unpack_from(e + "I", tiff, 4)
    (count,) = struct.unpack_from(e + "H", tiff, ifd0)
    ifd1 = len(tiff) + len(tiff) % 2
    tiff += bytes(ifd1 - len(tiff))
    struct.pack_into(e + "I", tiff, ifd0 + 2 + 12 * count, ifd1)  # IFD0's "next" pointer
    data = ifd1 + 2 + 2 * 12 + 4
    tiff += struct.pack(e + "H", 2)
    tiff += struct.pack(e + "HHII", 0x0201, 4, 1, data) + struct.pack(
        e + "HHII", 0x0202, 4, 1, len(thumbnail)
    )
    tiff += struct.pack(e + "I", 0) + thumbnail
    return b"Exif\x00\x00" + bytes(tiff)  # fmt: skip


@pytest.mark.parametrize("keep_blocks", [False, True])
def test_stale_exif_thumbnail_is_not_kept(tmp_path, keep_blocks):
    # The embedded thumbnail would still show whatever the user removed: a re-encoded
    # picture drops it, a block-preserving JPEG save redraws it (tests/test_jpeg_blocks.py).
    thumbnail = _encoded("JPEG")
    src = tmp_path / "t.jpg"
    Image.fromarray(photo(19)).save(src, exif=_with_thumbnail(camera_exif(3), thumbnail))
    assert thumbnail in src.read_bytes()
    assert Image.open(src).getexif().get_ifd(ExifTags.IFD.IFD1)  # the thumbnail is there
    image = load_image(src)
    assert image.orientation == 3
    saved = tmp_path / "out.jpg"
    save_image(saved, image, edit(image), keep_jpeg_blocks=keep_blocks)
    assert thumbnail not in saved.read_bytes()
    assert Image.open(saved).getexif().get(0x010F) == "Moebius Camera Co"
    assert bool(Image.open(saved).getexif().get_ifd(ExifTags.IFD.IFD1)) == keep_blocks


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_damaged_exif_does_not_refuse_the_photo(tmp_path):
    src = tmp_path / "bad-exif.jpg"
    Image.fromarray(photo(22)).save(src, exif=b"Exif\x00\x00MM\x00*\x00\x00\xff\xff\xff" + bytes(9))
    image = load_image(src)
    assert image.orientation == 1 and image.exif is None
    save_image(tmp_path / "out.jpg", image, image.pixels)
    assert load_image(tmp_path / "out.jpg").size == (W, H)


def test_jpeg_from_lossless_source_uses_high_quality_444(tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(photo(4)).save(src)
    save_image(tmp_path / "b.jpg", load_image(src), load_image(src).pixels)
    again = load_image(tmp_path / "b.jpg")
    assert again.jpeg_quality == DEFAULT_JPEG_QUALITY
    assert again.jpeg_subsampling == 0


def test_explicit_quality_and_format(tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(photo(5)).save(src)
    image = load_image(src)
    out = save_image(tmp_path / "noext", image, image.pixels, format="jpg", quality=50).path
    assert Image.open(out).format == "JPEG"
    assert abs(load_image(out).jpeg_quality - 50) <= 3
    assert Image.open(save_image(tmp_path / "same", image, image.pixels).path).format == "PNG"
    with pytest.raises(ImageFileError, match=r"\.gif"):
        save_image(tmp_path / "x.gif", image, image.pixels)


# --- Lossless splicing ----------------------------------------------------------------


def _palette_image(transparent: bool) -> Image.Image:
    index = (np.arange(H * W).reshape(H, W) * 7 % 200).astype(np.uint8)
    im = Image.frombytes("P", (W, H), index.tobytes())
    im.putpalette(bytes(np.random.default_rng(6).integers(0, 256, 768, dtype=np.uint8)))
    if transparent:
        im.info["transparency"] = bytes(range(0, 256, 2))[:100]
    return im


def _make_source(kind: str, path: Path) -> None:
    """Write a source file of `kind` (mode + format) with an independent encoder."""
    rgb, rgba = photo(7), photo(8, channels=4)
    if kind == "RGB.png":
        Image.fromarray(rgb).save(path)
    elif kind == "RGBA.png":
        Image.fromarray(rgba).save(path)
    elif kind == "L.png":
        Image.fromarray(rgb[..., 1]).save(path)
    elif kind == "LA.png":
        Image.fromarray(rgba[..., [1, 3]]).save(path)
    elif kind in ("P.png", "Ptrns.png"):
        im = _palette_image(kind == "Ptrns.png")
        im.save(path, transparency=im.info.get("transparency"))
    elif kind == "1.png":
        Image.fromarray(rgb[..., 0] > 128).save(path)
    elif kind == "CMYK.tif":
        cmyk = np.concatenate([rgb, rgb[..., :1] // 3], axis=2)
        Image.frombytes("CMYK", (W, H), cmyk.tobytes()).save(
            path, compression="tiff_lzw", icc_profile=fake_icc(b"CMYK")
        )
    elif kind in ("I16.png", "I16.tif"):
        grey = (rgb[..., 0].astype(np.uint16) * 257) ^ np.uint16(0x00A5)  # low bits vary
        Image.fromarray(grey).save(path)
    elif kind in ("RGB16.png", "RGB16.tif", "RGBA16.png", "RGBA16.tif"):
        channels = 4 if "RGBA" in kind else 3
        deep = photo(9, channels=channels).astype(np.uint16) * 257 + 3
        bgr = deep[..., [2, 1, 0, 3][:channels]]
        path.write_bytes(cv2.imencode(path.suffix, bgr)[1].tobytes())
    elif kind == "LA16.png":
        with open(path, "wb") as fp:  # no independent 16-bit grey+alpha encoder exists here
            write_png16(fp, (photo(10, channels=4)[..., [0, 3]].astype(np.uint16) * 251))
    elif kind == "RGB.tif":
        Image.fromarray(rgb).save(path, compression="packbits")
    elif kind in ("RGB.bmp", "L.bmp"):
        Image.fromarray(rgb if kind == "RGB.bmp" else rgb[..., 2]).save(path)
    elif kind == "RGBA.webp":
        Image.fromarray(rgba).save(path, lossless=True, exact=True)
    else:
        raise AssertionError(kind)


LOSSLESS_KINDS = {
    # kind: (mode after loading, mode after saving an edit with new colours)
    "RGB.png": ("RGB", "RGB"),
    "RGBA.png": ("RGBA", "RGBA"),
    "L.png": ("L", "L"),
    "LA.png": ("LA", "LA"),
    "P.png": ("P", "RGB"),
    "Ptrns.png": ("P", "RGBA"),
    "1.png": ("1", "L"),
    "CMYK.tif": ("CMYK", "CMYK"),
    "I16.png": ("I;16", "I;16"),
    "I16.tif": ("I;16", "I;16"),
    "RGB16.png": ("RGB;16", "RGB;16"),
    "RGB16.tif": ("RGB;16", "RGB;16"),
    "RGBA16.png": ("RGBA;16", "RGBA;16"),
    "RGBA16.tif": ("RGBA;16", "RGBA;16"),
    "LA16.png": ("LA;16", "LA;16"),
    "RGB.tif": ("RGB", "RGB"),
    "RGB.bmp": ("RGB", "RGB"),
    "L.bmp": ("L", "L"),
    "RGBA.webp": ("RGBA", "RGBA"),
}


@pytest.mark.parametrize("kind", LOSSLESS_KINDS)
def test_unedited_pixels_stay_bit_identical(tmp_path, kind):
    loaded_mode, saved_mode = LOSSLESS_KINDS[kind]
    src = tmp_path / f"src.{kind.split('.')[1]}"
    dst = tmp_path / f"dst{src.suffix}"
    _make_source(kind, src)
    image = load_image(src)
    assert image.mode == loaded_mode
    deep = ";16" in loaded_mode or loaded_mode == "I;16"
    assert image.pixels.dtype == (np.uint16 if deep else np.uint8)
    assert image.bit_depth == (16 if deep else 1 if loaded_mode == "1" else 8)

    pixels = edit(image)
    save_image(dst, image, pixels)
    again = load_image(dst)
    assert again.mode == saved_mode
    assert again.pixels.dtype == image.pixels.dtype  # 16-bit stays 16-bit
    if saved_mode == loaded_mode:
        assert np.array_equal(outside(again.original), outside(image.original))
    assert np.array_equal(outside(again.pixels), outside(image.pixels))
    if saved_mode in ("RGB", "RGBA", "RGB;16", "RGBA;16"):
        assert np.array_equal(again.pixels[RECT], pixels[RECT])

    # An independent decoder sees the same untouched pixels.
    if deep:
        theirs = cv2_read(dst)
        if loaded_mode == "LA;16":
            theirs = theirs[..., [0, 3]]  # OpenCV expands grey + alpha to BGRA
        assert np.array_equal(outside(theirs), outside(image.original))
    elif saved_mode == loaded_mode and loaded_mode not in ("1", "P"):
        assert np.array_equal(outside(np.asarray(Image.open(dst))), outside(image.original))


def test_bilevel_stays_bilevel_when_edits_are_black_or_white(tmp_path):
    src = tmp_path / "b.png"
    _make_source("1.png", src)
    image = load_image(src)
    pixels = image.pixels.copy()
    pixels[RECT] = 255
    save_image(tmp_path / "out.png", image, pixels)
    assert Image.open(tmp_path / "out.png").mode == "1"
    assert np.array_equal(load_image(tmp_path / "out.png").pixels, pixels)


def test_grey_edits_are_converted_with_luminance(tmp_path):
    src = tmp_path / "g.png"
    _make_source("L.png", src)
    image = load_image(src)
    pixels = edit(image)
    save_image(tmp_path / "out.png", image, pixels)
    expected = np.asarray(Image.fromarray(np.ascontiguousarray(pixels[RECT])).convert("L"))
    assert np.array_equal(load_image(tmp_path / "out.png").original[RECT], expected)


def test_cmyk_edits_use_pillow_conversion_and_keep_icc(tmp_path):
    src = tmp_path / "c.tif"
    _make_source("CMYK.tif", src)
    image = load_image(src)
    pixels = edit(image)
    save_image(tmp_path / "out.tif", image, pixels)
    again = load_image(tmp_path / "out.tif")
    expected = np.asarray(Image.fromarray(np.ascontiguousarray(pixels[RECT])).convert("CMYK"))
    assert np.array_equal(again.original[RECT], expected)
    assert again.icc_profile == fake_icc(b"CMYK")
    # PNG has no CMYK: the RGB working pixels are saved and the CMYK profile is dropped.
    save_image(tmp_path / "out.png", image, pixels)
    png = load_image(tmp_path / "out.png")
    assert png.mode == "RGB" and png.icc_profile is None
    assert np.array_equal(png.pixels, pixels)


def test_palette_edit_with_palette_colours_stays_palette(tmp_path):
    src = tmp_path / "p.png"
    _make_source("Ptrns.png", src)
    image = load_image(src)
    pixels = image.pixels.copy()
    pixels[RECT] = image.pixels[0, 3]  # a colour (and alpha) the palette has
    save_image(tmp_path / "out.png", image, pixels)
    again = load_image(tmp_path / "out.png")
    assert again.mode == "P"
    assert again.palette == image.palette and again.transparency == image.transparency
    assert np.array_equal(again.pixels, pixels)
    assert np.array_equal(outside(again.original), outside(image.original))


def test_16bit_image_edited_in_8bit_keeps_16bit_elsewhere(tmp_path):
    src = tmp_path / "d.png"
    _make_source("RGB16.png", src)
    image = load_image(src)
    pixels8 = to_rgb8(image.pixels)
    pixels8[RECT] = 200
    save_image(tmp_path / "out.png", image, pixels8)
    again = load_image(tmp_path / "out.png")
    assert again.pixels.dtype == np.uint16
    assert np.array_equal(outside(again.pixels), outside(image.pixels))
    assert (again.pixels[RECT] == 200 * 257).all()


def test_16bit_saved_as_jpeg_becomes_8bit(tmp_path):
    src = tmp_path / "d.tif"
    _make_source("RGB16.tif", src)
    image = load_image(src)
    save_image(tmp_path / "out.jpg", image, image.pixels, quality=100)
    again = load_image(tmp_path / "out.jpg")
    assert again.pixels.dtype == np.uint8
    diff = np.abs(again.pixels.astype(int) - to_rgb8(image.pixels).astype(int))
    assert diff.mean() < 3


def test_16bit_png_orientation_and_metadata(tmp_path):
    src, dst = tmp_path / "d.png", tmp_path / "e.png"
    deep = photo(11).astype(np.uint16) * 257 + 1
    with open(src, "wb") as fp:
        write_png16(fp, deep, icc=fake_icc(), dpi=(300, 300), exif=camera_exif(8),
                    text={"Title": "deep"})  # fmt: skip
    image = load_image(src)
    assert image.orientation == 8
    assert np.array_equal(image.pixels, np.rot90(deep, 1))
    save_image(dst, image, image.pixels)
    again = load_image(dst)
    assert again.orientation == 1 and np.array_equal(again.pixels, image.pixels)
    assert again.icc_profile == fake_icc() and again.text == {"Title": "deep"}
    assert again.dpi == pytest.approx((300, 300), abs=1e-3)
    assert Image.open(dst).getexif().get_ifd(0x8769).get(0x9003) == "2024:05:06 07:08:09"


def test_16bit_tiff_orientation(tmp_path):
    deep = photo(18, channels=4).astype(np.uint16) * 257 + 2
    with open(tmp_path / "d.tif", "wb") as fp:
        write_tiff16(fp, deep, exif=camera_exif(6))
    image = load_image(tmp_path / "d.tif")
    assert image.orientation == 6 and image.mode == "RGBA;16"
    assert np.array_equal(image.pixels, np.rot90(deep, -1))


def test_16bit_grey_tiff_orientation(tmp_path):
    grey = photo(20)[..., 0].astype(np.uint16) * 255 + 7
    Image.fromarray(grey).save(tmp_path / "g.tif", tiffinfo={0x0112: 7})
    image = load_image(tmp_path / "g.tif")
    expected = np.asarray(Image.fromarray(grey).transpose(Image.Transpose.TRANSVERSE))
    assert image.orientation == 7 and image.mode == "I;16"
    assert np.array_equal(image.original, expected)


def test_16bit_tiff_keeps_metadata(tmp_path):
    src = tmp_path / "d.tif"
    _make_source("RGBA16.tif", src)
    image = load_image(src)
    image.exif, image.icc_profile, image.dpi = camera_exif(1), fake_icc(), (72.0, 72.0)
    save_image(tmp_path / "e.tif", image, image.pixels)
    saved = Image.open(tmp_path / "e.tif")
    assert saved.info["icc_profile"] == fake_icc()
    assert saved.info["dpi"] == pytest.approx((72, 72))
    assert saved.getexif().get(0x010F) == "Moebius Camera Co"
    assert saved.getexif().get_ifd(0x8769).get(0x9003) == "2024:05:06 07:08:09"


def test_alpha_is_kept_and_flattened_only_where_unsupported(tmp_path):
    src = tmp_path / "a.png"
    _make_source("RGBA.png", src)
    image = load_image(src)
    assert image.has_alpha
    save_image(tmp_path / "b.webp", image, image.pixels)  # lossless: from a PNG
    webp = load_image(tmp_path / "b.webp")
    assert webp.webp_lossless and np.array_equal(webp.pixels, image.pixels)
    save_image(tmp_path / "c.jpg", image, image.pixels, quality=100)
    jpeg = load_image(tmp_path / "c.jpg")
    assert not jpeg.has_alpha
    assert (jpeg.pixels[:4] >= 250).all()  # fully transparent rows became white


def test_lossy_webp_source_saves_lossy(tmp_path):
    Image.fromarray(photo(21)).save(tmp_path / "a.webp", quality=70)
    image = load_image(tmp_path / "a.webp")
    assert image.webp_lossless is False
    save_image(tmp_path / "b.webp", image, image.pixels)
    assert load_image(tmp_path / "b.webp").webp_lossless is False


def test_to_rgb8_rounds_and_drops_alpha():
    # round(v / 257): 128.5 and 385.5 and 65406.5 are the halfway points.
    deep = np.array([[[0, 128, 129], [257, 385, 386], [65535, 65406, 65407]]], np.uint16)
    assert to_rgb8(deep).tolist() == [[[0, 0, 1], [1, 1, 2], [255, 254, 255]]]
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert to_rgb8(rgba).shape == (2, 2, 3)


def test_loaded_pixels_cannot_be_changed_in_place(tmp_path):
    Image.fromarray(photo(12)).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    with pytest.raises(ValueError):
        image.pixels[0, 0] = 1


# --- Bad files ------------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _bilevel_png(width: int, height: int) -> bytes:
    """A valid, all-black 1-bit PNG of any size, built row by row (a few kB)."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _bomb_header() -> bytes:
    """A PNG that claims 100000 × 100000 pixels but holds a few bytes of data."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(64)))
        + _png_chunk(b"IEND", b"")
    )


def _encoded(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(photo(13)).save(out, fmt)
    return out.getvalue()


def _two_page_tiff() -> bytes:
    out = io.BytesIO()
    first, second = Image.fromarray(photo(14)), Image.fromarray(photo(15))
    first.save(out, "TIFF", save_all=True, append_images=[second])
    return out.getvalue()


BAD_FILES = {
    "empty.png": (b"", "empty"),
    "text.jpg": (b"hello, this is not a picture\n" * 10, "not an image"),
    "anim.gif": (b"GIF89a" + bytes(100), "GIF"),
    "cut.jpg": (lambda: _encoded("JPEG")[:-300], "damaged or incomplete"),
    "cut-end.jpg": (lambda: _encoded("JPEG")[:-2], "damaged or incomplete"),
    "cut.png": (lambda: _encoded("PNG")[:-400], "damaged or incomplete"),
    "no-iend.png": (lambda: _encoded("PNG")[:-12], "damaged or incomplete"),
    "cut.tif": (lambda: _encoded("TIFF")[:-100], "damaged or incomplete"),
    "cut.webp": (lambda: _encoded("WEBP")[:-50], "damaged or incomplete"),
    "cut.bmp": (lambda: _encoded("BMP")[:-100], "damaged or incomplete"),
    "header-only.png": (lambda: _bilevel_png(8, 8)[:33], "damaged or incomplete"),
    "bomb-header.png": (_bomb_header, r"100000 × 100000 pixels \(10000 megapixels\).*250 mega"),
    "bomb-real.png": (lambda: _bilevel_png(20_000, 12_600), r"252 megapixels.*limit of 250"),
    "pages.tif": (_two_page_tiff, "2 frames or pages"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_files_are_refused_with_a_clear_message(tmp_path, name):
    content, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content() if callable(content) else content)
    with pytest.raises(ImageFileError, match=message) as info:
        load_image(path)
    assert name in str(info.value)


def test_missing_file_and_folder_are_refused(tmp_path):
    with pytest.raises(ImageFileError, match="does not exist") as info:
        load_image(tmp_path / "nope.jpg")
    assert "nope.jpg" in str(info.value)
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageFileError, match="folder"):
        load_image(tmp_path / "folder.png")


def test_size_limit_is_ours_not_pillows(tmp_path, monkeypatch):
    # Pillow's own check (which would refuse ~179 MP) must not be involved at all.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    Image.fromarray(photo(16)).save(tmp_path / "a.png")
    assert load_image(tmp_path / "a.png").size == (W, H)
    monkeypatch.setattr(image_io, "MAX_PIXELS", 1000)
    with pytest.raises(ImageFileError, match="megapixels"):
        load_image(tmp_path / "a.png")


def test_content_decides_the_format_not_the_extension(tmp_path):
    (tmp_path / "really-a-png.jpg").write_bytes(_encoded("PNG"))
    assert load_image(tmp_path / "really-a-png.jpg").format == "PNG"


# --- Atomic saves ---------------------------------------------------------------------


@pytest.fixture
def opened(tmp_path):
    src = tmp_path / "src.png"
    Image.fromarray(photo(17)).save(src)
    return load_image(src)


def _disk_full(self, fp, *args, **kwargs):
    fp.write(b"partial data that must not survive")
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("target", ["out.png", "out.tif"])
def test_failed_save_leaves_target_untouched_and_no_temp_file(tmp_path, opened, monkeypatch,
                                                             target):  # fmt: skip
    path = tmp_path / target
    path.write_bytes(b"the user's precious old file")
    before = sorted(tmp_path.iterdir())
    monkeypatch.setattr(Image.Image, "save", _disk_full)
    with pytest.raises(ImageFileError, match="disk is full") as info:
        save_image(path, opened, edit(opened), overwrite=True)
    assert target in str(info.value)
    assert path.read_bytes() == b"the user's precious old file"
    assert sorted(tmp_path.iterdir()) == before


def test_failed_16bit_save_cleans_up(tmp_path, monkeypatch):
    src = tmp_path / "d.png"
    _make_source("RGB16.png", src)
    image = load_image(src)
    monkeypatch.setattr("engine.imageio.write.write_png16", lambda fp, *a, **k: _disk_full(0, fp))
    with pytest.raises(ImageFileError, match="disk is full"):
        save_image(tmp_path / "out.png", image, image.pixels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.png"]


def test_failed_rename_reports_permission(tmp_path, opened, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("engine.imageio.write.os.replace", refuse)
    with pytest.raises(ImageFileError, match="permission denied"):
        save_image(tmp_path / "out.png", opened, opened.pixels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.png"]


def test_save_refuses_to_overwrite_unless_asked(tmp_path, opened):
    path = tmp_path / "out.png"
    save_image(path, opened, opened.pixels)
    first = path.read_bytes()
    with pytest.raises(ImageFileError, match="already exists") as info:
        save_image(path, opened, edit(opened))
    assert "out.png" in str(info.value)
    assert path.read_bytes() == first
    assert save_image(path, opened, edit(opened), overwrite=True).path == path
    assert path.read_bytes() != first


def test_save_into_missing_folder_is_a_clear_error(tmp_path, opened):
    with pytest.raises(ImageFileError, match="does not exist"):
        save_image(tmp_path / "no" / "such" / "out.png", opened, opened.pixels)


def test_save_rejects_malformed_pixels(tmp_path, opened):
    with pytest.raises(ValueError):
        save_image(tmp_path / "x.png", opened, opened.pixels.astype(np.float32))
    with pytest.raises(ValueError):
        save_image(tmp_path / "x.png", opened, opened.pixels[..., 0])


# --- Masks ----------------------------------------------------------------------------


def test_mask_threshold_is_128(tmp_path):
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    Image.fromarray(grey).save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png").tolist() == [[False, False, True, True]]
    rgb = np.array([[[255, 0, 0], [255, 255, 255], [0, 0, 0]]], np.uint8)  # red is grey 76
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert load_mask(tmp_path / "rgb.png").tolist() == [[False, True, False]]


def test_alpha_only_masks_use_alpha(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 3] = [[0, 127, 128], [255, 0, 0]]  # black everywhere: only alpha says anything
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert load_mask(tmp_path / "a.png").tolist() == [[False, False, True], [True, False, False]]
    rgba[..., :3] = 255  # uniform white with varying alpha: still an alpha mask
    Image.fromarray(rgba).save(tmp_path / "b.png")
    assert load_mask(tmp_path / "b.png").tolist() == [[False, False, True], [True, False, False]]
    opaque = np.full((1, 2, 4), 255, np.uint8)
    opaque[0, 0, :3] = 0  # opaque grey mask: grey decides
    Image.fromarray(opaque).save(tmp_path / "c.png")
    assert load_mask(tmp_path / "c.png").tolist() == [[False, True]]


def test_mask_size_checks_and_nearest_resize(tmp_path):
    small = np.array([[0, 255], [255, 0]], np.uint8)
    Image.fromarray(small).save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png", (2, 2)).shape == (2, 2)
    with pytest.raises(MaskError, match=r"2 × 2 pixels but the image is 4 × 4"):
        load_mask(tmp_path / "m.png", (4, 4))
    grown = load_mask(tmp_path / "m.png", (4, 4), resize=True)
    assert np.array_equal(grown, np.repeat(np.repeat(small >= 128, 2, 0), 2, 1))
    assert load_mask(tmp_path / "m.png", (201, 200), resize=True).shape == (200, 201)  # 0.5%
    with pytest.raises(MaskError, match=r"2 × 2 pixels but the image is 6 × 4"):
        load_mask(tmp_path / "m.png", (6, 4), resize=True)


def test_mask_applies_its_own_orientation(tmp_path):
    grey = np.zeros((2, 3), np.uint8)
    grey[0, 0] = 255
    Image.fromarray(grey).save(tmp_path / "m.jpg", exif=camera_exif(6), quality=100)
    mask = load_mask(tmp_path / "m.jpg")
    assert mask.shape == (3, 2) and mask[0, 1] and mask.sum() == 1


def test_mask_from_array_conventions(caplog):
    assert mask_from_array(np.array([[True, False]])).tolist() == [[True, False]]
    assert mask_from_array(np.array([[127, 128]], np.uint8)).tolist() == [[False, True]]
    assert mask_from_array(np.array([[0, 1, 7]], np.int32)).tolist() == [[False, True, True]]
    assert mask_from_array(np.array([[0.0, 1.0, 0.2]])).tolist() == [[False, True, True]]
    assert mask_from_array(np.array([[[200], [3]]], np.uint8)).tolist() == [[True, False]]
    assert mask_from_array(np.array([[0, 1]], np.uint8)).tolist() == [[False, False]]
    assert "pass bool" in caplog.text
    with pytest.raises(MaskError):
        mask_from_array(np.array([[np.nan]]))
    with pytest.raises(MaskError):
        mask_from_array(np.zeros((2, 2, 3), np.float32))


# --- Names and imports ----------------------------------------------------------------


def test_supported_extensions():
    assert set(SUPPORTED_EXTENSIONS) == {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp",
                                         ".heic", ".heif", ".hif", ".avif"}
    assert is_supported("a/B.JPG") and is_supported(Path("x.tiff"))
    assert is_supported("IMG_0001.HEIC") and is_supported("x.avif")
    assert not is_supported("anim.gif") and not is_supported("noext")


def test_importing_image_io_loads_no_qt_torch_or_opencv():
    heavy = "{'torch', 'cv2', 'PySide6', 'shiboken6', 'pillow_heif', 'skimage'}"
    code = f"import sys, engine.imageio.files; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
