"""Compositing invariants: only the mask may change; a generated fill meets the photo
through a band inside it."""

import hashlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.removal import composite
from engine.removal.regions import Window


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 60), st.integers(1, 60), st.integers(0, 2**31 - 1),
       st.sampled_from([np.uint8, np.uint16]), st.sampled_from([3, 4]))
def test_pixels_outside_the_mask_are_bit_identical(w, h, seed, dtype, ch):
    """Both engines composite with alpha = the region's mask: nothing outside it moves."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    pixels = rng.integers(0, top + 1, (h, w, ch), dtype=dtype)
    mask = rng.random((h, w)) < 0.05
    before = pixels.copy()
    generated = rng.random((h, w, 3)).astype(np.float32) * 255
    composite.blend_into(pixels, generated, mask.astype(np.float32), (0, 0, w, h))
    assert np.array_equal(pixels[~mask], before[~mask])
    if ch == 4:
        assert np.array_equal(pixels[..., 3], before[..., 3])  # alpha never changes
    scale = 257 if dtype == np.uint16 else 1
    expected = np.rint(np.clip(generated[mask] * scale, 0, top)).astype(dtype)
    assert np.array_equal(pixels[mask][:, :3], expected)  # the fill, exactly, inside


@settings(max_examples=60, deadline=None)
@given(st.integers(8, 80), st.integers(8, 80), st.integers(0, 2**31 - 1), st.integers(2, 32),
       st.floats(-60, 60))
def test_edge_correction_stays_inside_its_band(w, h, seed, band, offset):
    """The correction is zero outside the hole and deeper than `band`; where the fill is off
    by a constant, it removes exactly that offset at the hole's edge."""
    import cv2

    rng = np.random.default_rng(seed)
    hole = np.zeros((h, w), bool)
    for _ in range(3):
        x, y = rng.integers(0, w), rng.integers(0, h)
        hole[y : y + rng.integers(1, h), x : x + rng.integers(1, w)] = True
    original = rng.random((h, w, 3)).astype(np.float32) * 255
    generated = original - np.float32(offset)
    corr = composite.edge_correction(generated, original, hole, band)
    assert (corr[~hole] == 0).all()
    depth = cv2.distanceTransform(hole.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    assert (corr[depth > band + 1] == 0).all()
    edge = hole & composite.dilate(~hole, 1) & (depth == 1)
    if edge.any() and (~hole).any():
        assert np.allclose(corr[edge], offset, atol=1e-3)


@settings(max_examples=80, deadline=None)
@given(st.integers(16, 300), st.integers(0, 2**31 - 1))
def test_model_mask_keeps_every_hole_pixel_and_whole_latent_cells(src, seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((src, src), bool)
    ys, xs = rng.integers(0, src, 3), rng.integers(0, src, 3)
    mask[ys, xs] = True  # single-pixel holes: the thinnest possible strokes
    hole = composite.model_mask(mask, 64, 2)  # removal always grows by >= 2 model pixels
    # The latent mask samples the top-left pixel of each 8x8 cell: cells must be uniform.
    cells = hole.reshape(8, 8, 8, 8)
    assert (cells.all(axis=(1, 3)) == cells.any(axis=(1, 3))).all()
    # Mapped back to the photo, the hole still covers every brushed pixel.
    assert composite.resize_mask(hole, src)[mask].all()


def _distance_to(mask):
    import cv2

    if not mask.any():
        return np.full(mask.shape, np.inf)
    return cv2.distanceTransform((~mask).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def test_crop_window_reflects_outside_and_copies_inside():
    img = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    inner = composite.crop_window(img, Window(1, 1, 3))
    assert np.array_equal(inner, img[1:4, 1:4])
    big = composite.crop_window(img, Window(-2, -3, 11))
    assert big.shape == (11, 11, 3)
    assert np.array_equal(big[3:8, 2:9], img)
    mask = composite.crop_window(np.ones((5, 7), bool), Window(-2, -3, 11))
    assert mask.sum() == 35  # padding is never hole


def test_colour_offset_recovers_a_uniform_shift():
    rng = np.random.default_rng(0)
    original = rng.integers(50, 200, (40, 40, 3)).astype(np.float32)
    generated = original - np.array([5, -3, 10], np.float32)
    ring = np.zeros((40, 40), bool)
    ring[:5] = True
    assert np.allclose(composite.colour_offset(generated, original, ring), [5, -3, 10])


def test_hash_check_helper_detects_change():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 1
    assert hashlib.sha256(a.tobytes()).digest() != hashlib.sha256(b.tobytes()).digest()
