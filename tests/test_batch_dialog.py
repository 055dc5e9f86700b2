"""The batch dialog (offscreen): run a folder, cancel cleanly, open the output folder."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings
from PySide6.QtGui import QDesktopServices

from app.jobs.worker import Worker
from app.settings import Settings
from app.windows.batch_dialog import STEPS, BatchDialog
from engine.removal.batch import REPORT_NAME
from engine.removal.batch_plan import BOOKKEEPING
from engine.removal.run import EngineHost
from engine.sampling.device import Placement
from tests.photos import scene, with_object

pytestmark = pytest.mark.gui


class SlowInpainter:
    """Stands in for the network: sleeps per step and honours cancellation like it."""

    image_size = 64
    placement = Placement("cpu", "float32")

    def __init__(self, delay: float):
        self.delay = delay

    def inpaint(self, images, masks, settings, seed, cancel=None, phases=False):
        for i in range(settings.network_calls):
            time.sleep(self.delay)
            if cancel is not None:
                cancel.raise_if_cancelled()
            yield SimpleNamespace(index=i)
        out = images.copy()
        out[masks.astype(bool)] = 128
        return out


@pytest.fixture
def settings(tmp_path):
    s = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    s.engine_choice = "quick"
    s.seed = 5
    return s


@pytest.fixture
def loads():
    return []


@pytest.fixture
def worker(loads):
    def loader(variant, placement):  # slow, like reading real weights; off the GUI thread
        loads.append(threading.current_thread() is threading.main_thread())
        time.sleep(0.3)
        return SlowInpainter(0.02)

    w = Worker(EngineHost(loader=loader))
    yield w
    w.shutdown()


def _folder(tmp_path, count=3, extras=True):
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir(), masks.mkdir()
    for i in range(count):
        img, mask = with_object(scene(64, 48, seed=i), (24, 16, 40, 32))
        Image.fromarray(img).save(src / f"p{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(masks / f"p{i}_mask.png")
    if extras:
        (src / "broken.png").write_text("not a picture")
        Image.fromarray(np.zeros((4, 4), np.uint8) + 255).save(masks / "broken.png")
        Image.fromarray(scene(32, 24)).save(src / "orphan.png")
    return src, masks, tmp_path / "out"


def _dialog(qtbot, worker, settings, src, masks, out):
    dlg = BatchDialog(worker, settings)
    qtbot.addWidget(dlg)
    dlg.input_edit.setText(str(src))
    dlg.output_edit.setText(str(out))
    dlg.mask_edit.setText(str(masks))
    return dlg


def _statuses(dlg) -> dict[str, str]:
    rows = (dlg.table.topLevelItem(i) for i in range(dlg.table.topLevelItemCount()))
    return {r.text(0): r.text(1) for r in rows}


def test_running_a_folder_fills_the_list_and_finishes(qtbot, worker, settings, tmp_path,
                                                      monkeypatch):
    src, masks, out = _folder(tmp_path)
    dlg = _dialog(qtbot, worker, settings, src, masks, out)
    assert "Quick" in dlg.settings_label.text()
    assert not dlg.open_button.isEnabled()
    with qtbot.waitSignal(dlg.batchFinished, timeout=30000) as blocker:
        dlg.start_button.click()
        assert dlg.running and not dlg.start_button.isEnabled()
    summary = blocker.args[0]
    assert summary.count("done") == 3
    assert _statuses(dlg) == {"p0.png": "done", "p1.png": "done", "p2.png": "done",
                              "broken.png": "failed", "orphan.png": "no mask"}
    assert "3 done, 1 failed, 1 no mask" in dlg.summary_label.text()
    assert dlg.progress.value() == STEPS
    assert all((out / f"p{i}.png").is_file() for i in range(3))
    assert dlg.start_button.isEnabled() and dlg.open_button.isEnabled()

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    dlg.open_button.click()
    assert [Path(u.toLocalFile()) for u in opened] == [out.resolve()]


def test_cancel_mid_run_stops_cleanly_and_the_dialog_stays_usable(qtbot, worker, settings,
                                                                   tmp_path, loads):
    settings.engine_choice = "ft_places2"
    settings.steps = 100  # ~2 s per photo with the slow stand-in: plenty of time to cancel
    src, masks, out = _folder(tmp_path, count=4, extras=False)
    dlg = _dialog(qtbot, worker, settings, src, masks, out)
    t0 = time.perf_counter()
    dlg.start()
    assert time.perf_counter() - t0 < 0.2  # the GUI thread never waits for the model
    assert "Moebius" in dlg.settings_label.text()
    qtbot.waitUntil(lambda: "step" in dlg.current_label.text(), timeout=15000)
    assert list(_statuses(dlg).values()) == ["working…"] + ["waiting"] * 3
    with qtbot.waitSignal(dlg.batchFinished, timeout=15000):
        dlg.cancel_button.click()
    assert list(_statuses(dlg).values()) == ["cancelled"] * 4
    assert sorted(p.name for p in out.iterdir()) == [BOOKKEEPING, REPORT_NAME]  # no partials
    assert "4 cancelled" in dlg.summary_label.text()
    assert loads == [False]  # loaded once, off the GUI thread

    # Still usable: the next run (now with the quick engine) does the whole folder.
    settings.engine_choice = "quick"
    with qtbot.waitSignal(dlg.batchFinished, timeout=30000) as blocker:
        assert dlg.start() is None
    assert blocker.args[0].count("done") == 4
    assert set(_statuses(dlg).values()) == {"done"}


def test_closing_while_running_cancels_then_closes(qtbot, worker, settings, tmp_path):
    settings.engine_choice = "ft_places2"
    settings.steps = 100
    src, masks, out = _folder(tmp_path, count=2, extras=False)
    dlg = _dialog(qtbot, worker, settings, src, masks, out)
    dlg.show()
    dlg.start()
    qtbot.waitUntil(lambda: "step" in dlg.current_label.text(), timeout=15000)
    with qtbot.waitSignal(dlg.batchFinished, timeout=15000):
        dlg.close()
        assert dlg.isVisible()  # it waits for the worker to let go, without blocking
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=5000)
    assert not list(out.glob("*.png"))


def test_bad_choices_are_reported_not_run(qtbot, worker, settings, tmp_path):
    src, masks, _ = _folder(tmp_path, count=1, extras=False)
    dlg = _dialog(qtbot, worker, settings, src, masks, "")
    assert "output folder" in dlg.start()
    assert not dlg.running
    dlg.output_edit.setText(str(src))  # the engine refuses: originals are never overwritten
    with qtbot.waitSignal(dlg.batchFinished, timeout=10000) as blocker:
        dlg.start()
    assert blocker.args[0] is None
    assert "may not be the input folder" in dlg.summary_label.text()
    assert dlg.start_button.isEnabled() and not dlg.open_button.isEnabled()


def test_one_mask_for_every_photo(qtbot, worker, settings, tmp_path):
    src, masks, out = _folder(tmp_path, count=2, extras=False)
    dlg = _dialog(qtbot, worker, settings, src, masks / "p0_mask.png", out)
    dlg.use_one_mask.setChecked(True)
    with qtbot.waitSignal(dlg.batchFinished, timeout=30000) as blocker:
        dlg.start()
    assert blocker.args[0].count("done") == 2
