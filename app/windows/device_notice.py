"""Said once, at start-up: that a GPU build of the app exists (the CPU build on a machine
with an NVIDIA driver), or why this GPU build will run on the CPU (no driver, or one too
old). Found without importing torch (engine/sampling/hardware.py), so it costs the start
nothing. The status bar says it once per notice; the device label keeps it as its tooltip
and Preferences shows it beside the device in use."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QLabel, QStatusBar

from app.settings import Settings

log = logging.getLogger(__name__)

SHOWN_FOR_MS = 30_000


def show_device_notice(settings: Settings, status_bar: QStatusBar, label: QLabel) -> str | None:
    """Show the start-up notice if there is one; returns it."""
    from engine.sampling.hardware import startup_notice

    notice = startup_notice()
    if not notice:
        return None
    log.info("%s", notice)
    label.setToolTip(notice)
    if settings.device_notice != notice:  # a new notice (new build, driver or GPU)
        status_bar.showMessage(notice, SHOWN_FOR_MS)
        settings.device_notice = notice
    return notice
