"""Region planning invariants, over many random masks and photo sizes."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.removal.regions import plan_regions, split_long, window_for


@st.composite
def photo_and_mask(draw):
    w = draw(st.integers(8, 3000))
    h = draw(st.integers(8, 3000))
    mask = np.zeros((h, w), bool)
    for _ in range(draw(st.integers(1, 6))):
        x0 = draw(st.integers(0, w - 1))
        y0 = draw(st.integers(0, h - 1))
        x1 = draw(st.integers(x0 + 1, min(w, x0 + draw(st.integers(1, w)))))
        y1 = draw(st.integers(y0 + 1, min(h, y0 + draw(st.integers(1, h)))))
        mask[y0:y1, x0:x1] = True
    return mask


def _inside(inner, outer):
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] \
        and inner[3] <= outer[3]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(photo_and_mask())
def test_every_mask_pixel_is_covered_and_windows_hold_their_region(mask):
    h, w = mask.shape
    regions = plan_regions(mask)
    assert regions
    covered = np.zeros_like(mask)
    for r in regions:
        x0, y0, x1, y1 = r.bbox
        covered[y0:y1, x0:x1] = True
        assert _inside(r.bbox, r.window.box)
        extent = max(x1 - x0, y1 - y0)
        assert r.window.size >= extent
        # Never smaller than 512 where the photo allows, never larger than the photo's side.
        assert r.window.size <= max(w, h)
        if r.window.size <= w:
            assert 0 <= r.window.x and r.window.x + r.window.size <= w
        if r.window.size <= h:
            assert 0 <= r.window.y and r.window.y + r.window.size <= h
    assert covered[mask].all()


@settings(max_examples=100, deadline=None)
@given(photo_and_mask())
def test_windows_of_distinct_regions_do_not_overlap(mask):
    regions = plan_regions(mask)
    for i, a in enumerate(regions):
        for b in regions[i + 1 :]:
            if a.group == b.group:
                continue  # pieces of one long region overlap on purpose
            wa, wb = a.window.box, b.window.box
            assert not (wa[0] < wb[2] and wb[0] < wa[2] and wa[1] < wb[3] and wb[1] < wa[3])


def test_min_window_is_512_when_the_photo_allows():
    mask = np.zeros((3000, 4000), bool)
    mask[1000:1010, 1000:1010] = True
    (r,) = plan_regions(mask)
    assert r.window.size == 512
    assert _inside(r.bbox, r.window.box)


def test_window_is_about_twice_the_region():
    mask = np.zeros((3000, 4000), bool)
    mask[1000:1600, 1000:1400] = True
    (r,) = plan_regions(mask)
    assert r.window.size == 1200


def test_window_shifts_inward_at_the_border():
    mask = np.zeros((3000, 4000), bool)
    mask[0:20, 3980:4000] = True  # corner
    (r,) = plan_regions(mask)
    assert r.window.box == (4000 - 512, 0, 4000, 512)


def test_small_photo_uses_a_window_of_its_long_side_padded():
    mask = np.zeros((200, 300), bool)
    mask[50:100, 100:150] = True
    (r,) = plan_regions(mask)
    assert r.window.size == 300
    assert r.window.x == 0 and r.window.y == -75  # centred on the region, covering all rows


def test_close_regions_merge_far_regions_do_not():
    mask = np.zeros((3000, 4000), bool)
    mask[100:120, 100:120] = True
    mask[100:120, 300:320] = True  # windows overlap -> merged
    mask[2800:2820, 3800:3820] = True  # far away
    regions = plan_regions(mask)
    assert len(regions) == 2
    assert regions[0].bbox == (100, 100, 320, 120)


def test_long_region_on_a_panorama_is_cut_into_square_pieces():
    mask = np.zeros((500, 6000), bool)
    mask[240:260, 100:5900] = True  # a cable across the panorama
    regions = plan_regions(mask)
    assert len(regions) > 10
    for r in regions:
        assert r.window.size == 500  # the largest square the photo holds: no squashing
        assert r.bbox[2] - r.bbox[0] <= 250
    assert split_long((0, 0, 100, 10), 6000, 500) == [(0, 0, 100, 10)]


def test_window_for_caps_at_photo_side():
    win = window_for((0, 0, 100, 100), 120, 80, 512, 2.0)
    assert win.size == 120
