"""Start the desktop app: logging, the crash handler, the window.

Nothing here imports torch or diffusers: the window must appear first. The model loads
on the worker thread when the first removal needs it.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

log = logging.getLogger(__name__)

APP_NAME = "Moebius Studio"


def log_file() -> Path:
    from platformdirs import user_log_dir

    folder = Path(user_log_dir("MoebiusStudio", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "moebius-studio.log"


def setup_logging() -> Path | None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    try:
        path = log_file()
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=2,
                                                       encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return path


def install_crash_handler(log_path: Path | None) -> None:
    """Uncaught errors are logged and shown; the app keeps running instead of vanishing."""

    def show(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            QCoreApplication.quit()
            return
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("uncaught exception:\n%s", text)
        if QApplication.instance() is None:
            return
        box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME,
                          f"Something went wrong: {exc}\n\nYour photo has not been changed on "
                          "disk. You can keep working, or save your work and restart.")
        box.setDetailedText(text + (f"\nLog file: {log_path}" if log_path else ""))
        box.exec()

    def in_thread(args):
        # Not on the GUI thread: hand it over, dialogs may only open there.
        QTimer.singleShot(0, lambda: show(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook = show
    threading.excepthook = in_thread


def run(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="moebius-studio")
    parser.add_argument("photo", nargs="?", help="a photo to open")
    parser.add_argument("--quit-after", type=int, metavar="MS", help=argparse.SUPPRESS)
    parser.add_argument("--smoke-test", action="store_true", help=argparse.SUPPRESS)
    args, qt_args = parser.parse_known_args(argv)

    log_path = setup_logging()
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName("MoebiusStudio")
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName("moebius-studio")  # matches the .desktop entry (Wayland, docks)
    icon = Path(__file__).resolve().parent.parent / "resources" / "icon.png"
    if icon.is_file():
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon)))
    install_crash_handler(log_path)
    if args.smoke_test:  # installer/smoke_test.py: sample photo, Quick removal, checks, exit
        from app.smoke import run as smoke_test

        return smoke_test(app)

    from app.main_window import MainWindow

    window = MainWindow()
    window.show()
    if args.photo:
        QTimer.singleShot(0, lambda: window.open_path(Path(args.photo)))
    if args.quit_after is not None:  # smoke tests: start, then close cleanly
        QTimer.singleShot(args.quit_after, window.close)
    return app.exec()
