"""The app's live preview and variations strip (offscreen, the tiny model)."""

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from tests.test_app import _dispose, _paint

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, settings, tiny_store):
    from app.windows.main_window import MainWindow

    settings.engine_choice = "ft_places2"
    settings.steps = 3
    w = MainWindow(settings, store=tiny_store)
    w.show()
    yield w
    _dispose(w)


def _canvas_rgb(window, x, y):
    """The colour the canvas shows at photo pixel (x, y)."""
    at = window.canvas.mapFromImage(QPointF(x + 0.5, y + 0.5))
    colour = window.canvas.grab().toImage().pixelColor(int(at.x()), int(at.y()))
    return np.array([colour.red(), colour.green(), colour.blue()])


def _centre(window, mask):
    """The hole's centre, shown at 100 % in the middle of the canvas (pixel for pixel)."""
    ys, xs = np.nonzero(mask)
    x, y = int(xs.mean()), int(ys.mean())
    window.canvas.setZoom(1.0)
    window.canvas.centerOn(QPointF(x, y))
    return x, y


def test_each_step_shows_the_fill_forming_in_the_hole_and_never_writes_it(qtbot, window,
                                                                           photo):
    path, img, mask = photo
    window.open_path(path)
    _paint(window, mask)
    x, y = _centre(window, mask)
    seen = []

    def look(shown_photo, patches):  # after the window's own slot: the canvas has it
        (patch,) = patches
        x0, y0, x1, y1 = patch.box
        ph, pw = patch.rgba.shape[:2]
        expected = patch.rgba[(y - y0) * ph // (y1 - y0), (x - x0) * pw // (x1 - x0), :3]
        doc = np.array(window.canvas.document().pixels)
        seen.append((_canvas_rgb(window, x, y), expected.astype(int), doc))

    window.jobs.preview.connect(look)
    with qtbot.waitSignal(window.jobs.finished, timeout=60000):
        window.remove()
    assert len(seen) == 2  # one per network step (3 steps, the first skipped)
    for shown, expected, doc in seen:
        assert np.abs(shown - expected).max() <= 12  # the preview, not the red mask tint
        assert np.array_equal(doc, img)  # a preview is never written into the photo
    assert not window.canvas.hasPreview()  # the exact result replaced it
    after = np.array(window.canvas.document().pixels)
    assert np.array_equal(_canvas_rgb(window, x, y), after[y, x])
    assert window.canvas.history.count() == 2  # the stroke and the removal, no preview step


def test_the_view_menu_turns_the_preview_off_and_remembers(qtbot, window, photo):
    path, img, mask = photo
    window.a_preview.setChecked(False)
    assert window.settings.live_preview is False
    window.open_path(path)
    _paint(window, mask)
    shown = []
    window.jobs.preview.connect(lambda *args: shown.append(args))
    with qtbot.waitSignal(window.jobs.finished, timeout=60000):
        window.remove()
    assert shown == [] and not window.canvas.hasPreview()


def _offer(qtbot, window):
    with qtbot.waitSignal(window.jobs.finished, timeout=60000):
        window.remove()
    qtbot.waitUntil(lambda: not window.jobs.running(window.photo), timeout=5000)
    return window.photo.choice


def test_choose_keep_undo_discard_and_a_stroke_keeps(qtbot, window, photo):
    path, img, mask = photo
    window.settings.variations = 2
    window.open_path(path)
    _paint(window, mask)
    doc = window.canvas.document()
    choice = _offer(qtbot, window)
    assert choice is not None and len(choice.candidates) == 2
    seeds = [c.seed for c in choice.candidates]
    assert seeds[1] == seeds[0] + 1 and window.strip.isVisible()
    assert [b.text() for b in window.strip.buttons] == [f"seed {s}" for s in seeds]
    assert np.array_equal(np.array(doc.pixels), img)  # nothing written while choosing
    assert window.canvas.history.count() == 1
    x, y = _centre(window, mask)
    looks = [c.apply_to(img)[y, x].astype(int) for c in choice.candidates]
    assert np.array_equal(_canvas_rgb(window, x, y), looks[0])
    # A click on the second thumbnail shows it; the arrow keys move along the strip.
    qtbot.mouseClick(window.strip.buttons[1], Qt.MouseButton.LeftButton)
    assert choice.index == 1
    assert np.array_equal(_canvas_rgb(window, x, y), looks[1])
    window.activateWindow()
    QTest.keyClick(window.canvas, Qt.Key.Key_Left)
    assert choice.index == 0
    QTest.keyClick(window.canvas, Qt.Key.Key_Right)
    assert choice.index == 1 and window.strip.buttons[1].isChecked()
    # Enter keeps the one shown, as one undo step that clears the mask.
    window.a_remove.trigger()
    assert window.photo.choice is None and not window.strip.isVisible()
    assert np.array_equal(np.array(doc.pixels), choice.candidates[1].apply_to(img))
    assert not doc.mask.any() and window.canvas.history.count() == 2
    window.canvas.undo()
    assert np.array_equal(np.array(doc.pixels), img) and np.array_equal(doc.mask.array, mask)
    # Esc discards them all: the photo and its mask as they were.
    choice = _offer(qtbot, window)
    window.esc.activated.emit()
    assert window.photo.choice is None
    assert np.array_equal(np.array(doc.pixels), img) and np.array_equal(doc.mask.array, mask)
    assert window.canvas.history.index() == 1  # still just the stroke (the undone one redoable)
    # A new stroke keeps the one shown first, then paints.
    choice = _offer(qtbot, window)
    window.photo.choose(1)
    window.canvas.fillRect(5, 5, 25, 25)
    assert window.photo.choice is None
    assert np.array_equal(np.array(doc.pixels), choice.candidates[1].apply_to(img))
    assert doc.mask.array[5:25, 5:25].all() and not doc.mask.array[mask].any()
    assert window.canvas.history.count() == 3  # stroke, removal, rectangle


def test_try_again_adds_candidates_and_undo_while_choosing_discards(qtbot, window,
                                                                    photo):
    path, img, mask = photo
    window.settings.variations = 2
    window.open_path(path)
    _paint(window, mask)
    choice = _offer(qtbot, window)
    first = list(choice.candidates)
    assert window.a_retry.isEnabled()
    with qtbot.waitSignal(window.jobs.finished, timeout=60000):
        window.try_again()
    assert window.photo.choice is choice and len(choice.candidates) == 4
    assert choice.candidates[:2] == first and choice.index == 2  # the first new one shown
    assert len({c.seed for c in choice.candidates}) == 4
    assert len(window.strip.buttons) == 4
    doc = window.canvas.document()
    assert np.array_equal(np.array(doc.pixels), img) and window.canvas.history.count() == 1
    window.canvas.undo()  # Undo while choosing: none kept, the stroke stays
    assert window.photo.choice is None and window.canvas.history.count() == 1
    assert np.array_equal(doc.mask.array, mask)


def test_cancel_during_variations_offers_nothing(qtbot, window, photo):
    path, img, mask = photo
    window.settings.variations = 3
    window.settings.steps = 200
    window.open_path(path)
    _paint(window, mask)
    texts = []
    window.jobs.progress.connect(lambda f, text: texts.append(text))
    with qtbot.waitSignal(window.jobs.failed, timeout=60000) as failed:
        window.remove()
        qtbot.waitUntil(lambda: any("step" in t for t in texts), timeout=60000)
        window.cancel_removal()
    assert failed.args[0].cancelled
    assert any("3 variations" in t for t in texts)
    qtbot.waitUntil(lambda: not window.jobs.running(window.photo), timeout=10000)
    assert window.photo.choice is None and not window.strip.isVisible()
    assert not window.canvas.hasPreview()
    assert np.array_equal(np.array(window.canvas.document().pixels), img)


def test_export_and_copy_while_choosing_write_the_fill_on_show(qtbot, window, photo,
                                                               monkeypatch, tmp_path):
    from PIL import Image
    from PySide6.QtWidgets import QFileDialog

    from app.windows.clipboard import image_to_pixels

    path, img, mask = photo
    window.settings.variations = 2
    window.open_path(path)
    _paint(window, mask)
    choice = _offer(qtbot, window)
    window.photo.choose(1)
    shown = choice.candidates[1].apply_to(img)
    target = tmp_path / "export.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(target), "PNG (*.png)"))
    assert window.export()
    assert np.array_equal(np.asarray(Image.open(target).convert("RGB")), shown)
    assert window.photo.choice is None and window.canvas.history.count() == 2  # kept
    window.canvas.undo()
    choice = _offer(qtbot, window)
    window.photo.choose(0)
    window.copy_image()
    from PySide6.QtGui import QGuiApplication

    copied = image_to_pixels(QGuiApplication.clipboard().image())
    QGuiApplication.clipboard().clear()
    assert copied is not None
    assert np.array_equal(copied[..., :3], choice.candidates[0].apply_to(img))
