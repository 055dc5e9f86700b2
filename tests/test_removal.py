"""Full-resolution removal end to end, with the quick engine and the tiny Moebius model."""

import hashlib

import numpy as np
import pytest

from engine.events import CancelToken, Done, Failed, Progress
from engine.removal.composite import dilate
from engine.removal.job import RemovalJob
from engine.removal.run import EngineHost, run_removal
from engine.removal.settings import RemovalSettings
from tests.photos import RED, red_fraction, scene, with_object

SIZES = [(300, 200), (4000, 3000), (6000, 500), (8000, 6000)]
# How far outside the mask each engine may change pixels (engine.removal.engines): neither
# blends over the photo around the hole any more; a generated fill meets the photo through
# a band inside the mask.
OUTSIDE_BAND = {"quick": 0, "moebius": 0}


@pytest.fixture(scope="module")
def tiny_host(tiny_inpainter):
    return EngineHost(loader=lambda variant, placement: tiny_inpainter)


def _object_box(w, h):
    bw, bh = max(8, w // 12), max(8, h // 10)
    return (w // 2 - bw // 2, h // 2 - bh // 2, w // 2 + bw // 2, h // 2 + bh // 2)


def _run(job, host=None, cancel=None):
    events = list(run_removal(job, cancel, host))
    assert all(isinstance(e, Progress) for e in events[:-1])
    fractions = [e.fraction for e in events[:-1]]
    assert fractions == sorted(fractions)
    return events


def _digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _check_result(img, mask, result, engine):
    out = result.apply_to(img)
    assert out.shape == img.shape and out.dtype == img.dtype
    outside = ~dilate(mask, OUTSIDE_BAND[engine])
    assert _digest(out[outside]) == _digest(img[outside])
    changed = (out != img).any(-1)
    assert changed[mask].mean() > 0.99  # the hole really was filled
    if engine == "quick":
        assert red_fraction(out, mask) < 0.02
    return out


@pytest.mark.parametrize("w,h", SIZES)
def test_quick_engine_removes_at_full_resolution(w, h):
    img, mask = with_object(scene(w, h), _object_box(w, h))
    before = _digest(img)
    events = _run(RemovalJob(img, mask, RemovalSettings(engine="quick")))
    assert isinstance(events[-1], Done), events[-1]
    _check_result(img, mask, events[-1].result, "quick")
    assert _digest(img) == before  # the job never modifies its input


@pytest.mark.parametrize("w,h", SIZES)
def test_tiny_moebius_removes_at_full_resolution(w, h, tiny_host):
    img, mask = with_object(scene(w, h, seed=1), _object_box(w, h))
    events = _run(RemovalJob(img, mask, RemovalSettings(engine="moebius", steps=4)), tiny_host)
    assert isinstance(events[-1], Done), events[-1]
    result = events[-1].result
    assert "Moebius" in result.engine
    _check_result(img, mask, result, "moebius")
    steps = [e for e in events if isinstance(e, Progress) and e.stage == "denoising"]
    # 4 steps x strength 0.99 = 3 network calls, reported in the person's terms: 1..4 of 4.
    assert [(e.step, e.total) for e in steps] == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_thin_strokes_and_border_masks_are_filled(tiny_host):
    img = scene(1600, 1200, seed=2)
    mask = np.zeros(img.shape[:2], bool)
    mask[600, 100:1500] = True  # a one-pixel line
    mask[0:40, 0:60] = True  # touching two borders
    mask[1199, 700:900] = True  # one pixel on the bottom edge
    img[mask] = RED  # the "object" is exactly the brushed pixels
    for engine, host in (("quick", None), ("moebius", tiny_host)):
        events = _run(RemovalJob(img, mask, RemovalSettings(engine=engine, steps=2)), host)
        out = events[-1].result.apply_to(img)
        assert not (out[mask] == RED).all(-1).any(), engine  # no brushed pixel left


@pytest.mark.parametrize("dtype,alpha", [(np.uint8, True), (np.uint16, False), (np.uint16, True)])
def test_alpha_and_16_bit_photos(dtype, alpha):
    img, mask = with_object(scene(640, 480, dtype=dtype, alpha=alpha), (300, 200, 360, 260))
    events = _run(RemovalJob(img, mask, RemovalSettings(engine="quick")))
    out = _check_result(img, mask, events[-1].result, "quick")
    if alpha:
        assert np.array_equal(out[..., 3], img[..., 3])


def test_several_regions_are_all_filled():
    img = scene(3000, 2000, seed=3)
    boxes = [(100, 100, 160, 160), (2700, 1700, 2800, 1790), (1400, 900, 1500, 1000)]
    mask = np.zeros(img.shape[:2], bool)
    for b in boxes:
        img, m = with_object(img, b)
        mask |= m
    events = _run(RemovalJob(img, mask, RemovalSettings(engine="quick")))
    result = events[-1].result
    assert result.regions == 3
    _check_result(img, mask, result, "quick")


def test_colour_match_removes_the_models_drift_deep_inside(tiny_host):
    img, mask = with_object(scene(800, 600, seed=4), (350, 250, 450, 350))
    ring = dilate(mask, 8) & ~dilate(mask, 2)  # the photo around the hole
    deep = ~dilate(~mask, 10)  # beyond the edge band (2 px for this region)
    drift = []
    for match in (False, True):
        settings = RemovalSettings(engine="moebius", steps=2, colour_match=match)
        out = _run(RemovalJob(img, mask, settings), tiny_host)[-1].result.apply_to(img)
        drift.append(abs(out[deep].astype(float).mean() - img[ring].astype(float).mean()))
    # The tiny model's raw fill is ~10 levels off its surroundings; matching removes most of
    # that offset (measured here: 9.7 -> 0.7 levels).
    assert drift[0] > 3, drift
    assert drift[1] < drift[0] / 4, drift


def test_a_generated_fill_meets_the_photo_at_the_mask_edge(tiny_host):
    """Without colour matching the tiny model's fill is ~10 levels off; the edge band inside
    the mask still brings it to the photo's level at the edge, and nothing outside moves."""
    img, mask = with_object(scene(800, 600, seed=4), (350, 250, 450, 350))
    settings = RemovalSettings(engine="moebius", steps=2, colour_match=False)
    out = _run(RemovalJob(img, mask, settings), tiny_host)[-1].result.apply_to(img)
    assert np.array_equal(out[~mask], img[~mask])
    edge_in = mask & dilate(~mask, 1)  # the mask's outermost pixels
    edge_out = dilate(mask, 1) & ~mask  # the photo pixels touching them
    deep = ~dilate(~mask, 10)
    photo_level = img[edge_out].astype(float).mean(0)
    drift = np.abs(out[deep].astype(float).mean(0) - photo_level).max()  # the model's own
    step = np.abs(out[edge_in].astype(float).mean(0) - photo_level).max()
    # Measured: the tiny model is 37 levels off deep inside and 7.9 at the edge (the rest is
    # its own noisy gradient across the edge); without the band it would be 37 there too.
    assert drift > 3 and step < drift / 3, (drift, step)


def test_cancel_mid_job_changes_nothing(tiny_host):
    img, mask = with_object(scene(700, 500), (300, 200, 400, 300))
    before = _digest(img)
    cancel = CancelToken()
    events = []
    job = RemovalJob(img, mask, RemovalSettings(engine="moebius", steps=10))
    for e in run_removal(job, cancel, tiny_host):
        events.append(e)
        if isinstance(e, Progress) and e.stage == "denoising" and e.step == 2:
            cancel.cancel()
    assert isinstance(events[-1], Failed) and events[-1].cancelled
    assert not any(isinstance(e, Done) for e in events)
    assert _digest(img) == before


@pytest.mark.parametrize("mask_shape,needle", [((10, 10), "same size"), (None, "empty")])
def test_bad_masks_fail_with_a_clear_message(mask_shape, needle):
    img = scene(64, 48)
    mask = np.zeros(mask_shape or (48, 64), bool)
    events = list(run_removal(RemovalJob(img, mask, RemovalSettings(engine="quick"))))
    assert isinstance(events[-1], Failed) and needle in events[-1].message


def test_same_seed_same_result_and_the_model_stays_loaded(tiny_host):
    img, mask = with_object(scene(400, 300), (150, 100, 250, 200))
    job = RemovalJob(img, mask, RemovalSettings(engine="moebius", steps=2, seed=5))
    a = _run(job, tiny_host)
    b = _run(job, tiny_host)
    assert not any(isinstance(e, Progress) and e.stage == "loading" for e in b)
    assert np.array_equal(a[-1].result.pixels, b[-1].result.pixels)
