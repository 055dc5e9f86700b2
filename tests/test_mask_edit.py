"""The pure mask model (engine.document.mask) and the document's composite edits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.document.document import CompositeEdit, Document, ImagePatch
from engine.document.mask import MaskModel, MaskPatch, decode_bits_into, encode_bits
from engine.errors import MaskError

W, H = 64, 48


# -- brute-force references: every pixel centre tested on its own -----------------------


def centres(w=W, h=H):
    ys, xs = np.mgrid[0:h, 0:w]
    return xs + 0.5, ys + 0.5


def capsule_distance2(points, w=W, h=H):
    """Squared distance from each pixel centre to the polyline through `points`."""
    xs, ys = centres(w, h)
    pts = np.asarray(points, float)
    best = np.full((h, w), np.inf)
    for a, b in zip(pts, pts[1:] if len(pts) > 1 else pts, strict=False):
        d = b - a
        length2 = d @ d
        along = (xs - a[0]) * d[0] + (ys - a[1]) * d[1]
        t = 0.0 if length2 == 0 else np.clip(along / length2, 0, 1)
        best = np.minimum(best, (xs - a[0] - t * d[0]) ** 2 + (ys - a[1] - t * d[1]) ** 2)
    return best


def assert_capsule(got, points, r, w=W, h=H):
    """`got` covers every centre within r of the polyline and none beyond it (pixels
    within 1e-6 of the edge may go either way: float rounding)."""
    d2 = capsule_distance2(points, w, h)
    must = d2 <= (r - 1e-6) ** 2 if r > 1e-6 else d2 <= 0
    may = d2 <= (r + 1e-6) ** 2
    assert not (must & ~got).any(), "a pixel inside the brush is not painted"
    assert not (got & ~may).any(), "a pixel outside the brush is painted"


def polygon_reference(points, w=W, h=H):
    """Even-odd point in polygon, one ray per pixel centre."""
    xs, ys = centres(w, h)
    inside = np.zeros((h, w), bool)
    pts = np.asarray(points, float)
    for (px, py), (qx, qy) in zip(pts, np.roll(pts, -1, axis=0), strict=True):
        crosses = (py <= ys) != (qy <= ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = px + (ys - py) * (qx - px) / (qy - py)
        inside ^= crosses & (x_at <= xs)
    return inside


def disc_dilate(mask, p):
    out = np.zeros_like(mask)
    yy, xx = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    for y, x in zip(*np.nonzero(mask), strict=True):
        out |= (yy - y) ** 2 + (xx - x) ** 2 <= p * p
    return out


def check_patch(model: MaskModel, patch: MaskPatch, before: np.ndarray):
    """The patch is exactly the change from `before` to now, and undo/redo round-trip."""
    after = model.array.copy()
    x0, y0, x1, y1 = patch.bbox
    diff = before != after
    assert diff[y0:y1, x0:x1].sum() == diff.sum(), "a change lies outside the patch box"
    rows, cols = np.nonzero(diff)
    assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    assert np.array_equal(patch.old, before[y0:y1, x0:x1])
    assert np.array_equal(patch.new, after[y0:y1, x0:x1])
    model.revert(patch)
    assert np.array_equal(model.array, before)
    model.apply(patch)
    assert np.array_equal(model.array, after)


# -- strokes --------------------------------------------------------------------------


@pytest.mark.parametrize("r", [0.5, 1.0, 3.0, 7.5])
def test_a_click_paints_a_disc(r):
    m = MaskModel(W, H)
    patch = m.stroke([(20.5, 15.5)], r)
    xs, ys = centres()
    assert np.array_equal(m.array, (xs - 20.5) ** 2 + (ys - 15.5) ** 2 <= r * r)
    assert patch is not None


def test_a_radius_half_click_on_a_pixel_paints_just_that_pixel():
    m = MaskModel(W, H)
    m.stroke([(10.5, 5.5)], 0.5)
    assert m.count() == 1 and m.array[5, 10]


def test_polyline_is_discs_joined_by_capsules():
    m = MaskModel(W, H)
    pts = [(5, 5), (40.3, 12.7), (20, 40), (60, 44)]
    m.stroke(pts, 4.0)
    assert_capsule(m.array, pts, 4.0)


def test_a_fast_stroke_leaves_no_gap_between_far_apart_points():
    m = MaskModel(W, H)
    m.stroke([(2, 3), (61, 45)], 1.5)
    # Any pixel the line passes through has its centre within 0.71 px of it: painted.
    for t in np.linspace(0, 1, 1000):
        assert m.array[int(3 + t * 42), int(2 + t * 59)]
    assert_capsule(m.array, [(2, 3), (61, 45)], 1.5)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-10, 74), st.floats(-10, 58)), min_size=1, max_size=6),
    st.floats(0.3, 12),
)
def test_random_strokes_match_the_distance_definition(points, r):
    m = MaskModel(W, H)
    m.stroke(points, r)
    assert_capsule(m.array, points, r)


def test_erase_stroke_clears_the_capsule_only():
    m = MaskModel(W, H)
    m.fill_rect(0, 0, W, H)
    patch = m.stroke([(10, 10), (50, 30)], 3, erase=True)
    d2 = capsule_distance2([(10, 10), (50, 30)])
    assert np.array_equal(~m.array, d2 <= 9 + 1e-9)
    assert patch is not None


def test_live_stroke_equals_one_shot_stroke_and_is_one_patch():
    pts = [(3.2, 4.1), (30, 9), (31, 40), (55.5, 20)]
    one_shot = MaskModel(W, H)
    one_shot.fill_rect(20, 20, 40, 30)
    live = MaskModel(W, H)
    live.fill_rect(20, 20, 40, 30)
    before = live.array.copy()
    one_shot.stroke(pts, 2.5)
    boxes = [live.begin_stroke(pts[0], 2.5)] + [live.stroke_segment(p) for p in pts[1:]]
    assert all(b is not None for b in boxes)
    assert live.stroke_active
    patch = live.end_stroke()
    assert not live.stroke_active
    assert np.array_equal(live.array, one_shot.array)
    check_patch(live, patch, before)


def test_live_stroke_across_many_tiles_on_a_big_mask():
    m = MaskModel(1500, 1000)
    m.fill_rect(300, 300, 900, 700)
    before = m.array.copy()
    m.begin_stroke((10, 10), 12)
    for x in range(10, 1500, 97):
        m.stroke_segment((x, 10 + x * 0.6))
    patch = m.end_stroke()
    check_patch(m, patch, before)
    assert patch.nbytes < patch.old.size // 20  # encoded, not raw bools


def test_cancelled_live_stroke_restores_the_mask():
    m = MaskModel(W, H)
    m.stroke([(5, 5)], 4)
    before = m.array.copy()
    m.begin_stroke((10, 10), 5)
    m.stroke_segment((50, 40))
    box = m.cancel_stroke()
    assert box is not None and np.array_equal(m.array, before)
    assert m.cancel_stroke() is None


def test_other_edits_wait_for_a_live_stroke():
    m = MaskModel(W, H)
    m.begin_stroke((10, 10), 3)
    for edit in (m.invert, m.clear, lambda: m.fill_rect(0, 0, 5, 5), lambda: m.grow(2)):
        with pytest.raises(RuntimeError):
            edit()
    with pytest.raises(RuntimeError):
        m.begin_stroke((1, 1), 2)
    m.end_stroke()
    with pytest.raises(RuntimeError):
        m.stroke_segment((3, 3))


def test_no_change_gives_no_patch():
    m = MaskModel(W, H)
    assert m.stroke([(10, 10), (20, 20)], 3, erase=True) is None
    assert m.clear() is None
    assert m.grow(4) is None and m.shrink(4) is None
    assert m.fill_rect(100, 100, 120, 120) is None  # off the image
    assert m.fill_polygon([(1, 1), (2, 2)]) is None  # not a polygon
    assert m.stroke([], 3) is None
    m.stroke([(10, 10), (20, 20)], 3)
    assert m.stroke([(12, 12), (18, 18)], 2) is None  # already painted
    assert m.grow(0) is None
    assert m.set_array(m.array.copy()) is None


def test_patch_covers_only_the_changed_rows_and_columns():
    m = MaskModel(6000, 4000)
    m.fill_rect(1000, 1000, 1040, 1040)
    before = m.array.copy()
    # Half of this stroke is over pixels that are already masked.
    patch = m.stroke([(1020, 1020), (1060, 1020)], 5)
    assert patch.bbox == (1040, 1015, 1065, 1025)
    assert patch.old.shape == patch.new.shape == (10, 25)
    assert patch.nbytes < 2 * 10 * 25  # at most the box, never the 24 MB mask
    check_patch(m, patch, before)


# -- rectangle, lasso, whole-mask operations ----------------------------------------------


def test_fill_rect_covers_pixel_centres_inside():
    m = MaskModel(W, H)
    patch = m.fill_rect(10, 5, 20, 8)
    expected = np.zeros((H, W), bool)
    expected[5:8, 10:20] = True
    assert np.array_equal(m.array, expected) and patch.bbox == (10, 5, 20, 8)
    m.fill_rect(30.9, 30.6, 30.2, 30.4)  # corners in any order; centres 30.5 inside
    assert m.array[30, 30] and m.count() == 31
    m.fill_rect(-5, -5, 3, 2)  # clipped to the image
    assert m.array[:2, :3].all() and m.count() == 37
    m.fill_rect(0, 0, W, H, erase=True)
    assert not m.any()


@pytest.mark.parametrize(
    "points",
    [
        [(5, 5), (50, 9.3), (30, 44)],  # triangle
        [(4, 4), (60, 4), (60, 44), (32, 20.5), (4, 44)],  # concave
        [(5, 5), (55, 40), (55, 5), (5, 40)],  # bow tie (self-crossing)
        [(-10, -10), (80, 20), (10, 70)],  # reaches outside the image
    ],
)
def test_lasso_fills_the_polygon_even_odd(points):
    m = MaskModel(W, H)
    before = m.array.copy()
    patch = m.fill_polygon(points)
    assert np.array_equal(m.array, polygon_reference(points))
    check_patch(m, patch, before)


def test_lasso_erase():
    m = MaskModel(W, H)
    m.fill_rect(0, 0, W, H)
    m.fill_polygon([(5, 5), (50, 9.3), (30, 44)], erase=True)
    assert np.array_equal(~m.array, polygon_reference([(5, 5), (50, 9.3), (30, 44)]))


def test_invert_spans_the_image_and_twice_is_identity():
    m = MaskModel(W, H)
    m.stroke([(10, 10), (40, 30)], 6)
    before = m.array.copy()
    patch = m.invert()
    assert patch.bbox == (0, 0, W, H)
    assert np.array_equal(m.array, ~before)
    check_patch(m, patch, before)
    m.invert()
    assert np.array_equal(m.array, before)


def test_clear_all_and_clear_in_a_box():
    m = MaskModel(W, H)
    m.fill_rect(10, 10, 30, 30)
    m.fill_rect(40, 5, 50, 15)
    before = m.array.copy()
    patch = m.clear((0, 0, 32, 48))
    assert patch.bbox == (10, 10, 30, 30)
    assert m.count() == 100 and m.array[5:15, 40:50].all()
    check_patch(m, patch, before)
    assert m.clear().bbox == (40, 5, 50, 15) and not m.any()


@pytest.mark.parametrize("p", [1, 3, 6])
def test_grow_is_a_disc_dilation(p):
    rng = np.random.default_rng(p)
    m = MaskModel(W, H)
    seed = rng.random((H, W)) < 0.01
    m.set_array(seed)
    patch = m.grow(p)
    assert np.array_equal(m.array, disc_dilate(seed, p))
    check_patch(m, patch, seed)


@pytest.mark.parametrize("p", [1, 3, 6])
def test_shrink_is_a_disc_erosion_that_keeps_the_border(p):
    rng = np.random.default_rng(10 + p)
    m = MaskModel(W, H)
    full = ~(rng.random((H, W)) < 0.01)
    m.set_array(full)
    m.shrink(p)
    # The complement grows: a pixel survives when no unmasked pixel is within p.
    assert np.array_equal(m.array, ~disc_dilate(~full, p))


def test_grow_then_shrink_of_a_rectangle():
    m = MaskModel(W, H)
    m.fill_rect(20, 20, 30, 30)
    m.grow(4)
    assert m.bbox() == (16, 16, 34, 34)
    m.shrink(4)
    assert m.bbox() == (20, 20, 30, 30)


def test_reading_and_set_array():
    m = MaskModel(W, H)
    assert not m.any() and m.bbox() is None and m.count() == 0
    with pytest.raises(ValueError):
        m.array[0, 0] = True  # read-only: edits go through patches
    arr = np.zeros((H, W), np.uint8)
    arr[3:5, 7:9] = 255
    patch = m.set_array(arr)
    assert m.any() and m.bbox() == (7, 3, 9, 5) and m.count() == 4 and patch.bbox == (7, 3, 9, 5)
    with pytest.raises(MaskError):
        m.set_array(np.zeros((H + 1, W)))
    with pytest.raises(MaskError):
        MaskModel(0, 5)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 70), st.integers(1, 600), st.integers(0, 2**32 - 1))
def test_encoded_blocks_round_trip(w, h, seed):
    block = np.random.default_rng(seed).random((h, w)) < 0.3
    out = np.empty_like(block)
    decode_bits_into(encode_bits(block), out)
    assert np.array_equal(out, block)


_op = st.one_of(
    st.tuples(st.just("stroke"), st.lists(st.tuples(st.floats(-5, 69), st.floats(-5, 53)),
                                          min_size=1, max_size=4),
              st.floats(0.5, 8), st.booleans()),
    st.tuples(st.just("rect"), st.floats(-5, 69), st.floats(-5, 53), st.floats(-5, 69),
              st.floats(-5, 53), st.booleans()),
    st.tuples(st.just("lasso"), st.lists(st.tuples(st.floats(-5, 69), st.floats(-5, 53)),
                                         min_size=3, max_size=7), st.booleans()),
    st.tuples(st.just("invert")),
    st.tuples(st.just("clear")),
    st.tuples(st.just("grow"), st.integers(1, 4)),
    st.tuples(st.just("shrink"), st.integers(1, 4)),
)


def _run(m: MaskModel, op):
    kind, *args = op
    if kind == "stroke":
        return m.stroke(args[0], args[1], erase=args[2])
    if kind == "rect":
        return m.fill_rect(*args[:4], erase=args[4])
    if kind == "lasso":
        return m.fill_polygon(args[0], erase=args[1])
    return getattr(m, kind)(*args)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op, min_size=1, max_size=8))
def test_undo_then_redo_of_any_edit_sequence_is_exact(ops):
    m = MaskModel(W, H)
    states = [m.array.copy()]
    patches = []
    for op in ops:
        patch = _run(m, op)
        if patch is None:
            assert np.array_equal(m.array, states[-1])
            continue
        patches.append(patch)
        states.append(m.array.copy())
    for patch, state in zip(reversed(patches), reversed(states[:-1]), strict=True):
        m.revert(patch)
        assert np.array_equal(m.array, state)
    for patch, state in zip(patches, states[1:], strict=True):
        m.apply(patch)
        assert np.array_equal(m.array, state)


# -- document ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,channels", [(np.uint8, 3), (np.uint16, 3), (np.uint8, 4)])
def test_removal_edit_changes_pixels_and_mask_as_one_undoable_step(dtype, channels):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 200, (H, W, channels)).astype(dtype)
    doc = Document(pixels.copy())
    doc.mask.fill_rect(10, 10, 20, 20)
    doc.mask.fill_rect(50, 40, 60, 45)  # outside the result's box: stays
    original_mask = doc.mask.array.copy()
    result = doc.pixels[5:25, 5:25].copy()
    result[5:15, 5:15] = 250  # the "removed" area
    edit = doc.replace_region((5, 5, 25, 25), result)
    assert isinstance(edit, CompositeEdit)
    assert edit.image.bbox == (10, 10, 20, 20)  # cropped to what really changed
    assert edit.image.old.dtype == dtype
    assert edit.image.nbytes == 2 * 100 * channels * pixels.itemsize
    assert (doc.pixels[10:20, 10:20] == 250).all()
    assert doc.mask.count() == 50 and edit.mask.bbox == (10, 10, 20, 20)
    doc.revert(edit)
    assert np.array_equal(doc.pixels, pixels) and np.array_equal(doc.mask.array, original_mask)
    doc.apply(edit)
    assert (doc.pixels[10:20, 10:20] == 250).all() and doc.mask.count() == 50


def test_document_checks_its_input():
    with pytest.raises(ValueError):
        Document(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError):
        Document(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(MaskError):
        Document(np.zeros((4, 4, 3), np.uint8), MaskModel(5, 4))
    doc = Document(np.zeros((4, 5), np.uint8))
    assert (doc.width, doc.height) == (5, 4)
    assert doc.replace_region((0, 0, 2, 2), np.zeros((2, 2), np.uint8)) is None
    with pytest.raises(ValueError):
        doc.pixels[0, 0] = 1
    with pytest.raises(ValueError):
        ImagePatch.capture(doc.pixels, (0, 0, 2, 2), np.zeros((3, 2), np.uint8))
