"""The program's entry point: the command line or the desktop app.

`main(argv)` sends `[-v] remove|batch|models ...` (and --help, --version) to the command
line, anything else to the app: logging, the crash handler, the window. Nothing here
imports torch or diffusers: the window must appear first. The model loads on the worker
thread when the first removal needs it.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
import traceback
from pathlib import Path

from engine.about import APP_DIR_NAME, APP_ID, APP_NAME

log = logging.getLogger(__name__)

CLI_GLOBAL_FLAGS = {"-v", "--verbose"}  # options the command line takes before a command
CLI_ONLY = {"-h", "--help", "--version"}


def wants_cli(argv: list[str]) -> bool:
    """True when argv names a command-line command, after any global options."""
    from engine.cli.main import COMMANDS

    for arg in argv:
        if arg in CLI_ONLY or arg in COMMANDS:
            return True
        if arg not in CLI_GLOBAL_FLAGS:
            return False
    return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_cli(argv):
        from engine.cli.main import main as cli_main

        return cli_main(argv)
    return run(argv)




def log_file() -> Path:
    from platformdirs import user_log_dir

    folder = Path(user_log_dir(APP_DIR_NAME, appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{APP_ID}.log"


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
    from PySide6.QtCore import QCoreApplication, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

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

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    parser = argparse.ArgumentParser(prog=APP_ID)
    parser.add_argument("photo", nargs="?", help="a photo to open")
    parser.add_argument("--quit-after", type=int, metavar="MS", help=argparse.SUPPRESS)
    parser.add_argument("--smoke-test", action="store_true", help=argparse.SUPPRESS)
    args, qt_args = parser.parse_known_args(argv)

    log_path = setup_logging()
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0], *qt_args])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_DIR_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName(APP_ID)  # matches the .desktop entry (Wayland, docks)
    from app.assets import ICON

    if ICON.is_file():
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(ICON)))
    install_crash_handler(log_path)
    if args.smoke_test:  # installer/smoke_test.py: sample photo, Quick removal, checks, exit
        from app.tools.smoke import run as smoke_test

        return smoke_test(app)

    from app.windows.device_notice import show_device_notice
    from app.windows.main_window import MainWindow

    window = MainWindow()
    window.show()
    QTimer.singleShot(0, lambda: show_device_notice(window.settings, window.statusBar(),
                                                    window.device_status))
    if args.photo:
        QTimer.singleShot(0, lambda: window.open_path(Path(args.photo)))
    if args.quit_after is not None:  # smoke tests: start, then close cleanly
        QTimer.singleShot(args.quit_after, window.close)
    code = app.exec()
    return _leave(code)


def _leave(code: int) -> int:
    """The window is gone. A job still in a part that cannot be interrupted (reading a
    weight file) when it closed: give it a moment, then leave without it (nothing of the
    person's is in it; saves are synchronous and atomic)."""
    from app.jobs.worker import wait_for_abandoned

    if not wait_for_abandoned(2000):
        log.info("leaving a background job unfinished")
        logging.shutdown()
        os._exit(code)
    return code
