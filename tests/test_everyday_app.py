"""The everyday loop in the app (offscreen): the fine-tune suggestion bar, the edit history
kept across restarts, the clipboard and Mask ▸ Save mask."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QMessageBox
from skimage import data

import engine.removal.suggest
from app.settings import Settings
from app.windows.clipboard import image_to_pixels, pixels_to_image
from app.windows.main_window import MainWindow
from engine.document.history_store import HistoryStore
from engine.imageio.files import load_mask
from tests.photos import scene, with_object

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def _empty_clipboard(qapp):
    """Offscreen Qt crashes at exit when its clipboard still holds URLs: leave it empty."""
    yield
    QGuiApplication.clipboard().clear()


@pytest.fixture
def settings(tmp_path):
    return Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def history(tmp_path):
    return HistoryStore(tmp_path / "history")


def _window(settings, history, tiny_store=None, autosave_ms=None):
    w = MainWindow(settings, store=tiny_store, history_store=history)
    if autosave_ms is not None:
        w.keeper._timer.setInterval(autosave_ms)
    w.show()
    return w


def _close(qtbot, w, discard=True):
    """Close as a person would (answering Discard), and wait for the last history write."""
    if discard:
        w.canvas.history.setClean()
    thread = w.background._thread
    w.close()
    w.worker.shutdown()
    if thread is not None:
        qtbot.waitUntil(lambda: _finished(thread), timeout=20000)
    w.deleteLater()


def _crash(w):
    """The process dies: no close, no last write (the window is only disposed of)."""
    w.keeper._timer.stop()
    w.background.shutdown()
    w.worker.shutdown()
    w.hide()


def _finished(thread) -> bool:
    try:
        return thread.isFinished()
    except RuntimeError:  # deleted once finished (deleteLater)
        return True


@pytest.fixture
def window(qtbot, settings, history, tiny_store):
    w = _window(settings, history, tiny_store)
    yield w
    _close(qtbot, w)


def _idle(qtbot, w, timeout=30000):
    """Wait until the open photo's background work is done: its faces found, its file
    hashed and its history looked up (they start 150 ms after it opens), and any write."""
    photo = w.photo
    qtbot.waitUntil(lambda: photo.suggestion is not None
                    and (photo.path is None or photo.content_hash is not None)
                    and not w.background.busy, timeout=timeout)


@pytest.fixture
def portrait(tmp_path):
    path = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


# -- the fine-tune suggestion ---------------------------------------------------------------


def test_a_portrait_offers_the_faces_fine_tune_and_switch_takes_it(qtbot, window, portrait):
    window.set_engine_choice("ft_places2")
    threads = []
    real = engine.removal.suggest.detect_faces

    def detect(pixels, cancel=None):
        threads.append(threading.get_ident())
        return real(pixels, cancel)

    engine.removal.suggest.detect_faces = detect
    try:
        assert window.open_path(portrait)
        qtbot.waitUntil(window.suggestion_bar.isVisible, timeout=30000)
    finally:
        engine.removal.suggest.detect_faces = real
    assert threads and threads[0] != threading.get_ident()  # never on the GUI thread
    bar = window.suggestion_bar
    assert "Faces (FFHQ)" in bar.text.text() and bar.suggestion.variant == "ft_ffhq"
    bar.switch.click()
    assert window.settings.engine_choice == "ft_ffhq" and not bar.isVisible()
    assert window.engine_button.text() == "Faces (FFHQ)"


def test_keep_is_remembered_for_that_photo(qtbot, settings, history, tiny_store, portrait,
                                           tmp_path):
    w = _window(settings, history, tiny_store)
    w.set_engine_choice("ft_places2")
    w.open_path(portrait)
    qtbot.waitUntil(w.suggestion_bar.isVisible, timeout=30000)
    w.suggestion_bar.keep.click()
    assert settings.engine_choice == "ft_places2" and not w.suggestion_bar.isVisible()
    _close(qtbot, w)
    w = _window(settings, history, tiny_store)  # the next session, same photo
    w.open_path(portrait)
    _idle(qtbot, w)
    qtbot.wait(50)
    assert w.photo.suggestion is not None and w.photo.suggestion.is_portrait
    assert not w.suggestion_bar.isVisible()
    copy = tmp_path / "other.png"  # another portrait still asks
    Image.fromarray(data.astronaut()[:, ::-1]).save(copy)
    w.open_path(copy)
    qtbot.waitUntil(w.suggestion_bar.isVisible, timeout=30000)
    _close(qtbot, w)


def test_scenes_and_quick_never_show_the_bar(qtbot, window, portrait, tmp_path):
    path = tmp_path / "street.png"
    Image.fromarray(data.coffee()).save(path)
    window.set_engine_choice("ft_places2")
    window.open_path(path)
    _idle(qtbot, window)
    qtbot.wait(50)
    assert window.photo.suggestion.variant == "ft_places2"
    assert not window.suggestion_bar.isVisible()
    window.set_engine_choice("quick")  # a deliberate choice: not second-guessed
    window.open_path(portrait)
    _idle(qtbot, window)
    qtbot.wait(50)
    assert window.photo.suggestion.is_portrait and not window.suggestion_bar.isVisible()


def test_opening_a_24_mp_photo_blocks_the_gui_thread_under_50_ms_for_the_suggestion(
        qtbot, window, tmp_path):
    """Measured like test_app's stall test, with a 10 ms timer's gaps: opening the photo
    with the face detection running, against opening it with detection switched off."""
    import cv2

    from app.jobs import suggest as suggest_job

    big = np.full((4000, 6000, 3), 90, np.uint8)  # 24 MP, the portrait on the right
    big[:, 2000:] = cv2.resize(data.astronaut(), (4000, 4000), interpolation=cv2.INTER_LINEAR)
    path = tmp_path / "big.jpg"
    Image.fromarray(big).save(path, quality=85)
    engine.removal.suggest.suggest(data.astronaut())  # the detector's imports, done once
    window.set_engine_choice("ft_places2")
    real = suggest_job.SuggestionController.photo_opened
    spent = []

    def timed(self, photo):
        t0 = time.perf_counter()
        real(self, photo)
        spent.append(time.perf_counter() - t0)

    def stalls(until=None, seconds=1.0) -> list[float]:
        gaps, last = [], [0.0]

        def tick():
            now = time.perf_counter()
            gaps.append(now - last[0])
            last[0] = now

        timer = QTimer()
        timer.timeout.connect(tick)
        assert window.open_path(path)
        last[0] = opened = time.perf_counter()
        timer.start(10)
        qtbot.waitUntil(until or (lambda: time.perf_counter() - opened > seconds),
                        timeout=60000)
        timer.stop()
        return gaps

    try:
        suggest_job.SuggestionController.photo_opened = lambda self, photo: None
        baseline = stalls()
        suggest_job.SuggestionController.photo_opened = timed
        with_faces = stalls(lambda: window.photo.suggestion is not None)
    finally:
        suggest_job.SuggestionController.photo_opened = real
    assert window.photo.suggestion.is_portrait
    assert spent and spent[0] < 0.05, f"starting the detection took {spent[0]:.3f} s"
    assert len(with_faces) > 5
    added = max(with_faces) - max(baseline)
    print(f"longest GUI-thread gap: {max(baseline) * 1000:.0f} ms without detection, "
          f"{max(with_faces) * 1000:.0f} ms with it; starting it {spent[0] * 1000:.2f} ms")
    assert added < 0.05, f"detection added {added * 1000:.0f} ms to the longest stall"


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
    w = _window(settings, history, tiny_store, autosave_ms=50)
    w.open_path(path)
    _idle(qtbot, w)
    _remove_quick(qtbot, w, mask)
    w.canvas.fillRect(10, 10, 40, 30)  # painted after the removal, not removed yet
    edited = np.array(w.canvas.document().pixels)
    painted = np.array(w.canvas.document().mask.array)
    steps = w.canvas.history.count()
    qtbot.waitUntil(lambda: history.has(w.photo.content_hash or ""), timeout=10000)
    qtbot.wait(300)  # the autosave after the last edit
    _idle(qtbot, w)
    _crash(w)  # the window never closes; a new session opens the same file
    w2 = _window(settings, history, tiny_store)
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
    _close(qtbot, w2)


def test_closing_without_saving_reopens_the_file_with_the_edits_to_redo(
        qtbot, settings, history, tiny_store, photo, monkeypatch):
    path, img, mask = photo
    w = _window(settings, history, tiny_store)
    w.open_path(path)
    _idle(qtbot, w)
    _remove_quick(qtbot, w, mask)
    edited = np.array(w.canvas.document().pixels)
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.Discard)
    _close(qtbot, w, discard=False)
    w = _window(settings, history, tiny_store)
    w.open_path(path)
    qtbot.waitUntil(lambda: w.canvas.history.canRedo(), timeout=20000)
    doc = w.canvas.document()
    assert np.array_equal(doc.pixels, img) and not w.isWindowModified()
    while w.canvas.history.canRedo():
        w.canvas.redo()
    assert np.array_equal(doc.pixels, edited)
    _close(qtbot, w)


def test_a_photo_changed_on_disk_is_never_restored_onto(qtbot, settings, history, tiny_store,
                                                        photo):
    path, img, mask = photo
    w = _window(settings, history, tiny_store)
    w.open_path(path)
    _idle(qtbot, w)
    _remove_quick(qtbot, w, mask)
    _close(qtbot, w)
    assert history.usage() > 0
    changed = img.copy()
    changed[0, 0] ^= 1  # one pixel: another file
    Image.fromarray(changed).save(path)
    w = _window(settings, history, tiny_store)
    w.open_path(path)
    _idle(qtbot, w)
    qtbot.wait(50)
    assert w.canvas.history.count() == 0
    assert np.array_equal(w.canvas.document().pixels, changed)
    _close(qtbot, w)


def test_a_saved_photo_keeps_its_history(qtbot, settings, history, tiny_store, photo,
                                         tmp_path, monkeypatch):
    path, img, mask = photo
    w = _window(settings, history, tiny_store)
    w.open_path(path)
    _idle(qtbot, w)
    _remove_quick(qtbot, w, mask)
    target = tmp_path / "photo-clean.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    assert w.save_as()
    w.canvas.fillRect(0, 0, 20, 20)  # more edits after the save
    edited_mask = np.array(w.canvas.document().mask.array)
    saved_pixels = np.array(w.canvas.document().pixels)
    w.keeper._autosave()  # then a crash: no close, no last write
    _idle(qtbot, w)
    _crash(w)
    w = _window(settings, history, tiny_store)
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
    _close(qtbot, w)


def test_preferences_show_the_disk_use_and_clear_it(qtbot, window, photo, history):
    from app.windows.dialogs import PreferencesDialog

    path, img, mask = photo
    window.open_path(path)
    _idle(qtbot, window)
    _remove_quick(qtbot, window, mask)
    window.keeper._autosave()
    _idle(qtbot, window)
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
