"""JPEG saves that keep every untouched block of the source (engine/imageio/jpeg_blocks.py).

The sources are real JPEG files written by libjpeg (through Pillow, and jpeglib for the
arithmetic-coded one): 4:4:4, 4:2:2, 4:2:0 and grey, baseline with standard and optimised
Huffman tables, progressive, with restart markers, sizes that are not multiples of the
MCU, all eight EXIF orientations, with EXIF, ICC, XMP, comment and other APPn segments.
"""

from __future__ import annotations

import io
import logging

import jpeglib
import numpy as np
import pytest
from PIL import Image

from engine.imageio import jpeg_blocks, jpeg_segments
from engine.imageio.files import load_image, save_image
from engine.imageio.meta import apply_orientation

H, W = 157, 203  # stored size: no multiple of any MCU size
XMP = (b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x='adobe:ns:meta/'>"
       b"<rdf:RDF/></x:xmpmeta>")

# name: Pillow save options (all at quality 88)
VARIANTS = {
    "444": {"subsampling": 0},
    "422": {"subsampling": 1},
    "420": {"subsampling": 2},
    "420-optimised": {"subsampling": 2, "optimize": True},
    "444-progressive": {"subsampling": 0, "progressive": True},
    "420-progressive": {"subsampling": 2, "progressive": True},
    "420-restart-rows": {"subsampling": 2, "restart_marker_rows": 1},
    "422-restart-blocks": {"subsampling": 1, "restart_marker_blocks": 3},
    "grey": {},
}


