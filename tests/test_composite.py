"""Compositing invariants: only the mask plus its feather band may change."""

import hashlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import composite
from engine.regions import Window


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


@settings(max_examples=60, deadline=None)
@given(st.integers(16, 300), st.integers(0, 2**31 - 1))
def test_model_mask_marks_every_latent_cell_that_holds_a_hole_pixel(src, seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((src, src), bool)
    ys, xs = rng.integers(0, src, 3), rng.integers(0, src, 3)
    mask[ys, xs] = True  # single-pixel holes: the thinnest possible strokes
    hole = composite.model_mask(mask, 64, 0)
    # Each hole pixel maps somewhere in the 64x64 model image; its 8x8 cell must be hole,
    # and the cell's top-left pixel (what the latent mask samples) must be too.
    for y, x in zip(ys, xs, strict=True):
        my, mx = int((y + 0.5) * 64 / src), int((x + 0.5) * 64 / src)
        assert hole[my, mx]
        assert hole[my // 8 * 8, mx // 8 * 8]


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


def test_to_rgb8_rounds_16_bit_and_drops_alpha():
    px = np.array([[[0, 257, 65535, 1000]]], np.uint16)
    assert composite.to_rgb8(px).tolist() == [[[0, 1, 255]]]


def test_hash_check_helper_detects_change():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 1
    assert hashlib.sha256(a.tobytes()).digest() != hashlib.sha256(b.tobytes()).digest()
