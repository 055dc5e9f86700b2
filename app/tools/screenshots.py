"""Take screenshots of the app for people to look at (and for the README).

    xvfb-run -s "-screen 0 1600x1000x24" python -m app.tools.screenshots OUT_DIR [--engine quick]

Opens the sample photo, paints a mask over the power pole and the sign, grabs the
window, runs a removal with the chosen engine, and grabs it again; then the model
manager as on first use (nothing installed, Places part-way through its download, in a
temporary models folder). Settings go to a temporary file, so the person's own
preferences and models are untouched.

With `--tiny` (and `--engine ft_places2`) the removal runs the tests' tiny stand-in model
(filled, untrained weights: its fills are coloured noise), to show the live preview
part-way (5-preview.png) and the strip of three variations (6-variations.png) on a
machine without the real weights.
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
    ap.add_argument("--tiny", action="store_true",
                    help="run the tests' tiny stand-in model (no real weights needed)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    _app = QApplication.instance() or QApplication(sys.argv[:1])  # noqa: F841 - keep alive
    from app.assets import SAMPLE_PHOTO
    from app.settings import Settings
    from app.windows.main_window import MainWindow

    temp = Path(tempfile.mkdtemp())
    settings = Settings(QSettings(str(temp / "settings.ini"), QSettings.Format.IniFormat))
    settings.engine_choice = args.engine
    store = _first_use_store(temp / "models")
    if args.tiny:
        settings.steps = 12
        settings.live_preview = True
    window = MainWindow(settings, store=_tiny_store(temp / "tiny") if args.tiny else store)
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
    if args.tiny:
        _preview_and_variations(window, args.out)

    from app.windows.model_manager import ModelManager

    manager = ModelManager(store, window.worker, window, "ft_places2")
    manager.show()
    wait(300)
    manager.grab().save(str(args.out / "4-models.png"))
    manager.close()
    window.canvas.history.setClean()  # nothing to ask about on close
    window.close()
    print(f"screenshots in {args.out}")  # noqa: T201 - a command-line tool
    return 0


def _preview_and_variations(window, out: Path) -> None:
    """Undo the removal; run it again, grabbing the preview half-way; then with three
    variations, grabbing the strip."""
    window.canvas.undo()
    done = QEventLoop()
    window.jobs.finished.connect(done.quit)
    steps = window.settings.steps

    def grab_half_way(photo, patches) -> None:
        event = window.jobs._runs[0].last_event if window.jobs._runs else None
        if event is not None and event.step == steps // 2:
            window.grab().save(str(out / "5-preview.png"))

    window.jobs.preview.connect(grab_half_way)
    window.remove()
    done.exec()
    window.jobs.preview.disconnect(grab_half_way)
    wait(300)
    window.canvas.undo()
    window.settings.variations = 3
    window.remove()
    done.exec()
    wait(300)
    window.photo.choose(1)
    wait(200)
    window.grab().save(str(out / "6-variations.png"))
    window.photo.discard_choice()


def _tiny_store(root: Path):
    """A models folder with the tests' tiny network as Places and the tiny autoencoder."""
    from engine.net.checkpoint import save_bin
    from engine.net.config import MoebiusConfig
    from engine.net.model import RemovalModel
    from engine.net.weight_fill import fill_module_
    from engine.weights.store import WeightStore

    fixtures = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "moebius"
    unet = root / "unet" / "diffusion_pytorch_model.bin"
    unet.parent.mkdir(parents=True)
    save_bin(fill_module_(RemovalModel(MoebiusConfig.tiny())), unet)
    store = WeightStore(root / "models", config=MoebiusConfig.tiny(),
                        vae_config=fixtures / "tiny_vae" / "config.json")
    store.import_weights("vae", fixtures / "tiny_vae")
    store.import_weights("ft_places2", unet)
    return store


def _first_use_store(root: Path):
    """A models folder as on first use, with the Places download interrupted part-way (a
    sparse file: no disk space is used)."""
    from engine.weights.store import INCOMING, WeightStore

    store = WeightStore(root)
    part = store.folder("ft_places2") / INCOMING / "diffusion_pytorch_model.bin.partial.part"
    part.parent.mkdir(parents=True)
    with open(part, "wb") as f:
        f.truncate(412_000_000)
    return store


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
