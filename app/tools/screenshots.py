"""Take screenshots of the app for people to look at (and for the README).

    xvfb-run -s "-screen 0 1600x1000x24" python -m app.tools.screenshots OUT_DIR [--engine quick]

Opens the sample photo, paints a mask over the power pole and the sign, grabs the
window, runs a removal with the chosen engine, and grabs it again. Settings go to a
temporary file, so the person's own preferences are untouched.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication


def wait(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--engine", default="quick", help="quick or a Moebius variant id")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    _app = QApplication.instance() or QApplication(sys.argv[:1])  # noqa: F841 - keep alive
    from app.assets import SAMPLE_PHOTO
    from app.settings import Settings
    from app.windows.main_window import MainWindow

    ini = Path(tempfile.mkdtemp()) / "settings.ini"
    settings = Settings(QSettings(str(ini), QSettings.Format.IniFormat))
    settings.engine_choice = args.engine
    window = MainWindow(settings)
    window.resize(1400, 900)
    window.show()
    wait(300)
    window.grab().save(str(args.out / "0-welcome.png"))

    window.open_path(SAMPLE_PHOTO)
    canvas = window.canvas
    canvas.fitToWindow()
    canvas.paintStroke([(1127, 295), (1127, 910)], brush_size=34)  # the pole
    canvas.fillRect(1080, 322, 1176, 350)  # its cross arm
    canvas.fillRect(322, 632, 478, 828)  # the sign
    wait(300)
    window.grab().save(str(args.out / "1-mask.png"))

    done = QEventLoop()
    window.jobs.finished.connect(done.quit)
    window.jobs.failed.connect(lambda *_: done.quit())
    window.remove()
    wait(200)
    window.grab().save(str(args.out / "2-working.png"))
    if window.jobs.running(window.photo):
        done.exec()
    wait(300)
    window.grab().save(str(args.out / "3-result.png"))
    window.canvas.history.setClean()  # nothing to ask about on close
    window.close()
    print(f"screenshots in {args.out}")  # noqa: T201 - a command-line tool
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