def scene(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """Gradients, edges and sensor-like noise: compresses like a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([40 + 150 * x / w, 70 + 120 * y / h, 200 - 90 * (x + y) / (w + h)], axis=2)
    rgb[(x // 23 + y // 17) % 2 == 0] += 25  # edges in every direction
    rgb += rng.normal(0, 6, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def camera_exif(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Moebius Camera Co"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
    return exif.tobytes()


def write_jpeg(path, stored: np.ndarray, variant: str = "420", orientation: int = 1,
               **extra) -> bytes:
    im = Image.fromarray(stored)
    if variant == "grey":
        im = im.convert("L")
    im.save(path, "JPEG", quality=88, exif=extra.pop("exif", camera_exif(orientation)),
            icc_profile=extra.pop("icc_profile", b"\0" * 16 + b"RGB XYZ " + bytes(120)),
            comment=b"shot at dawn", xmp=XMP, **VARIANTS[variant], **extra)
    return path.read_bytes()


def random_mask(rng, h: int, w: int) -> np.ndarray:
    """A removal-like mask: a box, a blob, a stroke or scattered dots, anywhere (edges too)."""
    mask = np.zeros((h, w), bool)
    kind = rng.integers(4)
    y, x = np.mgrid[0:h, 0:w]
    cy, cx = rng.integers(h), rng.integers(w)
    if kind == 0:
        mask[cy : cy + rng.integers(1, 40), cx : cx + rng.integers(1, 40)] = True
    elif kind == 1:
        mask[(y - cy) ** 2 + (x - cx) ** 2 < rng.integers(4, 400)] = True
    elif kind == 2:
        mask[np.abs((y - cy) - (x - cx) * rng.uniform(-2, 2)) < 1.5] = True
    else:
        mask[rng.integers(h, size=12), rng.integers(w, size=12)] = True
    return mask


def removal(pixels: np.ndarray, mask: np.ndarray, rng) -> np.ndarray:
    """What a removal does to the working pixels: new content inside the mask only."""
    out = pixels.copy()
    fill = rng.integers(0, 256, 3).astype(np.uint8)
    out[mask] = fill
    return out


def stored_mask(upright: np.ndarray, orientation: int) -> np.ndarray:
    """Where the upright `upright` pixels lie in the stored picture, by following indices."""
    sh, sw = upright.shape if orientation < 5 else upright.shape[::-1]
    index = apply_orientation(np.arange(sh * sw).reshape(sh, sw), orientation)
    out = np.zeros(sh * sw, bool)
    out[index[upright]] = True
    return out.reshape(sh, sw)


def mcus(changed: np.ndarray, mcu: tuple[int, int], grow: int = 0) -> np.ndarray:
    """bool [MCU rows, MCU columns]: MCUs holding a changed pixel, or within `grow` of one."""
    mw, mh = mcu
    rows, cols = -(-changed.shape[0] // mh), -(-changed.shape[1] // mw)
    grid = np.zeros((rows, cols), bool)
    ys, xs = np.nonzero(changed)
    grid[ys // mh, xs // mw] = True
    padded, grown = np.pad(grid, grow), np.zeros_like(grid)
    for dy in range(2 * grow + 1):
        for dx in range(2 * grow + 1):
            grown |= padded[dy : dy + rows, dx : dx + cols]
    return grown


def pixels_of(grid: np.ndarray, mcu: tuple[int, int], shape) -> np.ndarray:
    """The MCU grid as a per-pixel mask of the picture's shape."""
    return np.repeat(np.repeat(grid, mcu[1], 0), mcu[0], 1)[: shape[0], : shape[1]]


def decode_stored(data: bytes) -> np.ndarray:
    """Pixels as stored (no orientation applied), RGB."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def coefficients(data: bytes, tmp_path) -> list[np.ndarray]:
    path = tmp_path / "coefficients.jpg"
    path.write_bytes(data)
    jpeg = jpeglib.read_dct(str(path))
    return [jpeg.Y] if jpeg.Cb is None else [jpeg.Y, jpeg.Cb, jpeg.Cr]


def metadata(data: bytes) -> list[bytes]:
    return [s.raw for s in jpeg_segments.read_header(data).segments if s.is_metadata]


# --- What stays exactly --------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_saving_without_edits_keeps_every_coefficient(tmp_path, variant):
    src = tmp_path / "src.jpg"
    source = write_jpeg(src, scene(), variant)
    image = load_image(src)
    saved = save_image(tmp_path / "out.jpg", image, image.pixels)
    assert saved.blocks_kept is True and "every JPEG block" in saved.note
    out = saved.path.read_bytes()
    for a, b in zip(coefficients(source, tmp_path), coefficients(out, tmp_path), strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(decode_stored(out), decode_stored(source))
    src_head, out_head = jpeg_segments.read_header(source), jpeg_segments.read_header(out)
    assert out_head.frame == src_head.frame  # size, sampling, tables, progressive or not
    assert out_head.find(0xDB) == src_head.find(0xDB)  # quantization tables, byte for byte
    assert metadata(out) == metadata(source)
    if not out_head.frame.progressive and "restart" not in variant:
        # Baseline: the very same Huffman tables and scan bytes come back.
        assert out_head.find(0xC4) == src_head.find(0xC4)
        _, scan = jpeg_segments.segments(source)
        assert out.endswith(source[scan:])


@pytest.mark.parametrize("variant", VARIANTS)
def test_only_the_touched_mcus_change_for_many_masks(tmp_path, variant):
    src = tmp_path / "src.jpg"
    source = write_jpeg(src, scene(seed=3), variant)
    image = load_image(src)
    frame = jpeg_segments.read_header(source).frame
    source_pixels, source_coefs = decode_stored(source), coefficients(source, tmp_path)
    rng = np.random.default_rng(list(VARIANTS).index(variant))
    for i in range(10):
        mask = random_mask(rng, H, W)
        edited = removal(image.pixels, mask, rng)
        saved = save_image(tmp_path / f"out{i}.jpg", image, edited)
        assert saved.blocks_kept is True, saved.note
        out = saved.path.read_bytes()

        changed = (edited != image.pixels).any(axis=2)
        # Coefficients: every block of an MCU without a changed pixel is the source's.
        touched = mcus(changed, frame.mcu_size)
        for comp, a, b in zip(frame.components, source_coefs, coefficients(out, tmp_path),
                              strict=True):
            by, bx = np.mgrid[0 : a.shape[0], 0 : a.shape[1]]
            in_touched = touched[by // comp.v, bx // comp.h]
            assert np.array_equal(a[~in_touched], b[~in_touched]), f"mask {i}"
        # Pixels: exactly the source's outside the touched MCUs grown by one MCU.
        near = pixels_of(mcus(changed, frame.mcu_size, grow=1), frame.mcu_size, changed.shape)
        decoded = decode_stored(out)
        assert np.array_equal(decoded[~near], source_pixels[~near]), f"mask {i}"
        # ... and the edit is in the file: the changed pixels decode as close to the edit
        # as in a whole re-encode at the source's quality.
        whole = save_image(tmp_path / f"whole{i}.jpg", image, edited, keep_jpeg_blocks=False)
        want = edited.astype(np.int16)
        if variant == "grey":
            want = np.asarray(Image.fromarray(edited).convert("L").convert("RGB"), np.int16)
        if changed.any():
            err_out = np.abs(decoded[changed] - want[changed]).mean()
            err_whole = np.abs(decode_stored(whole.path.read_bytes())[changed]
                               - want[changed]).mean()
            assert err_out <= 1.25 * err_whole + 2, f"mask {i}: {err_out} vs {err_whole}"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_maps_the_edit_back_and_keeps_the_tag(tmp_path, orientation):
    src = tmp_path / "src.jpg"
    stored = scene(seed=orientation)
    source = write_jpeg(src, stored, "420", orientation)
    image = load_image(src)
    assert image.orientation == orientation
    frame = jpeg_segments.read_header(source).frame
    rng = np.random.default_rng(orientation)
    for i in range(4):
        upright_mask = random_mask(rng, *image.pixels.shape[:2])
        edited = removal(image.pixels, upright_mask, rng)
        saved = save_image(tmp_path / f"out{i}.jpg", image, edited)
        out = saved.path.read_bytes()
        assert metadata(out) == metadata(source)  # EXIF and its orientation tag unchanged
        assert Image.open(saved.path).getexif()[0x0112] == orientation
        changed = stored_mask((edited != image.pixels).any(axis=2), orientation)
        near = pixels_of(mcus(changed, frame.mcu_size, grow=1), frame.mcu_size, changed.shape)
        assert np.array_equal(decode_stored(out)[~near], decode_stored(source)[~near])
        # Opened again, the photo is upright and shows the edit where it was made, as
        # closely as a whole re-encode (which stores it upright) does.
        again = load_image(saved.path)
        whole = load_image(save_image(tmp_path / f"whole{i}.jpg", image, edited,
                                      keep_jpeg_blocks=False).path)
        assert again.size == whole.size == image.size
        inside = (edited != image.pixels).any(axis=2)
        if inside.any():
            err = np.abs(again.pixels[inside].astype(int) - edited[inside]).mean()
            err_whole = np.abs(whole.pixels[inside].astype(int) - edited[inside]).mean()
            assert err <= 1.25 * err_whole + 2, f"{err} vs {err_whole}"


def test_stored_view_is_the_exact_inverse_of_the_orientation():
    a = np.arange(5 * 7 * 3).reshape(5, 7, 3)
    for orientation in range(1, 9):
        upright = apply_orientation(a, orientation)
        assert np.array_equal(jpeg_blocks.stored_view(upright, orientation), a)


def test_changed_pixels_and_touched_mcus():
    rng = np.random.default_rng(5)
    before = rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)
    after = before.copy()
    after[3, 40, 2] += 1
    after[30, 2, 0] ^= 255
    changed = jpeg_blocks.changed_pixels(before, after)
    assert np.array_equal(changed, (before != after).any(axis=2))
    grid = jpeg_blocks.touched_mcus(changed, 16, 8)
    assert grid.shape == (5, 3)
    assert set(zip(*np.nonzero(grid), strict=True)) == {(0, 2), (3, 0)}
    assert not jpeg_blocks.changed_pixels(before, before.copy()).any()


# --- File size -----------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["444", "422", "420", "420-optimised", "420-restart-rows",
                                     "420-progressive", "grey"])
def test_a_small_removal_keeps_the_file_size_within_one_percent(tmp_path, variant):
    h, w = 480, 640
    src = tmp_path / "src.jpg"
    source = write_jpeg(src, scene(h, w, seed=8), variant)
    image = load_image(src)
    y, x = np.mgrid[0:h, 0:w]
    mask = (y - 200) ** 2 / 40**2 + (x - 300) ** 2 / 55**2 < 1  # ≈ 2.3 % of the picture
    assert 0.01 < mask.mean() < 0.05
    edited = image.pixels.copy()
    # Filled the way inpainting fills: with texture like the surroundings' (here, a copy
    # of the picture 150 pixels to the left), not with a smooth patch that codes smaller.
    edited[mask] = np.roll(image.pixels, 150, axis=1)[mask]
    saved = save_image(tmp_path / "out.jpg", image, edited)
    assert saved.blocks_kept is True
    size, before = saved.path.stat().st_size, len(source)
    assert abs(size / before - 1) <= 0.01, f"{size} vs {before}"


# --- Metadata ------------------------------------------------------------------------


def test_every_metadata_segment_is_copied_byte_for_byte(tmp_path):
    big_icc = b"\0" * 16 + b"RGB XYZ " + bytes(range(256)) * 300  # split over two APP2
    src = tmp_path / "src.jpg"
    stored = scene()
    Image.fromarray(stored).save(src, "JPEG", quality=90, exif=camera_exif(6),
                                 icc_profile=big_icc, comment=b"first comment", xmp=XMP)
    # Add what Pillow does not write: a Photoshop APP13, a vendor APP15, a second comment.
    data = src.read_bytes()
    extra = b"".join(
        bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body
        for marker, body in [(0xED, b"Photoshop 3.0\0" + bytes(40)), (0xEF, b"vendor\0\1\2"),
                             (0xFE, b"second comment")])
    src.write_bytes(data[:2] + data[2:].replace(b"\xff\xdb", extra + b"\xff\xdb", 1))
    image = load_image(src)
    edited = image.pixels.copy()
    edited[10:30, 20:60] = 0
    out = save_image(tmp_path / "out.jpg", image, edited).path.read_bytes()
    kinds = [s.marker for s in jpeg_segments.read_header(out).segments if s.is_metadata]
    assert kinds.count(0xE2) == 2 and 0xED in kinds and 0xEF in kinds and 0xE1 in kinds
    assert metadata(out) == metadata(src.read_bytes())
    reopened = Image.open(io.BytesIO(out))
    assert reopened.info["icc_profile"] == big_icc
    assert reopened.getexif()[0x0112] == 6


def test_multi_picture_previews_are_left_out(tmp_path):
    src = tmp_path / "src.jpg"
    data = write_jpeg(src, scene())
    preview = io.BytesIO()
    Image.fromarray(scene(40, 60)).save(preview, "JPEG")
    mpf = b"MPF\0" + bytes(20)
    segment = b"\xff\xe2" + (len(mpf) + 2).to_bytes(2, "big") + mpf
    src.write_bytes(data[:2] + segment + data[2:] + preview.getvalue())
    image = load_image(src)
    out = save_image(tmp_path / "out.jpg", image, image.pixels).path.read_bytes()
    assert b"MPF\0" not in out and preview.getvalue() not in out
    assert out.endswith(b"\xff\xd9")
    assert metadata(out) == metadata(data)


def _with_thumbnail(exif: bytes, thumbnail: bytes) -> bytes:
    """EXIF (big-endian, from Pillow) with an IFD1 holding a JPEG thumbnail."""
    tiff = bytearray(exif[6:])
    ifd0 = int.from_bytes(tiff[4:8], "big")
    count = int.from_bytes(tiff[ifd0 : ifd0 + 2], "big")
    ifd1 = len(tiff) + len(tiff) % 2
    tiff += bytes(ifd1 - len(tiff))
    tiff[ifd0 + 2 + 12 * count : ifd0 + 6 + 12 * count] = ifd1.to_bytes(4, "big")
    data = ifd1 + 2 + 2 * 12 + 4
    tiff += (2).to_bytes(2, "big")
    for tag, value in ((0x0201, data), (0x0202, len(thumbnail))):
        tiff += tag.to_bytes(2, "big") + (4).to_bytes(2, "big") + (1).to_bytes(4, "big")
        tiff += value.to_bytes(4, "big")
    tiff += bytes(4) + thumbnail
    return b"Exif\0\0" + bytes(tiff)


@pytest.mark.parametrize("orientation", [1, 6])
def test_the_exif_thumbnail_is_redrawn_in_place(tmp_path, orientation):
    stored = scene(120, 160, seed=2)
    old_thumb = io.BytesIO()
    Image.fromarray(stored).resize((80, 60)).save(old_thumb, "JPEG", quality=95)
    src = tmp_path / "src.jpg"
    exif = _with_thumbnail(camera_exif(orientation), old_thumb.getvalue())
    write_jpeg(src, stored, "420", exif=exif)
    image = load_image(src)
    edited = image.pixels.copy()
    edited[: edited.shape[0] // 2] = (255, 0, 255)  # the top half of the upright photo
    out = save_image(tmp_path / "out.jpg", image, edited).path.read_bytes()

    before = [s for s in jpeg_segments.read_header(src.read_bytes()).segments if s.is_exif][0]
    after = [s for s in jpeg_segments.read_header(out).segments if s.is_exif][0]
    where = jpeg_segments.exif_thumbnail(before)
    assert len(after.raw) == len(before.raw)
    outside = np.ones(len(before.raw), bool)
    outside[where.start : where.start + where.length] = False
    outside[where.length_field : where.length_field + 4] = False
    raw_before, raw_after = np.frombuffer(before.raw, np.uint8), np.frombuffer(after.raw, np.uint8)
    assert np.array_equal(raw_before[outside], raw_after[outside])  # every other EXIF byte
    new = jpeg_segments.exif_thumbnail(after)
    thumb = Image.open(io.BytesIO(after.raw[new.start : new.start + new.length]))
    assert thumb.size == (80, 60)  # stored orientation, like the photo
    upright = np.asarray(apply_orientation(np.asarray(thumb.convert("RGB")), orientation), int)
    top, bottom = upright[: upright.shape[0] // 2 - 3], upright[upright.shape[0] // 2 + 3 :]
    assert np.abs(top - (255, 0, 255)).mean() < 25  # the thumbnail shows the edit
    assert np.abs(bottom - (255, 0, 255)).mean() > 80
    assert old_thumb.getvalue() not in out


# --- Fallbacks -----------------------------------------------------------------------


def _edited(image):
    edited = image.pixels.copy()
    edited[5:25, 5:40] = (10, 200, 30)
    return edited


def _assert_reencoded(saved, image, edited, reason: str, caplog):
    assert saved.blocks_kept is False
    assert saved.note == f"the whole JPEG was re-encoded: {reason}"
    assert f"re-encoding the whole JPEG: {reason}" in caplog.text
    again = load_image(saved.path)
    assert again.size == image.size
    assert np.abs(again.pixels[5:25, 5:40].astype(int) - edited[5:25, 5:40]).mean() < 20


def test_cmyk_jpeg_is_re_encoded_whole(tmp_path, caplog):
    src = tmp_path / "cmyk.jpg"
    Image.fromarray(scene()).convert("CMYK").save(src, "JPEG", quality=90)
    image = load_image(src)
    edited = _edited(image)
    with caplog.at_level(logging.INFO):
        saved = save_image(tmp_path / "out.jpg", image, edited)
    _assert_reencoded(saved, image, edited, "it is a CMYK or YCCK JPEG", caplog)


def test_arithmetic_coded_jpeg_is_re_encoded_whole(tmp_path, caplog):
    src = tmp_path / "arith.jpg"
    jpeglib.from_spatial(scene()).write_spatial(str(src), qt=90, flags=["+ARITH_CODE"])
    assert jpeg_segments.read_header(src.read_bytes()).frame.arithmetic
    image = load_image(src)
    edited = _edited(image)
    with caplog.at_level(logging.INFO):
        saved = save_image(tmp_path / "out.jpg", image, edited)
    _assert_reencoded(saved, image, edited, "it is arithmetic-coded", caplog)


@pytest.mark.parametrize("patch, reason", [
    (lambda d, sof: d[:sof + 1] + b"\xc3" + d[sof + 2:], "it is a lossless JPEG"),
    (lambda d, sof: d[:sof + 4] + b"\x0c" + d[sof + 5:], "it has 12 bits per sample"),
    (lambda d, sof: d[:2] + b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00" + d[2:],
     "it stores RGB rather than YCbCr"),
])
def test_kinds_of_jpeg_the_block_path_does_not_write(tmp_path, caplog, patch, reason):
    # Pillow cannot open lossless or 12-bit files in the first place; should such bytes
    # ever come along, the block path must still say no rather than guess.
    src = tmp_path / "src.jpg"
    data = write_jpeg(src, scene())
    image = load_image(src)
    image.jpeg_data = patch(data, data.index(b"\xff\xc0"))
    edited = _edited(image)
    with caplog.at_level(logging.INFO):
        saved = save_image(tmp_path / "out.jpg", image, edited)
    _assert_reencoded(saved, image, edited, reason, caplog)


def test_a_chosen_quality_or_the_setting_re_encodes_whole(tmp_path, caplog):
    src = tmp_path / "src.jpg"
    source = write_jpeg(src, scene())
    image = load_image(src)
    edited = _edited(image)
    with caplog.at_level(logging.INFO):
        saved = save_image(tmp_path / "q.jpg", image, edited, quality=60)
    _assert_reencoded(saved, image, edited, "quality 60 was asked for", caplog)
    assert abs(load_image(saved.path).jpeg_quality - 60) <= 3
    with caplog.at_level(logging.INFO):
        saved = save_image(tmp_path / "whole.jpg", image, edited, keep_jpeg_blocks=False)
    _assert_reencoded(saved, image, edited, "re-encoding the whole JPEG was asked for", caplog)
    # A whole re-encode changes blocks far away from the edit too (generation loss).
    far = (slice(100, None), slice(120, None))
    assert not np.array_equal(decode_stored(saved.path.read_bytes())[far],
                              decode_stored(source)[far])
    # Other formats are not JPEG saves: no note.
    png = save_image(tmp_path / "out.png", image, edited)
    assert png.blocks_kept is None and png.note == ""


def test_a_failing_block_path_still_saves(tmp_path, caplog, monkeypatch):
    src = tmp_path / "src.jpg"
    write_jpeg(src, scene())
    image = load_image(src)
    edited = _edited(image)

    def broken(*args):
        raise RuntimeError("libjpeg said no")

    monkeypatch.setattr(jpeg_blocks, "_recode", broken)
    with caplog.at_level(logging.INFO):
        saved = save_image(tmp_path / "out.jpg", image, edited)
    _assert_reencoded(saved, image, edited, "keeping its blocks failed (libjpeg said no)",
                      caplog)
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)


def test_edits_that_change_the_picture_s_shape_re_encode_whole(tmp_path, caplog):
    src = tmp_path / "src.jpg"
    write_jpeg(src, scene())
    image = load_image(src)
    with_alpha = np.concatenate([_edited(image), np.full((*image.pixels.shape[:2], 1), 255,
                                                         np.uint8)], axis=2)
    with caplog.at_level(logging.INFO):
        saved = save_image(tmp_path / "out.jpg", image, with_alpha)
    _assert_reencoded(saved, image, with_alpha[..., :3],
                      "the edited picture's size or channels differ from the opened one", caplog)
