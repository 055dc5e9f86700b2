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
    outside = ~dilate(mask, 33)  # the feather band never exceeds 32 px
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


def test_colour_match_reduces_the_seam(tiny_host):
    img, mask = with_object(scene(800, 600, seed=4), (350, 250, 450, 350))
    ring = dilate(mask, 40) & ~dilate(mask, 34)  # just outside the changed band
    inner = dilate(mask, 6) & ~mask  # the feathered band next to the hole
    seams = []
    for match in (False, True):
        settings = RemovalSettings(engine="moebius", steps=2, colour_match=match)
        out = _run(RemovalJob(img, mask, settings), tiny_host)[-1].result.apply_to(img)
        seams.append(abs(out[inner].astype(float).mean() - img[ring].astype(float).mean()))
    # The tiny model's raw fill is ~10 levels off its surroundings; matching removes most of
    # that step (measured here: 9.7 -> 0.7 levels).
    assert seams[0] > 3, seams
    assert seams[1] < seams[0] / 4, seams


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
