"""The rough edges a first-time user hit (issue 19, items 7 and 8): the window and the
screen, devices in Preferences, and the small things."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, QRect, QSize, Qt
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.windows.dialogs import PreferencesDialog
from app.windows.geometry import fit_rect
from app.windows.main_window import MainWindow
from engine.sampling.device import DeviceSupport
from tests.test_app import _is_red, _shown_colour, answer_boxes

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def window(qtbot, settings, tiny_store):
    w = MainWindow(settings, store=tiny_store)
    w.show()
    yield w
    if w.photo is not None:
        w.photo.mark_saved()
    w.close()
    w.worker.shutdown()
    w.deleteLater()


def _quick_removal(qtbot, window, photo):
    path, img, mask = photo
    window.set_engine_choice("quick")
    window.open_path(path)
    window.canvas.setMaskArray(mask)
    with qtbot.waitSignal(window.jobs.finished, timeout=60000):
        window.remove()


# ---- the window and the screen --------------------------------------------------------


def test_fit_rect_keeps_a_window_inside_the_available_area():
    available = QRect(0, 0, 960, 540)  # a 1920x1080 screen at 2x scaling
    out = fit_rect(QRect(0, 0, 1280, 820), available, QSize(16, 48), centre=True)
    assert out.width() <= 960 - 16 and out.height() <= 540 - 48
    assert available.contains(out.adjusted(-8, -40, 8, 8))
    off = fit_rect(QRect(2000, -300, 800, 500), QRect(0, 30, 1366, 738))  # below a top panel
    assert QRect(0, 30, 1366, 738).contains(off.adjusted(-8, -40, 8, 8))


SCREEN_CHECK = """
import json, sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.windows.main_window import MainWindow
w = MainWindow(); w.show(); app.processEvents()
avail = w.screen().availableGeometry()
def inside(widget):
    r = widget.rect(); top_left = widget.mapToGlobal(r.topLeft())
    bottom_right = widget.mapToGlobal(r.bottomRight())
    return avail.contains(top_left) and avail.contains(bottom_right)
print(json.dumps({"frame": w.frameGeometry().getRect(), "available": avail.getRect(),
                  "status_bar": inside(w.statusBar()), "history": inside(w.history_dock)}))
