"""HEIC/HEIF (pillow-heif) and AVIF (Pillow) files, made here in the real formats with the
libraries' own encoders: opened upright with their Display P3 profile and EXIF, saved
back to their own format with that metadata, exported to JPEG and PNG, and cleaned in a
batch."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from engine.imageio.files import load_image, save_image
from engine.imageio.heif import register_heif, sniff
from engine.removal.batch import BatchJob, run_batch
from engine.removal.composite import dilate
from engine.removal.settings import RemovalSettings
from tests.icc import P3_DESCRIPTION, display_p3
from tests.photos import red_fraction, scene, with_object

FORMATS = [("HEIF", ".heic"), ("AVIF", ".avif")]
MAKE, MODEL = 0x010F, 0x0110


def _stored() -> np.ndarray:
    """Pixels as the camera stored them, sideways (EXIF orientation 6 turns them upright)."""
    return scene(96, 64, seed=11)


def _upright() -> np.ndarray:
    return np.rot90(_stored(), -1)


def _write(path, fmt: str, pixels: np.ndarray, orientation: int = 6) -> bytes:
    register_heif()
    exif = Image.Exif()
    exif[MAKE], exif[MODEL] = "Apple", "iPhone (test)"
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, quality=95, exif=exif.tobytes(),
                                 icc_profile=display_p3(), **_full_colour(fmt))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _full_colour(fmt: str) -> dict:
    return {"chroma": 444} if fmt == "HEIF" else {"subsampling": "4:4:4"}


def _close(a: np.ndarray, b: np.ndarray, mean: float = 3.0, peak: int = 24) -> bool:
    d = np.abs(a.astype(int) - b.astype(int))
    return a.shape == b.shape and d.mean() < mean and d.max() <= peak


def _profile_name(icc: bytes | None) -> str:
    assert icc
    return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()


@pytest.mark.parametrize("fmt, ext", FORMATS)
def test_opens_upright_with_its_profile_and_exif(tmp_path, fmt, ext):
    path = tmp_path / f"IMG_0001{ext}"
    data = _write(path, fmt, _stored())
    assert sniff(data) == fmt
    loaded = load_image(path)
    assert loaded.format == fmt and loaded.mode == "RGB"
    assert loaded.pixels.shape == (96, 64, 3)  # upright: taller than wide
    assert _close(loaded.pixels, _upright())
    assert _profile_name(loaded.icc_profile) == P3_DESCRIPTION
    exif = Image.Exif()
    exif.load(loaded.exif)
    assert exif[MAKE] == "Apple" and exif.get(0x0112, 1) == 1  # upright now


@pytest.mark.parametrize("fmt, ext", FORMATS)
def test_saves_back_to_its_own_format_with_metadata(tmp_path, fmt, ext):
    path = tmp_path / f"in{ext}"
    _write(path, fmt, _stored())
    loaded = load_image(path)
    edited = np.array(loaded.pixels)
    edited[10:30, 10:40] = (250, 250, 250)
    out = tmp_path / f"out{ext}"
    save_image(out, loaded, edited)
    back = load_image(out)
    assert back.format == fmt and back.orientation == 1
    assert _close(back.pixels, edited)
    assert np.all(back.pixels[12:28, 12:38] > 235)  # the edit is there
    assert _profile_name(back.icc_profile) == P3_DESCRIPTION
    with Image.open(out) as im:
        assert im.getexif()[MAKE] == "Apple" and im.getexif().get(0x0112, 1) == 1


@pytest.mark.parametrize("fmt, ext", FORMATS)
@pytest.mark.parametrize("target", [".jpg", ".png"])
def test_exports_to_jpeg_and_png_with_metadata(tmp_path, fmt, ext, target):
    path = tmp_path / f"in{ext}"
    _write(path, fmt, _stored())
    loaded = load_image(path)
    out = save_image(tmp_path / f"out{target}", loaded, np.array(loaded.pixels)).path
    back = load_image(out)
    if target == ".png":
        assert np.array_equal(back.pixels, loaded.pixels)  # lossless: exactly what was seen
    else:
        assert _close(back.pixels, loaded.pixels, mean=3.0, peak=60)
    assert back.pixels.shape == (96, 64, 3) and back.orientation == 1
    assert _profile_name(back.icc_profile) == P3_DESCRIPTION
    with Image.open(out) as im:
        assert im.getexif()[MODEL] == "iPhone (test)"


def test_the_content_decides_not_the_extension(tmp_path):
    path = tmp_path / "really-a-heic.jpg"
    _write(path, "HEIF", _stored(), orientation=1)
    assert load_image(path).format == "HEIF"
    assert sniff(b"\0\0\0\x1cftypmif1\0\0\0\0mif1avif\0\0\0\0") == "AVIF"
    assert sniff(b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic") == "HEIF"
    assert sniff(b"\0\0\0\x18ftypisom\0\0\0\0isommp41") is None  # an MP4 video


def test_a_damaged_heic_is_refused_with_a_message(tmp_path):
    from engine.errors import ImageFileError

    path = tmp_path / "cut.heic"
    data = _write(path, "HEIF", _stored())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageFileError, match="cut.heic"):
        load_image(path)


def test_batch_cleans_heic_and_avif(tmp_path):
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    src.mkdir()
    masks.mkdir()
    photo, object_mask = with_object(scene(96, 64, seed=3), (20, 30, 44, 50))
    for fmt, ext in FORMATS:
        _write(src / f"photo-{fmt}{ext}", fmt, photo, orientation=1)
        Image.fromarray(object_mask.astype(np.uint8) * 255).save(masks / f"photo-{fmt}.png")
    job = BatchJob(src, out, masks_dir=masks, recursive=False,
                   settings=RemovalSettings(engine="quick"))
    events = list(run_batch(job))
    summary = events[-1].result
    assert summary.ok and summary.count("done") == 2, summary.text()
    for fmt, ext in FORMATS:
        before = load_image(src / f"photo-{fmt}{ext}").pixels
        after = load_image(out / f"photo-{fmt}{ext}")
        assert after.format == fmt and after.pixels.shape == before.shape
        assert red_fraction(before, object_mask) > 0.6  # the red object was there (lossy edges)
        assert red_fraction(after.pixels, object_mask) < 0.1  # and is gone
        outside = ~dilate(object_mask, 16)
        assert _close(after.pixels[outside], before[outside])
