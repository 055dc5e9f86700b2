"""Where the main window opens: where it was last time, or a comfortable default size,
and in both cases entirely inside the screen's available area (the desktop minus panels
and docks), whatever the screen's size and scaling. At 2x scaling a 1920x1080 screen is
960x540 device-independent pixels: a fixed 1280x820 window would put the status bar and
the History panel off-screen."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QPoint, QRect, QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

DEFAULT_SIZE = QSize(1280, 820)
# Room for the window manager's frame and title bar, which lie outside the geometry.
FRAME = QSize(16, 48)


def fit_rect(rect: QRect, available: QRect, frame: QSize = FRAME, centre: bool = False) -> QRect:
    """`rect` (a window's geometry, frame excluded) made to fit inside `available`."""
    width = max(min(rect.width(), available.width() - frame.width()), 1)
    height = max(min(rect.height(), available.height() - frame.height()), 1)
    out = QRect(rect.topLeft(), QSize(width, height))
    if centre:
        out.moveCenter(available.center())
    top_left = QPoint(frame.width() // 2, frame.height() - frame.width() // 2)
    low = available.topLeft() + top_left
    high = available.bottomRight() - QPoint(width - 1, height - 1) - QPoint(
        frame.width() // 2, frame.width() // 2)
    out.moveTo(min(max(out.x(), low.x()), max(high.x(), low.x())),
               min(max(out.y(), low.y()), max(high.y(), low.y())))
    return out


def place_window(window: QWidget, saved: QByteArray | None) -> None:
    """Restore `saved` (QWidget.saveGeometry) or use the default size, then fit the window
    into the available area of its screen."""
    restored = saved is not None and window.restoreGeometry(saved)
    if not restored:
        window.resize(DEFAULT_SIZE)
    if window.isMaximized() or window.isFullScreen():
        return
    screen = QGuiApplication.screenAt(window.geometry().center()) if restored else None
    screen = screen or window.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        return
    window.setGeometry(fit_rect(window.geometry(), screen.availableGeometry(),
                                centre=not restored))
