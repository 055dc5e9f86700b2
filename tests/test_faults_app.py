"""Fault suite, the app's file actions and mask checks (pytest-qt, offscreen).

Each case asserts the one message the person sees (a dialog of one sentence), that the
open photo and every file on disk are unchanged, and that nothing half-written remains.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.jobs.worker import Worker
from app.settings import Settings
from app.windows.main_window import MainWindow
from engine.removal.composite import dilate
from engine.removal.run import EngineHost
from tests.faults import Snapshot, one_line, photo_with_mask, save_mask, stale_temp
from tests.test_batch_dialog import _dialog, _statuses

pytestmark = pytest.mark.gui
POSIX = pytest.mark.skipif(os.name != "posix", reason="FIFOs, devices and symlink loops are "
                           "POSIX file kinds")


@pytest.fixture
def settings(tmp_path):
    s = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    s.engine_choice = "quick"
    return s


@pytest.fixture
def window(qtbot, settings, tiny_store):
    w = MainWindow(settings, store=tiny_store)
    w.show()
    yield w
    w.canvas.history.setClean()
    w.close()
    w.worker.shutdown()
    w.deleteLater()


@pytest.fixture
def opened(window, tmp_path):
    """The window with a photo open (files in tmp_path/photos)."""
    path, mask_path, img, mask = photo_with_mask(tmp_path / "photos", "photo.png", (160, 120))
    assert window.open_path(path)
    return dict(path=path, img=img, mask=mask, root=tmp_path)


@pytest.fixture
def warnings(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    return shown


# --- opening what is not a photo (item 5) ---------------------------------------------------

def _special(kind: str, folder):
    path = folder / f"bad-{kind}.png"
    if kind == "fifo":
        os.mkfifo(path)
        return path, "it is a pipe (FIFO), not a photo file"
    if kind == "device":
        return "/dev/zero", "it is a device, not a photo file"
    if kind == "sparse":
        with open(path, "wb") as f:
            f.truncate(20 * 1000**3)
        return path, "the file is 20.0 GB, larger than any photo Moebius Studio opens"
    if kind == "loop":
        path.symlink_to(path.name)
        return path, "it is a symbolic link that leads back to itself (a loop)"
    if kind == "truncated":
        data = (folder / "photo.png").read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path, "the PNG file is damaged or incomplete"
    if kind == "empty":
        path.write_bytes(b"")
        return path, "the file is empty (0 bytes)."
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", [
    pytest.param("fifo", marks=POSIX), pytest.param("device", marks=POSIX), "sparse",
    pytest.param("loop", marks=POSIX), "truncated", "empty",
])
def test_opening_what_is_not_a_photo_is_one_sentence_and_keeps_the_open_one(
        window, opened, warnings, kind):
    bad, says = _special(kind, opened["root"] / "photos")
    snap = Snapshot(opened["root"])
    assert not window.open_path(bad)
    assert one_line(warnings[0]).startswith(f"Cannot open '{bad}': {says}")
    assert window.photo.path == opened["path"]
    snap.unchanged()


# --- saving when the disk says no (items 3, 7, 8) -----------------------------------------------

def _save_as(window, monkeypatch, target) -> bool:
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    return window.save_as()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("name", ["copy.tif", "copy.jpg"])
def test_saving_to_a_full_disk_says_so_and_leaves_nothing(window, opened, warnings, monkeypatch,
                                                         capfd, name):
    real_open = os.open

    def full_disk(path, flags, mode=0o777, **kw):
        if str(path).endswith(".tmp"):
            return real_open("/dev/full", os.O_RDWR)
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr("engine.imageio.write.os.open", full_disk)
    snap = Snapshot(opened["root"])
    target = opened["root"] / "photos" / name
    assert not _save_as(window, monkeypatch, target)
    assert one_line(warnings[0]) == (f"Could not save: Cannot save '{target}': the disk is "
                                     "full. Free some space or save somewhere else.")
    assert "TIFF" not in capfd.readouterr().err  # no raw libtiff lines
    assert window.photo.path == opened["path"]
    snap.unchanged()


@pytest.mark.parametrize(("case", "says"), [
    ("missing folder", "the folder '{root}/gone' does not exist."),
    ("read-only", "the folder '{root}/photos' is read-only for you. Save somewhere else."),
    pytest.param("loop", "it is a symbolic link that leads back to itself (a loop)",
                 marks=POSIX),
])
def test_save_as_problems_are_found_before_encoding(window, opened, warnings, monkeypatch,
                                                    case, says):
    root = opened["root"]
    target = root / "photos" / "copy.png"
    if case == "missing folder":
        target = root / "gone" / "copy.png"
    elif case == "read-only":
        real = os.access
        monkeypatch.setattr("engine.imageio.checks.os.access",
                            lambda p, mode: False if mode & os.W_OK else real(p, mode))
    elif case == "loop":
        target.symlink_to(target.name)
    encoded = []
    monkeypatch.setattr("engine.imageio.files.encode", lambda *a, **k: encoded.append(a))
    snap = Snapshot(root)
    assert not _save_as(window, monkeypatch, target)
    assert one_line(warnings[0]).startswith(f"Could not save: Cannot save '{target}': ")
    assert says.format(root=root) in warnings[0]
    assert not encoded  # refused before the work
    snap.unchanged()


def test_saving_removes_what_a_killed_save_left(window, opened, monkeypatch):
    folder = opened["root"] / "photos"
    stale = stale_temp(folder, "copy.png")
    assert _save_as(window, monkeypatch, folder / "copy.png")
    assert not stale.exists()
    Image.open(folder / "copy.png").load()


# --- masks that make no sense (item 9; issue 19, item 6) ---------------------------------------

def test_remove_asks_when_the_mask_covers_most_of_the_photo(qtbot, window, opened, monkeypatch):
    asked: list[str] = []
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]

    def question(parent, title, text, *a, **k):
        asked.append(text)
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "question", question)
    big = np.zeros(opened["mask"].shape, bool)
    big[:, :110] = True  # 69 % of the photo
    window.canvas.setMaskArray(big, "Brush stroke")
    window.remove()
    assert asked[0].startswith("The mask covers 69% of the photo")
    assert not window.jobs.running(window.photo)  # No: nothing runs, nothing changes
    assert np.array_equal(np.array(window.photo.document.pixels), opened["img"])
    assert "Invert" in window.statusBar().currentMessage()
    with qtbot.waitSignal(window.jobs.finished, timeout=60000):
        window.remove()  # Yes: it runs
    assert len(asked) == 2
    assert (np.array(window.photo.document.pixels) != opened["img"]).any()


def test_remove_does_not_ask_for_an_ordinary_mask(qtbot, window, opened, monkeypatch):
    def question(*a, **k):
        raise AssertionError("asked about an ordinary mask")

    monkeypatch.setattr(QMessageBox, "question", question)
    window.canvas.setMaskArray(opened["mask"], "Brush stroke")
    with qtbot.waitSignal(window.jobs.finished, timeout=60000):
        window.remove()


def test_a_mask_loaded_in_the_stored_orientation_is_turned_like_the_photo(window, tmp_path,
                                                                         monkeypatch):
    _, _, stored, mask = photo_with_mask(tmp_path, size=(96, 64), mask_name=None)
    exif = Image.Exif()
    exif[0x0112] = 8  # shown turned 90° counter-clockwise: 64 × 96
    src = tmp_path / "turned.jpg"
    Image.fromarray(stored).save(src, quality=95, exif=exif.tobytes())
    mask_file = save_mask(tmp_path / "as-stored.png", mask)
    assert window.open_path(src)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(mask_file), ""))
    window.load_mask_dialog()
    assert np.array_equal(window.photo.document.mask.array, np.rot90(mask, 1))


def test_damaged_settings_fall_back_to_the_defaults(settings):
    settings.q.setValue("engine/guidance", "nan")
    settings.q.setValue("engine/steps", "0")
    settings.q.setValue("engine/seed", str(2**70))
    assert (settings.guidance, settings.steps, settings.seed) == (2.5, 20, -1)
    removal = settings.removal_settings()  # and a removal can be built from them
    assert removal.guidance == 2.5 and 0 <= removal.seed < 2**31


# --- the batch dialog: Masks are inverted, and the warning -----------------------------------

@pytest.fixture
def worker():
    w = Worker(EngineHost())
    yield w
    w.shutdown()


def _batch_folder(tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    truth = {}
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        _, _, img, mask = photo_with_mask(src, name, (96, 72), seed=i, mask_name=None)
        # a is masked the usual way; b and c the other way round (black = remove)
        save_mask(masks / name, mask if name == "a.png" else ~mask)
        truth[name] = (img, mask)
    return src, masks, tmp_path / "out", truth


def test_the_masks_are_inverted_box_builds_an_inverted_job(qtbot, worker, settings, tmp_path):
    src, masks, out, _ = _batch_folder(tmp_path)
    dlg = _dialog(qtbot, worker, settings, src, masks, out)
    assert not dlg.make_job().masks.invert
    dlg.invert_masks.setChecked(True)
    assert dlg.make_job().masks.invert and not dlg.make_job().masks.allow_large


@pytest.mark.parametrize("answer", ["invert", "anyway", "leave"])
def test_large_masks_are_skipped_with_a_warning_then_redone_as_the_person_says(
        qtbot, worker, settings, tmp_path, monkeypatch, answer):
    src, masks, out, truth = _batch_folder(tmp_path)
    dlg = _dialog(qtbot, worker, settings, src, masks, out)
    buttons = {"invert": "&Masks are inverted", "anyway": "&Clean them anyway",
               "leave": "&Leave them"}
    asked: list[str] = []

    def click(box):
        asked.append(box.text())
        next(b for b in box.buttons() if b.text() == buttons[answer]).click()

    monkeypatch.setattr(QMessageBox, "exec", click)
    runs: list[tuple[dict, str]] = []  # the list and the warning at the end of each run
    dlg.batchFinished.connect(lambda _: runs.append((_statuses(dlg),
                                                     dlg.warning_label.text())))
    snap = Snapshot(tmp_path)
    dlg.start_button.click()
    qtbot.waitUntil(lambda: len(runs) == (1 if answer == "leave" else 2) and not dlg.running,
                    timeout=30000)
    first, warning = runs[0]
    assert first == {"a.png": "done", "b.png": "mask too large", "c.png": "mask too large"}
    assert "2 photo(s) were not cleaned: their mask covers more than half" in warning
    assert asked == ["2 photo(s) were not cleaned because their mask covers more than half "
                     "of the photo."]
    if answer == "leave":
        assert not (out / "b.png").exists() and dlg.warning_label.text() == warning
        snap.unchanged(allow_new=(out / "a.png",))
        return
    second, warning = runs[1]
    assert second == {"a.png": "skipped", "b.png": "done", "c.png": "done"} and not warning
    assert dlg.invert_masks.isChecked() == (answer == "invert")
    for name in ("b.png", "c.png"):
        img, mask = truth[name]
        got = np.asarray(Image.open(out / name))
        if answer == "invert":  # the object is gone, the rest is as it was
            far = ~dilate(mask, 33)
            assert np.array_equal(got[far], img[far]) and (got != img)[mask].any()
        else:  # as confirmed: most of the photo was replaced
            assert (got != img).any(-1).mean() > 0.5
    snap.unchanged(allow_new=tuple(out / n for n in ("a.png", "b.png", "c.png")))
