"""Region planning invariants, over many random masks and photo sizes."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import Cancelled
from engine.events import CancelToken
from engine.removal.regions import (
    component_boxes,
    merge_boxes,
    plan_regions,
    split_long,
    window_for,
)


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


# --- merging: invariants against brute force ------------------------------------------------


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _reference_window(box, width, height, min_size, context):
    """window_for as the plain scalar formula (what the vectorised version must equal)."""

    def place(lo, hi, size, limit):
        start = (lo + hi - size) // 2
        if size >= limit:
            return min(max(start, limit - size), 0)
        return min(max(start, 0), limit - size)

    x0, y0, x1, y1 = box
    extent = max(x1 - x0, y1 - y0)
    size = max(round(context * extent), min_size)
    size = max(min(size, max(width, height)), extent)
    return (place(x0, x1, size, width), place(y0, y1, size, height), size)


def _check_merge(boxes, width, height, min_size, context):
    """Assert the invariants of merge_boxes on `boxes` by brute force; return its result."""
    merged = merge_boxes(boxes, width, height, min_size, context)
    windows = [window_for(b, width, height, min_size, context).box for b in merged]
    for i, a in enumerate(windows):  # O(n^2): no two final windows overlap
        for b in windows[i + 1 :]:
            assert not _overlap(a, b), (a, b)
    owner = [[k for k, m in enumerate(merged) if _inside(b, m)] for b in boxes]
    assert all(owner), "every input box (so every mask pixel) lies in a merged box"
    for k, m in enumerate(merged):  # each merged box is exactly a union of input boxes
        parts = [b for b, ks in zip(boxes, owner, strict=True) if k in ks]
        assert parts
        xs0, ys0, xs1, ys1 = zip(*parts, strict=True)
        assert m == (min(xs0), min(ys0), max(xs1), max(ys1))
    return merged


def _dot_mask(rng, width, height, dots, side=3):
    mask = np.zeros((height, width), bool)
    xs = rng.integers(0, width - side + 1, dots)
    ys = rng.integers(0, height - side + 1, dots)
    for x, y in zip(xs, ys, strict=True):
        mask[y : y + side, x : x + side] = True
    return mask


@pytest.mark.parametrize("seed", range(40))
def test_random_dot_masks_merge_to_disjoint_windows(seed):
    rng = np.random.default_rng(seed)
    width, height = int(rng.integers(40, 3000)), int(rng.integers(40, 3000))
    mask = _dot_mask(rng, width, height, int(rng.integers(1, 400)))
    min_size = int(rng.choice([8, 32, 128, 512]))
    context = float(rng.choice([1.0, 1.5, 2.0, 3.0]))
    boxes = component_boxes(mask)
    merged = _check_merge(boxes, width, height, min_size, context)
    assert merge_boxes(merged, width, height, min_size, context) == merged  # a fixed point
    covered = np.zeros_like(mask)
    for r in plan_regions(mask, min_size, context):
        covered[r.bbox[1] : r.bbox[3], r.bbox[0] : r.bbox[2]] = True
    assert covered[mask].all()


@st.composite
def boxes_on_a_photo(draw):
    width, height = draw(st.integers(1, 2000)), draw(st.integers(1, 2000))
    boxes = []
    for _ in range(draw(st.integers(0, 60))):
        x0, y0 = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
        x1 = draw(st.integers(x0 + 1, min(width, x0 + 300)))
        y1 = draw(st.integers(y0 + 1, min(height, y0 + 300)))
        boxes.append((x0, y0, x1, y1))
    return boxes, width, height, draw(st.sampled_from([1, 16, 100, 512]))


@settings(max_examples=200, deadline=None)
@given(boxes_on_a_photo(), st.sampled_from([1.0, 1.3, 2.0, 4.0]))
def test_merge_invariants_and_fixed_point(case, context):
    boxes, width, height, min_size = case
    merged = _check_merge(boxes, width, height, min_size, context)
    assert merge_boxes(merged, width, height, min_size, context) == merged


@settings(max_examples=100, deadline=None)
@given(boxes_on_a_photo(), st.sampled_from([1.0, 1.25, 1.5, 2.0, 2.5, 7.9]))
def test_window_for_matches_the_scalar_formula(case, context):
    boxes, width, height, min_size = case
    for box in boxes:
        win = window_for(box, width, height, min_size, context)
        assert (win.x, win.y, win.size) == _reference_window(box, width, height, min_size,
                                                             context)


def test_a_chain_of_overlapping_windows_merges_into_one():
    # Each window overlaps only its neighbours: one group, found without a restart per pair.
    boxes = [(i * 100, i * 100, i * 100 + 3, i * 100 + 3) for i in range(25)]
    assert merge_boxes(boxes, 3000, 3000, 160, 2.0) == [(0, 0, 2403, 2403)]


def test_a_long_chain_listed_in_random_order_merges_into_one():
    # Neighbours along the chain are far apart in the list: grouping must not depend on it.
    boxes = [(i * 100, 40, i * 100 + 3, 43) for i in range(5000)]
    order = np.random.default_rng(0).permutation(len(boxes))
    merged = merge_boxes([boxes[k] for k in order], 500_000, 100, 160, 2.0)
    assert merged == [(0, 40, 499_903, 43)]


def test_thousands_of_isolated_dots_on_a_12mp_photo():
    mask = _dot_mask(np.random.default_rng(0), 4000, 3000, 3000)
    regions = plan_regions(mask)
    covered = np.zeros_like(mask)
    for r in regions:
        covered[r.bbox[1] : r.bbox[3], r.bbox[0] : r.bbox[2]] = True
    assert covered[mask].all()


def test_planning_stops_on_a_cancelled_token():
    mask = _dot_mask(np.random.default_rng(1), 800, 600, 50)
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        plan_regions(mask, cancel=cancel)
    with pytest.raises(Cancelled):
        merge_boxes(component_boxes(mask), 800, 600, 64, 2.0, cancel)
    assert plan_regions(mask, cancel=CancelToken())  # an uncancelled token changes nothing
