"""The fills' invariants over many random masks, and the Quick fill's quality against the
truth (never timed: bench/bench_quality.py measures speed)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.quality_metrics import halo, inside_error
from bench.quality_scenes import BACKGROUNDS, masks_for, objects, paste
from engine.events import Done
from engine.removal import quick_fill
from engine.removal.job import RemovalJob
from engine.removal.run import EngineHost, run_removal
from engine.removal.settings import RemovalSettings
from tests.photos import RED, scene


@pytest.fixture(scope="module")
def tiny_host(tiny_inpainter):
    return EngineHost(loader=lambda variant, placement: tiny_inpainter)


@st.composite
def masked_photos(draw, max_side=160):
    """A photo (8/16-bit, RGB/RGBA) with red objects of random shapes and their mask:
    blobs, one-pixel lines, dots, and parts touching the photo's edges."""
    w, h = draw(st.integers(24, max_side)), draw(st.integers(24, max_side))
    dtype = draw(st.sampled_from([np.uint8, np.uint16]))
    img = scene(w, h, seed=draw(st.integers(0, 99)), dtype=dtype,
                alpha=draw(st.booleans()))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    mask = np.zeros((h, w), bool)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["box", "hline", "vline", "dot"]))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if kind == "box":
            bh, bw = int(rng.integers(1, h // 2 + 2)), int(rng.integers(1, w // 2 + 2))
            mask[y : y + bh, x : x + bw] = True
        elif kind == "hline":
            mask[y, x:] = True
        elif kind == "vline":
            mask[:y, x] = True
        else:
            mask[y, x] = True
    if not mask.any():  # a line drawn from the edge to itself (x or y at 0) is empty
        mask[h // 2, w // 2] = True
    if mask.all():
        mask[0, 0] = False
    scale = 257 if dtype == np.uint16 else 1
    img[mask, :3] = RED.astype(dtype) * scale
    return img, mask


def _result(img, mask, settings, host=None):
    events = list(run_removal(RemovalJob(img, mask, settings), None, host))
    assert isinstance(events[-1], Done), events[-1]
    return events[-1].result.apply_to(img)


@settings(max_examples=60, deadline=None)
@given(masked_photos())
def test_quick_changes_the_mask_and_nothing_else(photo):
    img, mask = photo
    out = _result(img, mask, RemovalSettings(engine="quick"))
    assert np.array_equal(out[~mask], img[~mask])  # outside band: 0 px
    red = RED.astype(img.dtype) * (257 if img.dtype == np.uint16 else 1)
    assert not (out[mask][:, :3] == red).all(-1).any()  # no brushed pixel left as it was
    if img.shape[2] == 4:
        assert np.array_equal(out[..., 3], img[..., 3])


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(masked_photos(max_side=96))
def test_moebius_changes_the_mask_and_nothing_else(tiny_host, photo):
    img, mask = photo
    out = _result(img, mask, RemovalSettings(engine="moebius", steps=2), tiny_host)
    assert np.array_equal(out[~mask], img[~mask])  # outside band: 0 px (the band is inside)
    assert (out[mask] != img[mask]).any(-1).mean() > 0.9


@settings(max_examples=40, deadline=None)
@given(st.integers(16, 120), st.integers(16, 120), st.integers(0, 2**31 - 1))
def test_quick_fill_replaces_exactly_the_hole(w, h, seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    hole = rng.random((h, w)) < rng.uniform(0.01, 0.6)
    out = quick_fill.fill(image, hole)
    assert np.array_equal(out[~hole], image[~hole])
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert np.array_equal(quick_fill.fill(image, hole), out)  # deterministic
    target = hole & (rng.random((h, w)) < 0.5)  # a region's own pixels among the hole's
    part = quick_fill.fill(image, hole, target)
    assert np.array_equal(part[~target], image[~target])


def _scenes(width=320, height=240):
    """Each generated background of the benchmark, small, with objects snugly masked."""
    for i, (name, make) in enumerate(BACKGROUNDS.items()):
        rng = np.random.default_rng(i)
        truth = make(height, width, rng)
        image, covers = paste(truth, objects(height, width, rng), rng)
        yield name, truth, image, masks_for(covers)["snug"]


def test_quick_is_closer_to_the_truth_than_opencv_at_full_resolution():
    """On scenes whose background is known, the Quick engine's error inside the mask is well
    below OpenCV's Telea and Navier-Stokes on the whole photo at full resolution on
    average, never much above Telea's on any one scene, and the ring around the hole is
    untouched (no halo)."""
    import cv2

    ours, telea, ns = {}, {}, {}
    for name, truth, image, mask in _scenes():
        out = _result(image, mask, RemovalSettings(engine="quick"))
        ours[name] = inside_error(out, truth, mask)[0]
        telea[name] = inside_error(cv2.inpaint(image, mask.view(np.uint8), 3, cv2.INPAINT_TELEA),
                                   truth, mask)[0]
        ns[name] = inside_error(cv2.inpaint(image, mask.view(np.uint8), 3, cv2.INPAINT_NS),
                                truth, mask)[0]
        assert halo(out, image, mask) == 0.0, name
        # Measured: 0.98-1.02x Telea on smooth scenes, a third of it on bricks.
        assert ours[name] <= 1.1 * telea[name], (name, ours, telea, ns)
    # Measured: 4.6 levels against Telea's 7.6 and Navier-Stokes' 6.8.
    mean = np.mean(list(ours.values()))
    assert mean <= 0.8 * min(np.mean(list(telea.values())), np.mean(list(ns.values()))), (
        ours, telea, ns)
