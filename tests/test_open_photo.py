"""Jobs belong to the photo that started them; one handle per job; closing never blocks.

Regression tests for a removal started on photo A landing in photo B, and for the window
freezing while a model load or decode runs when it closes.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings

from app.jobs.worker import JobHandle, Worker
from app.open_photo import OpenPhoto
from app.settings import Settings
from app.windows.main_window import MainWindow
from engine.document.document import Document
from engine.events import Done, Failed, Progress
from engine.removal.job import RemovalResult
from engine.removal.run import EngineHost
from engine.sampling.device import Placement
from tests.photos import scene, with_object

pytestmark = pytest.mark.gui


class SlowInpainter:
    """Stands in for the network: a fixed grey fill, slowly, honouring cancel per step."""

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
    s.engine_choice = "ft_places2"
    s.steps = 40
    return s


def _photo_file(tmp_path, name, w, h, seed):
    img, mask = with_object(scene(w, h, seed=seed), (w // 3, h // 3, w // 2, h // 2))
    path = tmp_path / name
    Image.fromarray(img).save(path)
    return path, img, mask


class Loader:
    """A model loader that can be held (a long load) and that counts its calls."""

    def __init__(self, delay=0.05):
        self.release = threading.Event()
        self.release.set()
        self.calls = 0
        self.delay = delay

    def __call__(self, variant, placement):
        self.calls += 1
        self.release.wait(30)
        return SlowInpainter(self.delay)


@pytest.fixture
def loader():
    return Loader()


@pytest.fixture
def window(qtbot, settings, loader, monkeypatch):
    w = MainWindow(settings, host=EngineHost(loader=loader))
    monkeypatch.setattr(w, "ensure_model", lambda: True)  # the stand-in needs no weights
    w.show()
    yield w
    if w.photo is not None:
        w.photo.mark_saved()
    w.close()


def _paint(window, mask):
    window.canvas.setMaskArray(mask, "Brush stroke")


def _start_and_wait_for_steps(qtbot, window):
    texts = []
    window.jobs.progress.connect(lambda fraction, text: texts.append(text))
    window.remove()
    qtbot.waitUntil(lambda: any("step" in t for t in texts), timeout=20000)


@pytest.mark.parametrize("size_b", [(320, 240), (200, 150)], ids=["same size", "other size"])
def test_switching_photos_during_a_job_never_writes_into_the_new_photo(
        qtbot, window, tmp_path, size_b):
    a_path, a_img, a_mask = _photo_file(tmp_path, "a.png", 320, 240, 1)
    b_path, b_img, _ = _photo_file(tmp_path, "b.png", *size_b, 2)
    assert window.open_path(a_path)
    _paint(window, a_mask)
    a = window.photo
    _start_and_wait_for_steps(qtbot, window)
    handle = a.jobs()[0]
    a.mark_saved()  # nothing to ask about when B replaces A
    assert window.open_path(b_path)
    b = window.photo
    assert b is not a and a.closed and handle.cancel_requested
    qtbot.waitUntil(lambda: handle.is_finished, timeout=20000)
    qtbot.wait(50)
    assert np.array_equal(np.array(b.document.pixels), b_img)  # not one pixel of B changed
    assert b.history.count() == 0 and not b.is_modified
    assert window.history_panel.stack() is b.history
    assert not window.a_retry.isEnabled()  # Try again never re-runs A's job on B
    assert window.jobs.try_again(b) == "Nothing to try again: make a removal first."


def test_a_result_is_refused_by_any_other_photo(qtbot):
    worker = Worker(EngineHost())
    a = OpenPhoto(Document(scene(64, 48, seed=1)))
    b = OpenPhoto(Document(scene(64, 48, seed=2)))
    a.document.mask.fill_rect(10, 10, 20, 20)
    job = a.snapshot(Settings(QSettings()).removal_settings())

    def make_events(cancel, host):
        yield Done(RemovalResult((10, 10, 20, 20), np.zeros((10, 10, 3), np.uint8), 1, 0.0,
                                 "test", 0))

    handle = worker.submit(make_events)
    a.adopt(handle)
    qtbot.waitUntil(lambda: handle.is_finished, timeout=5000)
    before = np.array(b.document.pixels)
    assert not b.apply_removal(handle, job, handle.outcome.result, "Remove object")
    assert np.array_equal(np.array(b.document.pixels), before) and b.history.count() == 0
    assert a.apply_removal(handle, job, handle.outcome.result, "Remove object")
    assert a.history.count() == 1 and (np.array(a.document.pixels)[10:20, 10:20] == 0).all()
    a.close()
    assert not a.apply_removal(handle, job, handle.outcome.result, "again")  # closed
    worker.shutdown()


def test_closing_the_window_during_a_job_returns_at_once(qtbot, window, tmp_path):
    path, img, mask = _photo_file(tmp_path, "a.png", 320, 240, 3)
    window.open_path(path)
    _paint(window, mask)
    photo = window.photo
    _start_and_wait_for_steps(qtbot, window)
    handle = photo.jobs()[0]
    photo.mark_saved()
    t0 = time.perf_counter()
    window.close()
    assert time.perf_counter() - t0 < 0.1
    assert not window.isVisible() and handle.cancel_requested
    qtbot.waitUntil(lambda: handle.is_finished, timeout=20000)
    assert isinstance(handle.outcome, Failed) and handle.outcome.cancelled
    assert np.array_equal(np.array(photo.document.pixels), img)


def test_quitting_during_a_model_load_does_not_wait_for_it(qtbot, window, loader, tmp_path):
    path, img, mask = _photo_file(tmp_path, "a.png", 320, 240, 4)
    window.open_path(path)
    _paint(window, mask)
    loader.release.clear()  # the load now takes until we say so (like a 30 s load)
    stages = []
    window.jobs.progress.connect(lambda fraction, text: stages.append(text))
    window.remove()
    qtbot.waitUntil(lambda: loader.calls == 1, timeout=10000)
    handle = window.photo.jobs()[0]
    window.photo.mark_saved()
    t0 = time.perf_counter()
    window.close()
    closed_in = time.perf_counter() - t0
    loader.release.set()  # the load ends later, on its own
    assert closed_in < 0.1, f"closing blocked the GUI thread for {closed_in:.3f} s"
    qtbot.waitUntil(lambda: handle.is_finished, timeout=20000)
    assert handle.outcome.cancelled


def test_handle_signals_arrive_in_order_and_only_for_their_job(qtbot):
    worker = Worker(EngineHost())
    seen = {1: [], 2: []}

    def job(n):
        def make_events(cancel, host):
            yield Progress("work", 1, 2, 0.5, f"job {n}")
            yield Done(n)
        return make_events

    handles = [worker.submit(job(1)), worker.submit(job(2))]
    for n, h in zip((1, 2), handles, strict=True):
        h.started.connect(lambda n=n: seen[n].append("started"))
        h.progress.connect(lambda e, n=n: seen[n].append(e.message))
        h.done.connect(lambda e, n=n: seen[n].append(("done", e.result)))
        h.finished.connect(lambda n=n: seen[n].append("finished"))
    with qtbot.waitSignal(handles[1].finished, timeout=5000):
        pass
    assert seen[1] == ["started", "job 1", ("done", 1), "finished"]
    assert seen[2] == ["started", "job 2", ("done", 2), "finished"]
    assert not worker.busy
    worker.shutdown()


def test_a_job_cancelled_while_queued_never_starts_its_work(qtbot):
    worker = Worker(EngineHost())
    gate = threading.Event()
    ran = []

    def blocker(cancel, host):
        gate.wait(10)
        yield Done(None)

    def second(cancel, host):
        ran.append(True)
        yield Done(None)

    first = worker.submit(blocker)
    queued: JobHandle = worker.submit(second)
    queued.cancel()
    gate.set()
    qtbot.waitUntil(lambda: queued.is_finished, timeout=5000)
    assert first.outcome is not None and not ran
    assert isinstance(queued.outcome, Failed) and queued.outcome.cancelled
    worker.shutdown()
