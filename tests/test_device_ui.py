"""The app tells a person which device their removals run on: Preferences shows the
device in use and its memory; a start-up notice says once that a GPU build exists (or
why this GPU build runs on the CPU)."""

from __future__ import annotations

import psutil
import pytest
from PySide6.QtWidgets import QLabel, QMainWindow

from app.jobs.worker import Worker
from app.windows.device_notice import SHOWN_FOR_MS, show_device_notice
from app.windows.dialogs import PreferencesDialog
from engine.removal.run import EngineHost
from engine.sampling import hardware

pytestmark = pytest.mark.gui


def test_preferences_show_the_device_in_use_and_its_memory(qtbot, settings):
    worker = Worker(EngineHost())
    settings.device, settings.quality = "cpu", "exact"
    dialog = PreferencesDialog(settings, None, worker)
    qtbot.addWidget(dialog)
    try:
        with qtbot.waitSignal(dialog.in_use_ready, timeout=60000):
            pass
        ram = f"{psutil.virtual_memory().total / 1e9:.1f} GB RAM"
        assert dialog.in_use.text().splitlines()[0] == (
            f"CPU: {hardware.cpu_name()} · {ram} · fp32")
        # Another choice is checked again; one this machine lacks says so, plainly.
        with qtbot.waitSignal(dialog.in_use_ready, timeout=60000):
            dialog.device.setCurrentIndex(dialog.device.findData("mps"))
        assert dialog.in_use.text().startswith("--device mps: this machine has no Apple Metal")
    finally:
        dialog.reject()
        worker.shutdown()


def test_startup_notice_is_said_once_and_kept_as_a_tooltip(qtbot, settings, monkeypatch):
    notice = "This computer has an NVIDIA GPU, but this is the CPU build of Moebius Studio."
    monkeypatch.setattr(hardware, "startup_notice", lambda: notice)
    window = QMainWindow()
    qtbot.addWidget(window)
    label = QLabel()
    window.statusBar().addPermanentWidget(label)
    assert show_device_notice(settings, window.statusBar(), label) == notice
    assert window.statusBar().currentMessage() == notice and label.toolTip() == notice
    assert SHOWN_FOR_MS >= 10_000
    window.statusBar().clearMessage()
    show_device_notice(settings, window.statusBar(), label)  # the next start: not again
    assert window.statusBar().currentMessage() == "" and label.toolTip() == notice
    monkeypatch.setattr(hardware, "startup_notice", lambda: None)
    assert show_device_notice(settings, window.statusBar(), QLabel()) is None