"""


@pytest.mark.parametrize("scale", ["1", "2"])
def test_the_window_fits_the_screen_at_any_scaling(tmp_path, scale):
    screens = tmp_path / "screens.json"
    screens.write_text(json.dumps({"screens": [{"name": "s", "x": 0, "y": 0, "width": 1920,
                                                "height": 1080, "logicalDpi": 96, "dpr": 1}]}))
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={screens}",
               QT_SCALE_FACTOR=scale)
    out = subprocess.run([sys.executable, "-c", SCREEN_CHECK], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    x, y, w, h = found["frame"]
    ax, ay, aw, ah = found["available"]
    assert ax <= x and ay <= y and x + w <= ax + aw and y + h <= ay + ah, found
    assert found["status_bar"] and found["history"], found


def test_geometry_and_brush_size_are_remembered(qtbot, settings):
    first = MainWindow(settings)
    first.show()
    first.setGeometry(40, 60, 700, 500)
    first.canvas.setBrushSize(77)
    first.close()
    second = MainWindow(settings)
    second.show()
    assert second.geometry() == QRect(40, 60, 700, 500)
    assert second.canvas.brushSize() == 77 and second.size_slider.value() == 77
    second.close()


def test_preferences_offer_only_available_devices(qtbot, settings):
    settings.device = "cuda"  # chosen on another machine, say
    devices = [DeviceSupport("auto", True), DeviceSupport("cpu", True),
               DeviceSupport("cuda", False, "no NVIDIA GPU with a working driver was found"),
               DeviceSupport("mps", False, "Apple Metal exists only on Macs")]
    dialog = PreferencesDialog(settings, devices=devices)
    qtbot.addWidget(dialog)
    model = dialog.device.model()
    by_key = {dialog.device.itemData(i): model.item(i) for i in range(dialog.device.count())}
    assert by_key["auto"].isEnabled() and by_key["cpu"].isEnabled()
    assert not by_key["cuda"].isEnabled() and not by_key["mps"].isEnabled()
    assert "working driver" in by_key["cuda"].toolTip()
    assert by_key["mps"].text().endswith("not available")
    assert dialog.device.currentData() == "auto"  # never an unavailable device
    dialog.accept()
    assert settings.device == "auto"


def test_preferences_ask_this_machine(qtbot, settings):
    import torch

    dialog = PreferencesDialog(settings)
    qtbot.addWidget(dialog)
    model = dialog.device.model()
    cuda = model.item(dialog.device.findData("cuda"))
    assert cuda.isEnabled() == torch.cuda.is_available()


def test_preferences_write_the_shared_models_folder(qtbot, settings, tmp_path, monkeypatch):
    from engine.weights.location import models_root

    monkeypatch.delenv("MOEBIUS_MODELS_DIR", raising=False)
    dialog = PreferencesDialog(settings, devices=[])
    qtbot.addWidget(dialog)
    dialog.models_dir.setText(str(tmp_path / "my-models"))
    dialog.accept()
    assert models_root() == tmp_path / "my-models"  # what the command line will use
    monkeypatch.setenv("MOEBIUS_MODELS_DIR", str(tmp_path / "env"))
    dialog = PreferencesDialog(settings, devices=[])
    qtbot.addWidget(dialog)
    assert not dialog.models_dir.isEnabled()  # the variable wins; the dialog says so


# ---- the small things -------------------------------------------------------------------


def test_try_again_is_off_after_quick_and_says_why(qtbot, window, photo):
    _quick_removal(qtbot, window, photo)
    assert not window.a_retry.isEnabled()
    assert "Quick gives the same result" in window.a_retry.toolTip()
    assert "same result" in window.jobs.try_again(window.photo)


def test_the_welcome_list_follows_save_as(qtbot, window, photo, tmp_path, monkeypatch):
    _quick_removal(qtbot, window, photo)
    target = tmp_path / "out" / "saved.png"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    assert window.save_as()
    listed = [window.welcome.recent.item(i).text() for i in range(window.welcome.recent.count())]
    assert listed[0] == "saved.png"


def test_export_never_suggests_a_doubled_suffix(qtbot, window, photo, tmp_path, monkeypatch):
    suggested = []

    def ask(parent, title, default, *args):
        suggested.append(Path(default).name)
        return "", ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", ask)
    path, img, _ = photo
    window.open_path(path)
    window.export()
    clean = path.with_name("photo-clean.png")
    Image.fromarray(img).save(clean)
    window.open_path(clean)
    window.export()
    assert suggested == ["photo-clean.png", "photo-clean-copy.png"]


def test_open_output_folder_says_where_it_is(qtbot, window, tmp_path, monkeypatch):
    from app.windows.batch_dialog import BatchDialog

    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: False)
    shown = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.informativeText()))
    dialog = BatchDialog(window.worker, window.settings, window)
    dialog.output_edit.setText(str(tmp_path / "cleaned"))
    dialog.open_output()
    assert window.open_models_folder() is False
    assert str(tmp_path / "cleaned") in shown[0]
    assert str(window.store().root) in shown[1]


def test_status_bar_speaks_plainly_before_and_after_a_run(qtbot, window, photo):
    window.set_engine_choice("ft_places2")
    before = window.device_status.text()
    assert "ft_places2" not in before and "auto" not in before
    assert before == "Moebius Places (scenes) · GPU if there is one, else CPU"
    window.settings.device = "cpu"
    path, _, mask = photo
    window.open_path(path)
    window.canvas.setMaskArray(mask)
    with qtbot.waitSignal(window.jobs.finished, timeout=60000):
        window.remove()
    assert window.device_status.text() == "Moebius Places (scenes) · CPU fp32"
    window.set_engine_choice("ft_ffhq")  # another fine-tune: the run's device still holds
    assert window.device_status.text() == "Moebius Faces (FFHQ) · CPU fp32"


def test_the_grow_dialog_is_wide_enough_for_its_title(qtbot, window):
    for grow in (True, False):
        dialog = window.pixels_dialog(grow)
        title = dialog.fontMetrics().horizontalAdvance(dialog.windowTitle())
        assert dialog.minimumWidth() >= title + 150
        assert "pixels" in dialog.labelText()


def test_history_says_no_photo_rather_than_original(qtbot, window, photo):
    model = window.history_panel.model()
    assert model.index(0, 0).data() == "No photo open"
    window.open_path(photo[0])
    assert model.index(0, 0).data() == "Original"
    window.close_photo()
    assert model.index(0, 0).data() == "No photo open"


def test_painting_a_mask_alone_is_not_an_unsaved_change(qtbot, window, photo, monkeypatch):
    path, img, mask = photo
    window.open_path(path)
    window.canvas.setMaskArray(mask)
    window.canvas.fillRect(0, 0, 20, 20)
    assert not window.photo.is_modified and not window.isWindowModified()
    shown = answer_boxes(monkeypatch, [])
    assert window.confirm_discard() and not shown  # nothing to ask about
    window.set_engine_choice("quick")
    with qtbot.waitSignal(window.jobs.finished, timeout=60000):
        window.remove()
    assert window.photo.is_modified and window.isWindowModified()
    window.canvas.fillRect(30, 30, 40, 40)  # a stroke after the removal: still modified
    assert window.photo.is_modified
    window.canvas.undo()
    window.canvas.undo()  # the removal undone: the pixels are the saved ones again
    assert not window.photo.is_modified and not window.isWindowModified()


def test_arrow_keys_pan(qtbot, window, photo):
    window.open_path(photo[0])
    canvas = window.canvas
    canvas.setZoom(4.0)
    centre = canvas.mapToImage(QPointF(canvas.width() / 2, canvas.height() / 2))
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    moved = canvas.mapToImage(QPointF(canvas.width() / 2, canvas.height() / 2))
    assert moved.x() > centre.x() and moved.y() == centre.y()
    qtbot.keyClick(canvas, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    further = canvas.mapToImage(QPointF(canvas.width() / 2, canvas.height() / 2))
    assert further.y() - moved.y() > 4 * (moved.x() - centre.x()) * canvas.height() / \
        canvas.width() * 0.9


def test_the_shortcut_sheet_lists_every_shortcut(qtbot, window):
    from PySide6.QtGui import QKeySequence

    from app.windows.shortcut_sheet import ShortcutSheet, shortcut_rows

    rows = shortcut_rows(window.menuBar())
    listed = " | ".join(keys for _, keys, _ in rows)
    actions = [a for m in window.menuBar().actions() if m.menu() for a in m.menu().actions()]
    with_keys = [a for a in actions if a.shortcuts()]
    assert len(with_keys) > 25
    for action in with_keys:
        for key in action.shortcuts():
            assert key.toString(QKeySequence.SequenceFormat.NativeText) in listed, action.text()
    for gesture in ("Esc", "Alt + drag", "\\ (hold)", "Arrow keys (Shift: further)"):
        assert gesture in listed
    sheet = ShortcutSheet(window.menuBar(), window)
    assert sheet.rows == rows
    sheet.deleteLater()


def test_split_slider_shows_before_and_after(qtbot, window, photo):
    _quick_removal(qtbot, window, photo)
    assert not _is_red(_shown_colour(window, 230, 175))
    window.split_slider.setValue(60)  # the line right of the object: the original there
    assert _is_red(_shown_colour(window, 230, 175))
    assert window.canvas.split() == pytest.approx(0.6)
    window.split_slider.setValue(30)  # the line left of it: the result there
    assert not _is_red(_shown_colour(window, 230, 175))
    window.split_slider.setValue(0)
    assert not _is_red(_shown_colour(window, 230, 175))
    np.testing.assert_array_equal(np.asarray(window.canvas.document().mask.array).any(), False)
