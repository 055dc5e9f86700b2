"""The canvas widget: painting with the mouse, view control, shortcuts, undo history."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.canvas.widget import MaskCanvas
from app.windows.history_panel import HistoryPanel
from engine.document.mask import MaskModel
from tests.test_mask_edit import capsule_distance2

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parent.parent
LEFT, MIDDLE = Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton
NO_MOD = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def canvas(qtbot):
    c = MaskCanvas()
    qtbot.addWidget(c)
    c.resize(800, 600)
    c.show()
    qtbot.waitExposed(c)
    c.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is c)
    return c


def photo(w=400, h=300, channels=3, dtype=np.uint8):
    rng = np.random.default_rng(0)
    img = rng.integers(40, 60, (h, w, channels)).astype(dtype)
    if dtype == np.uint16:
        img *= 256
    return img


def drag(c, points, button=LEFT, mods=NO_MOD):
    """Press at the first widget point, move through the others, release at the last."""
    pts = [QPoint(*p) for p in points]
    QTest.mousePress(c, button, mods, pts[0])
    for p in pts[1:]:
        QTest.mouseMove(c, p)
    QTest.mouseRelease(c, button, mods, pts[-1])


def image_points(c, points):
    return [(q.x(), q.y()) for q in (c.mapToImage(QPointF(*p)) for p in points)]


def pixel(c, x, y) -> QColor:
    return c.grab().toImage().pixelColor(x, y)


# -- painting with the mouse ----------------------------------------------------------------


@pytest.mark.parametrize("zoom", [0.25, 1.0, 3.0])
def test_mouse_strokes_paint_where_the_view_maps_them(canvas, zoom):
    canvas.setImage(photo(1200, 900))
    canvas.setZoom(zoom)
    canvas.setBrushSize(9)
    pts = [(300, 200), (340, 260), (420, 250), (500, 400)]
    drag(canvas, pts)
    got = canvas.document().mask.array
    expected_pts = image_points(canvas, pts)
    # The same stroke through the model gives the same pixels...
    reference = MaskModel(1200, 900)
    reference.stroke(expected_pts, 4.5)
    assert np.array_equal(got, reference.array)
    # ...and they are the brush-radius capsule around the mapped points.
    d2 = capsule_distance2(expected_pts, 1200, 900)
    assert not ((d2 <= 4.5**2 - 1e-6) & ~got).any() and not (got & (d2 > 4.5**2 + 1e-6)).any()
    assert canvas.history.count() == 1 and canvas.history.text(0) == "Brush stroke"


def test_a_very_fast_stroke_leaves_no_gaps(canvas):
    canvas.setImage(photo(800, 600))
    canvas.setBrushSize(3)
    drag(canvas, [(40, 40), (760, 560)])  # one mouse move across the whole photo
    mask = canvas.document().mask.array
    for t in np.linspace(0, 1, 2000):
        p = canvas.mapToImage(QPointF(40 + t * 720, 40 + t * 520))
        assert mask[int(p.y()), int(p.x())]


def test_eraser_rectangle_lasso_and_alt(canvas):
    canvas.setImage(photo())
    doc = canvas.document()
    canvas.setTool("rect")
    drag(canvas, [(100, 100), (300, 250)])
    a, b = image_points(canvas, [(100, 100), (300, 250)])
    ref = MaskModel(400, 300)
    ref.fill_rect(*a, *b)
    assert np.array_equal(doc.mask.array, ref.array)
    canvas.setTool("eraser")
    drag(canvas, [(150, 150), (250, 200)])
    ref.stroke(image_points(canvas, [(150, 150), (250, 200)]), canvas.brushSize() / 2, erase=True)
    assert np.array_equal(doc.mask.array, ref.array)
    canvas.setTool("lasso")
    lasso = [(400, 300), (600, 320), (550, 450), (450, 420)]
    drag(canvas, lasso)
    ref.fill_polygon(image_points(canvas, lasso))
    assert np.array_equal(doc.mask.array, ref.array)
    canvas.setTool("brush")
    drag(canvas, [(420, 340), (560, 400)], mods=Qt.KeyboardModifier.AltModifier)  # erases
    ref.stroke(image_points(canvas, [(420, 340), (560, 400)]), canvas.brushSize() / 2, True)
    assert np.array_equal(doc.mask.array, ref.array)
    names = [canvas.history.text(i) for i in range(canvas.history.count())]
    assert names == ["Rectangle", "Erase", "Lasso", "Erase"]


def test_escape_cancels_a_stroke(canvas, qtbot):
    canvas.setImage(photo())
    QTest.mousePress(canvas, LEFT, NO_MOD, QPoint(200, 200))
    QTest.mouseMove(canvas, QPoint(400, 300))
    assert canvas.document().mask.any()
    QTest.keyClick(canvas, Qt.Key.Key_Escape)
    QTest.mouseRelease(canvas, LEFT, NO_MOD, QPoint(400, 300))
    assert not canvas.document().mask.any() and canvas.history.count() == 0


def test_shift_click_draws_a_straight_line_from_the_last_stroke(canvas):
    canvas.setImage(photo())
    drag(canvas, [(200, 200)])
    drag(canvas, [(500, 350)], mods=Qt.KeyboardModifier.ShiftModifier)
    ref = MaskModel(400, 300)
    ref.stroke(image_points(canvas, [(200, 200)]), canvas.brushSize() / 2)
    ref.stroke(image_points(canvas, [(200, 200), (500, 350)]), canvas.brushSize() / 2)
    assert np.array_equal(canvas.document().mask.array, ref.array)


# -- undo history -------------------------------------------------------------------------


def test_undo_and_redo_restore_the_mask_exactly(canvas, qtbot):
    canvas.setImage(photo())
    doc = canvas.document()
    states = [doc.mask.array.copy()]
    steps = [
        lambda: drag(canvas, [(100, 100), (300, 200), (350, 400)]),
        lambda: canvas.setTool("rect") or drag(canvas, [(200, 150), (500, 300)]),
        lambda: canvas.setTool("eraser") or drag(canvas, [(150, 150), (600, 450)]),
        lambda: canvas.invertMask(),
        lambda: canvas.growMask(8),
        lambda: canvas.shrinkMask(3),
        lambda: canvas.clearPaintedMask(),
    ]
    for step in steps:
        with qtbot.waitSignal(canvas.maskChanged):
            step()
        states.append(doc.mask.array.copy())
    names = [canvas.history.text(i) for i in range(canvas.history.count())]
    assert names == ["Brush stroke", "Rectangle", "Erase", "Invert mask", "Grow mask 8 px",
                     "Shrink mask 3 px", "Clear mask"]
    for state in reversed(states[:-1]):
        with qtbot.waitSignal(canvas.maskChanged):
            QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert np.array_equal(doc.mask.array, state)
    for state in states[1:]:
        canvas.redo()
        assert np.array_equal(doc.mask.array, state)
    panel = HistoryPanel(canvas.history)
    qtbot.addWidget(panel)
    assert panel.model().rowCount() == len(steps) + 1  # "Original" + the steps


def test_removal_result_is_one_undoable_step(canvas, qtbot):
    pixels = photo()
    canvas.setImage(pixels.copy())
    doc = canvas.document()
    canvas.fillRect(100, 100, 150, 140)
    mask_before = doc.mask.array.copy()
    result = np.full((60, 70, 3), 200, np.uint8)
    with qtbot.waitSignal(canvas.imageChanged):
        assert canvas.applyRemoval((90, 90, 160, 150), result)
    assert canvas.history.text(canvas.history.count() - 1) == "Remove object"
    assert not doc.mask.any() and (doc.pixels[90:150, 90:160] == 200).all()
    shown = pixel(canvas, *map(round, canvas.imageRectToWidget((120, 120, 121, 121)).center()
                               .toTuple()))
    assert shown.red() == 200  # the display follows the pixels (no overlay left there)
    canvas.undo()
    assert np.array_equal(doc.pixels, pixels) and np.array_equal(doc.mask.array, mask_before)
    canvas.redo()
    assert (doc.pixels[90:150, 90:160] == 200).all() and not doc.mask.any()


def test_history_memory_stays_bounded_on_a_24_megapixel_photo(canvas):
    canvas.setImage(np.zeros((4000, 6000, 3), np.uint8))
    canvas.setBrushSize(60)  # about 8 screen px at the fitted zoom
    for i in range(200):  # a zig-zag in each cell of a 20 x 10 grid, so each one paints
        x, y = 40 * (i % 20) + 10, 60 * (i // 20) + 10
        drag(canvas, [(x, y), (x + 20, y + 10), (x, y + 20), (x + 20, y + 30), (x, y + 40)])
    history = canvas.history
    full_mask = 6000 * 4000
    assert history.count() == 200
    assert history.bytesHeld() <= history.byteLimit()
    assert history.bytesHeld() < 200 * full_mask / 100  # far below 200 mask copies
    for _ in range(200):
        canvas.undo()
    assert not canvas.document().mask.any()


def test_byte_limit_drops_the_oldest_steps(canvas):
    canvas.setImage(photo(600, 400))
    doc = canvas.document()
    history = canvas.history
    history.setByteLimit(500_000)
    rng = np.random.default_rng(0)
    states = [doc.mask.array.copy()]
    for i in range(20):
        # Random noise does not compress: each step holds about 2 x 30 KB.
        assert canvas.setMaskArray(rng.random((400, 600)) < 0.5, f"Noise {i}")
        states.append(doc.mask.array.copy())
        if i == 15:
            history.setClean()
    assert history.bytesHeld() <= 500_000
    kept = history.count()
    assert 5 < kept < 20 and history.index() == kept
    assert history.text(kept - 1) == "Noise 19" and history.text(0) == f"Noise {20 - kept}"
    assert history.cleanIndex() == kept - 4  # still after "Noise 15"
    for state in reversed(states[-kept - 1 : -1]):  # every kept step still undoes exactly
        canvas.undo()
        assert np.array_equal(doc.mask.array, state)
    assert not history.canUndo()
    for state in states[-kept:]:
        canvas.redo()
        assert np.array_equal(doc.mask.array, state)
    assert history.isClean() is False and history.index() == kept


# -- view -------------------------------------------------------------------------------------


def test_wheel_zoom_keeps_the_point_under_the_cursor(canvas, qtbot):
    canvas.setImage(photo(1200, 900))
    cursor = QPointF(613, 217)
    before = canvas.mapToImage(cursor)
    zoom = canvas.zoom()
    for delta in (120, 120, 360, -240):
        event = QWheelEvent(cursor, canvas.mapToGlobal(cursor), QPoint(), QPoint(0, delta),
                            Qt.MouseButton.NoButton, NO_MOD, Qt.ScrollPhase.NoScrollPhase,
                            False)
        with qtbot.waitSignal(canvas.zoomChanged):
            QApplication.sendEvent(canvas, event)
        after = canvas.mapToImage(cursor)
        assert abs(after.x() - before.x()) < 1e-9 and abs(after.y() - before.y()) < 1e-9
    assert canvas.zoom() == pytest.approx(zoom * 2 ** (360 / 480))


def test_zoom_keys_fit_and_actual_size(canvas):
    canvas.setImage(photo(1600, 1200))
    fit = canvas.zoom()
    shown = canvas.imageRectToWidget((0, 0, 1600, 1200))
    assert QPointF(400, 300) == shown.center() and shown.height() <= 600
    ctrl = Qt.KeyboardModifier.ControlModifier
    QTest.keyClick(canvas, Qt.Key.Key_Plus, ctrl)
    assert canvas.zoom() == 0.5
    QTest.keyClick(canvas, Qt.Key.Key_Minus, ctrl)
    assert canvas.zoom() == 1 / 3
    QTest.keyClick(canvas, Qt.Key.Key_Equal, ctrl)  # Ctrl+= zooms in as well
    assert canvas.zoom() == 0.5
    QTest.keyClick(canvas, Qt.Key.Key_1, ctrl)
    assert canvas.zoom() == 1.0
    QTest.keyClick(canvas, Qt.Key.Key_0, ctrl)
    assert canvas.zoom() == fit


def test_pan_with_middle_button_and_space_drag(canvas):
    canvas.setImage(photo(1600, 1200))
    canvas.setZoom(1.0)
    p = canvas.mapToImage(QPointF(400, 300))
    drag(canvas, [(400, 300), (350, 280), (300, 250)], button=MIDDLE)
    q = canvas.mapToImage(QPointF(300, 250))
    assert (q.x(), q.y()) == (p.x(), p.y())
    QTest.keyPress(canvas, Qt.Key.Key_Space)
    drag(canvas, [(300, 250), (500, 400)])
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    r = canvas.mapToImage(QPointF(500, 400))
    assert (r.x(), r.y()) == (p.x(), p.y())
    assert not canvas.document().mask.any()  # panning never paints


def test_tool_and_brush_shortcuts(canvas, qtbot):
    canvas.setImage(photo())
    for key, tool in [("E", "eraser"), ("R", "rect"), ("L", "lasso"), ("B", "brush")]:
        with qtbot.waitSignal(canvas.toolChanged) as sig:
            QTest.keyClick(canvas, getattr(Qt.Key, f"Key_{key}"))
        assert sig.args == [tool] and canvas.tool() == tool
    canvas.setBrushSize(20)
    with qtbot.waitSignal(canvas.brushSizeChanged) as sig:
        QTest.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert sig.args == [25] and canvas.brushSize() == 25
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brushSize() == 16
    canvas.setBrushSize(1)
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brushSize() == 1
    QTest.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brushSize() == 2


def test_overlay_shows_the_mask_in_colour_and_toggles(canvas, qtbot):
    canvas.setImage(np.full((300, 400, 3), 50, np.uint8))
    canvas.fillRect(100, 100, 200, 200)
    inside = canvas.mapFromImage(QPointF(150, 150)).toPoint()
    outside = canvas.mapFromImage(QPointF(300, 250)).toPoint()
    shown = pixel(canvas, inside.x(), inside.y())
    assert shown.red() > 140 and shown.green() < 40  # 50 % red over grey 50
    assert pixel(canvas, outside.x(), outside.y()).getRgb()[:3] == (50, 50, 50)
    with qtbot.waitSignal(canvas.overlayVisibleChanged) as sig:
        QTest.keyClick(canvas, Qt.Key.Key_H)
    assert sig.args == [False]
    assert pixel(canvas, inside.x(), inside.y()).getRgb()[:3] == (50, 50, 50)
    canvas.setOverlayVisible(True)
    canvas.setOverlayColor(QColor(0, 0, 255, 255))
    assert pixel(canvas, inside.x(), inside.y()).getRgb()[:3] == (0, 0, 255)


@pytest.mark.parametrize("zoom", [0.1, 0.6, 4.0])
def test_overlay_is_drawn_at_every_pyramid_level(canvas, zoom):
    canvas.setImage(np.full((3000, 4000, 3), 50, np.uint8))
    canvas.fillRect(1000, 1000, 1400, 1300)
    canvas.setZoom(zoom)
    canvas.centerOn(QPointF(1200, 1150))
    canvas.setBrushSize(1)  # keep the ring out of the way
    centre = canvas.mapFromImage(QPointF(1200, 1150)).toPoint()
    assert centre == QPoint(400, 300)
    assert pixel(canvas, centre.x(), centre.y()).red() > 140


def test_overlay_lines_up_with_photo_pixels_when_zoomed_in(canvas):
    canvas.setImage(np.full((300, 400, 3), 50, np.uint8))
    canvas.fillRect(100, 100, 103, 102)  # pixels 100..102 x 100..101
    canvas.setZoom(4.0)
    canvas.centerOn(QPointF(101.25, 100.5))
    canvas.setBrushSize(1)
    img = canvas.grab().toImage()
    box = canvas.imageRectToWidget((100, 100, 103, 102))
    x0, y0 = round(box.left()), round(box.top())
    assert (box.width(), box.height()) == (12, 8)
    for x in range(x0 - 2, x0 + 14):
        for y in range(y0 - 2, y0 + 10):
            inside = x0 <= x < x0 + 12 and y0 <= y < y0 + 8
            assert (img.pixelColor(x, y).red() > 140) == inside, (x, y)


def test_uint16_and_rgba_photos_display(canvas):
    canvas.setImage(np.full((30, 40, 3), 0x8000, np.uint16))
    assert pixel(canvas, 400, 300).getRgb()[:3] == (128, 128, 128)
    canvas.applyRemoval((0, 0, 40, 30), np.full((30, 40, 3), 0xC8FF, np.uint16))
    assert pixel(canvas, 400, 300).getRgb()[:3] == (200, 200, 200)  # display follows
    canvas.undo()
    assert pixel(canvas, 400, 300).getRgb()[:3] == (128, 128, 128)
    rgba = np.dstack([np.full((30, 40, 3), 90, np.uint8), np.full((30, 40), 255, np.uint8)])
    canvas.setImage(rgba)
    assert pixel(canvas, 400, 300).getRgb()[:3] == (90, 90, 90)


def test_painting_redraws_only_the_changed_region(canvas, monkeypatch):
    canvas.setImage(np.zeros((4000, 6000, 3), np.uint8))
    canvas.setZoom(1.0)
    canvas.setBrushSize(20)
    rects = []
    monkeypatch.setattr(canvas, "update", lambda *a: rects.append(a[0] if a else canvas.rect()))
    drag(canvas, [(400, 300), (410, 305), (420, 300)])
    assert rects and all(r.width() < 100 and r.height() < 100 for r in rects)


def test_ring_cursor_follows_the_mouse_at_the_brush_size(canvas):
    canvas.setImage(np.full((300, 400, 3), 50, np.uint8))
    canvas.setZoom(2.0)
    canvas.setBrushSize(40)  # 80 screen px wide at 200 %
    QTest.mouseMove(canvas, QPoint(400, 300))
    img = canvas.grab().toImage()
    ring = [img.pixelColor(400 + dx, 300).lightness() for dx in range(36, 45)]
    assert max(ring) > 120  # the white line of the ring, 40 px from the centre
    assert img.pixelColor(420, 300).lightness() < 80  # photo inside the ring


# -- offscreen rendering script ---------------------------------------------------------------


def test_render_canvas_script_writes_a_png_with_the_overlay(tmp_path):
    out = tmp_path / "canvas.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    subprocess.run([sys.executable, "-m", "app.canvas.render", str(out)], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=60)
    img = QImage(str(out)).convertToFormat(QImage.Format.Format_RGB888)
    assert (img.width(), img.height()) == (960, 640)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(640, img.bytesPerLine())[:, :960 * 3]
    rgb = arr.reshape(640, 960, 3).astype(int)
    reddish = (rgb[..., 0] > rgb[..., 1] + 40) & (rgb[..., 0] > rgb[..., 2] + 40)
    from app.canvas.render import synthetic_photo

    src = synthetic_photo().astype(int)
    assert not ((src[..., 0] > src[..., 1] + 40) & (src[..., 0] > src[..., 2] + 40)).any()
    assert reddish.sum() > 5000  # the painted pole, wire, bench and lasso
