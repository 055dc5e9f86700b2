"""Windows for the everyday-loop GUI tests: fixtures and helpers shared by
test_everyday_app.py and test_suggestion_app.py (import the fixtures by name)."""

from __future__ import annotations

import pytest
from PIL import Image
from PySide6.QtGui import QGuiApplication
from skimage import data

from app.windows.main_window import MainWindow
from engine.document.history_store import HistoryStore


@pytest.fixture(autouse=True)
def _empty_clipboard(qapp):
    """Offscreen Qt crashes at exit when its clipboard still holds URLs: leave it empty."""
    yield
    QGuiApplication.clipboard().clear()


@pytest.fixture
def history(tmp_path):
    return HistoryStore(tmp_path / "history")


def open_window(settings, history, tiny_store=None, autosave_ms=None):
    w = MainWindow(settings, store=tiny_store, history_store=history)
    if autosave_ms is not None:
        w.keeper._timer.setInterval(autosave_ms)
    w.show()
    return w


def close_window(qtbot, w, discard=True):
    """Close as a person would (answering Discard), and wait for the last history write."""
    if discard:
        w.canvas.history.setClean()
    thread = w.background._thread
    w.close()
    w.worker.shutdown()
    if thread is not None:
        qtbot.waitUntil(lambda: _finished(thread), timeout=20000)
    w.deleteLater()


def crash(w):
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
    w = open_window(settings, history, tiny_store)
    yield w
    close_window(qtbot, w)


def settle(qtbot, w, timeout=30000):
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


