"""Compositing invariants: only the mask plus its feather band may change."""

import hashlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.removal import composite
from engine.removal.regions import Window


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 60), st.integers(1, 60), st.integers(0, 2**31 - 1), st.integers(1, 20),
       st.sampled_from([np.uint8, np.uint16]), st.sampled_from([3, 4]))
def test_pixels_outside_mask_and_feather_are_bit_identical(w, h, seed, feather, dtype, ch):
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    pixels = rng.integers(0, top + 1, (h, w, ch), dtype=dtype)
    mask = rng.random((h, w)) < 0.05
    before = pixels.copy()
    alpha = composite.feather_alpha(mask, feather)
    generated = rng.random((h, w, 3)).astype(np.float32) * 255
    composite.blend_into(pixels, generated, alpha, (0, 0, w, h))
    outside = _distance_to(mask) > feather
    assert np.array_equal(pixels[outside], before[outside])
    if ch == 4:
        assert np.array_equal(pixels[..., 3], before[..., 3])  # alpha never changes
    if mask.any():
        assert (alpha[mask] == 1).all()


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
