"""The everyday loop in the app (offscreen): the edit history kept across restarts, the
clipboard and Mask ▸ Save mask."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog

from app.windows.clipboard import image_to_pixels, pixels_to_image
from engine.imageio.files import load_mask
from tests.photos import scene, with_object

pytest.register_assert_rewrite("tests.everyday_windows")  # it is also a plugin:
from tests.dialogs import answer_boxes  # noqa: E402
from tests.everyday_windows import close_window, crash, open_window, settle  # noqa: E402

pytestmark = pytest.mark.gui
pytest_plugins = ["tests.everyday_windows"]  # its fixtures: settings, history, window, ...


# -- the edit history on disk ---------------------------------------------------------------


@pytest.fixture
def photo(tmp_path):
    img, mask = with_object(scene(320, 240, seed=3), (100, 80, 160, 130))
    path = tmp_path / "photo.png"
    Image.fromarray(img).save(path)
    return path, img, mask


def _remove_quick(qtbot, w, mask):
    w.set_engine_choice("quick")
    w.canvas.setMaskArray(mask, "Brush stroke")
    with qtbot.waitSignal(w.jobs.finished, timeout=60000):
        w.remove()


def test_after_a_crash_the_photo_comes_back_with_undo(qtbot, settings, history, tiny_store,
                                                      photo):
    path, img, mask = photo
    w = open_window(settings, history, tiny_store, autosave_ms=50)
    w.open_path(path)
    settle(qtbot, w)
    _remove_quick(qtbot, w, mask)
    w.canvas.fillRect(10, 10, 40, 30)  # painted after the removal, not removed yet
    edited = np.array(w.canvas.document().pixels)
    painted = np.array(w.canvas.document().mask.array)
    steps = w.canvas.history.count()
    qtbot.waitUntil(lambda: history.has(w.photo.content_hash or ""), timeout=10000)
    qtbot.wait(300)  # the autosave after the last edit
    settle(qtbot, w)
    crash(w)  # the window never closes; a new session opens the same file
    w2 = open_window(settings, history, tiny_store)
    messages = []
    w2.keeper.restored.connect(lambda photo, text: messages.append(text))
    w2.open_path(path)
    qtbot.waitUntil(lambda: w2.canvas.history.count() == steps, timeout=20000)
    doc = w2.canvas.document()
    assert np.array_equal(doc.pixels, edited) and np.array_equal(doc.mask.array, painted)
    assert w2.isWindowModified() and messages and "Undo" in messages[0]
    while w2.canvas.history.canUndo():
        w2.canvas.undo()
    assert np.array_equal(doc.pixels, img) and not doc.mask.any()
    close_window(qtbot, w2)


def test_closing_without_saving_reopens_the_file_with_the_edits_to_redo(
        qtbot, settings, history, tiny_store, photo, monkeypatch):
    path, img, mask = photo
    w = open_window(settings, history, tiny_store)
    w.open_path(path)
    settle(qtbot, w)
    _remove_quick(qtbot, w, mask)
    edited = np.array(w.canvas.document().pixels)
    answer_boxes(monkeypatch, ["Don't save"])
    close_window(qtbot, w, discard=False)
    w = open_window(settings, history, tiny_store)
    w.open_path(path)
    qtbot.waitUntil(lambda: w.canvas.history.canRedo(), timeout=20000)
    doc = w.canvas.document()
    assert np.array_equal(doc.pixels, img) and not w.isWindowModified()
    while w.canvas.history.canRedo():
        w.canvas.redo()
    assert np.array_equal(doc.pixels, edited)
    close_window(qtbot, w)


def test_a_photo_changed_on_disk_is_never_restored_onto(qtbot, settings, history, tiny_store,
                                                        photo):
    path, img, mask = photo
    w = open_window(settings, history, tiny_store)
    w.open_path(path)
    settle(qtbot, w)
    _remove_quick(qtbot, w, mask)
    close_window(qtbot, w)
    assert history.usage() > 0
    changed = img.copy()
    changed[0, 0] ^= 1  # one pixel: another file
    Image.fromarray(changed).save(path)
    w = open_window(settings, history, tiny_store)
    w.open_path(path)
    settle(qtbot, w)
    qtbot.wait(50)
    assert w.canvas.history.count() == 0
    assert np.array_equal(w.canvas.document().pixels, changed)
    close_window(qtbot, w)


def test_a_saved_photo_keeps_its_history(qtbot, settings, history, tiny_store, photo,
                                         tmp_path, monkeypatch):
    path, img, mask = photo
    w = open_window(settings, history, tiny_store)
    w.open_path(path)
    settle(qtbot, w)
    _remove_quick(qtbot, w, mask)
    target = tmp_path / "photo-clean.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    assert w.save_as()
    w.canvas.fillRect(0, 0, 20, 20)  # more edits after the save
    edited_mask = np.array(w.canvas.document().mask.array)
    saved_pixels = np.array(w.canvas.document().pixels)
    w.keeper._autosave()  # then a crash: no close, no last write
    settle(qtbot, w)
    crash(w)
    w = open_window(settings, history, tiny_store)
    w.open_path(target)
    qtbot.waitUntil(lambda: w.canvas.history.count() == 3, timeout=20000)
    doc = w.canvas.document()
    assert np.array_equal(doc.pixels, saved_pixels)
    assert np.array_equal(doc.mask.array, edited_mask)
    w.canvas.undo()  # the stroke after the save
    assert not w.isWindowModified()  # back at the saved state
    w.canvas.undo()
    w.canvas.undo()  # and past it, to the original photo
    assert np.array_equal(doc.pixels, img)
    close_window(qtbot, w)


def test_preferences_show_the_disk_use_and_clear_it(qtbot, window, photo, history):
    from app.windows.dialogs import PreferencesDialog

    path, img, mask = photo
    window.open_path(path)
    settle(qtbot, window)
    _remove_quick(qtbot, window, mask)
    window.keeper._autosave()
    settle(qtbot, window)
    assert history.usage() > 0
    dialog = PreferencesDialog(window.settings, window, history=window.keeper)
    row = dialog.history
    assert "used" in row.used.text() and row.used.text() != "0 KB used"
    with qtbot.waitSignal(window.background.busyChanged, timeout=10000,
                          check_params_cb=lambda busy: not busy):
        row.clear.click()
    qtbot.wait(20)
    assert history.usage() == 0 and row.used.text() == "0 KB used"
    row.limit.setValue(500)
    dialog.accept()
    assert window.settings.history_limit_mb == 500 and history.limit == 500 * 2**20


# -- clipboard ------------------------------------------------------------------------------


def test_paste_opens_an_untitled_photo_and_save_asks_for_a_name(qtbot, window, tmp_path,
                                                                 monkeypatch):
    pixels = scene(200, 150, seed=5)
    QGuiApplication.clipboard().setImage(pixels_to_image(pixels))
    window.a_paste.trigger()
    assert window.photo is not None and window.photo.path is None
    assert np.array_equal(window.canvas.document().pixels, pixels)
    assert window.isWindowModified() and window.photo.name == "Untitled"
    asked = []
    target = tmp_path / "pasted.png"

    def ask(*args, **kwargs):
        asked.append(args[2])
        return str(target), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", ask)
    assert window.save()
    assert asked and asked[0].endswith("Untitled.png")
    assert np.array_equal(np.asarray(Image.open(target)), pixels)
    assert window.photo.path == target and not window.isWindowModified()


def test_copy_image_puts_the_current_picture_on_the_clipboard(qtbot, window, photo):
    path, img, mask = photo
    window.open_path(path)
    _remove_quick(qtbot, window, mask)
    window.a_copy_image.trigger()
    copied = image_to_pixels(QGuiApplication.clipboard().image())
    assert np.array_equal(copied, window.canvas.document().pixels)
    assert not np.array_equal(copied, img)


def test_pasting_a_copied_file_opens_that_file(qtbot, window, photo):
    from PySide6.QtCore import QMimeData, QUrl

    path, img, _ = photo
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    QGuiApplication.clipboard().setMimeData(mime)
    window.paste()
    assert window.photo.path == path


# -- Mask ▸ Save mask -------------------------------------------------------------------------


def test_a_saved_mask_reads_back_identically(qtbot, window, photo, tmp_path, monkeypatch):
    from engine.cli.main import main

    path, img, mask = photo
    window.open_path(path)
    window.canvas.paintStroke([(20, 30), (150, 90), (300, 200)], brush_size=13)
    window.canvas.fillLasso([(200, 10), (300, 40), (260, 100)])
    painted = np.array(window.canvas.document().mask.array)
    target = tmp_path / "saved-mask"  # no suffix: .png is added
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    assert window.save_mask_dialog()
    saved = tmp_path / "saved-mask.png"
    assert np.array_equal(load_mask(saved), painted)
    window.canvas.clearPaintedMask()  # Mask ▸ Load mask brings it back
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(saved), ""))
    window.load_mask_dialog()
    assert np.array_equal(window.canvas.document().mask.array, painted)
    out = tmp_path / "cli.png"  # and the command line's --mask removes exactly there
    assert main(["remove", str(path), "--mask", str(saved), "-o", str(out),
                 "--engine", "quick"]) == 0
    changed = np.any(np.asarray(Image.open(out)) != img, axis=2)
    assert changed[painted].mean() > 0.9
