"""`--smoke-test`: check an installed (or frozen) app works end to end, with nobody watching.

Runs inside the app, from source or from the PyInstaller bundle, with the app's own code:

1. shows the main window (prints how long after process start it appeared);
2. checks the bundled resources: the sample photo, the network configs, the icon fonts;
3. opens the sample photo, masks the sign in it and runs a Quick removal through
   `MainWindow.remove()` and the worker thread, exactly as a click on Remove does; checks
   that pixels changed inside the mask and nowhere outside it (Quick's band outside the
   mask is 0 px), and that undo restores the photo;
4. saves the sample as HEIC and reads it back (pillow-heif's libraries), and looks for faces
   in it (scikit-image's cascade and its data file, scipy), as opening a photo does;
5. runs the Moebius network code once on a tiny randomly initialised network (torch,
   diffusers' VAE and scheduler), so a bundle is known to run the real engine without
   downloading any weights.

Settings and edit histories go to a temporary folder: the user's preferences, recent files
and histories are untouched.
Prints one `smoke:` line per check and returns 0 when all passed, 1 otherwise. A stage that
hangs ends the process with status 3 after `TIMEOUT_S`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import numpy as np
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

TIMEOUT_S = 180  # whole run; a first import of torch from a cold disk can take a while
SIGN = (630, 830, 320, 480)  # rows, columns of the sign and its post in resources/sample.jpg
BLEND_BAND = 0  # px outside the mask the Quick engine may change: none (engines.py)
MIN_CHANGED = 0.9  # fraction of masked pixels that must differ after the removal
STARTED_ENV = "MOEBIUS_SMOKE_STARTED"  # time.time() when the launcher started the process


class SmokeFailure(Exception):
    pass


def report(text: str) -> None:
    print(f"smoke: {text}", flush=True)  # noqa: T201 - the smoke test's output is its report


def check(ok: bool, text: str) -> None:
    if not ok:
        raise SmokeFailure(text)


def process_start_time() -> float:
    """When the process started (epoch seconds): the launcher's clock reading if it passed
    one (installer/smoke_test.py does), else the system's record (to about a second)."""
    try:
        return float(os.environ[STARTED_ENV])
    except (KeyError, ValueError):
        pass
    try:
        import psutil

        return psutil.Process().create_time()
    except Exception:  # noqa: BLE001 - only used for a timing line
        return time.time()


def wait_until(app: QApplication, condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SmokeFailure(f"timed out waiting for {what}")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)


def run(app: QApplication) -> int:
    started = process_start_time()
    stage = ["starting"]

    def watchdog():
        report(f"FAILED: still {stage[0]} after {TIMEOUT_S} s")
        os._exit(3)  # a modal dialog or a stuck job: nothing else would end the process

    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(watchdog)
    timer.start(TIMEOUT_S * 1000)
    with tempfile.TemporaryDirectory(prefix="moebius-smoke-") as tmp:
        try:
            _run(app, started, stage, Path(tmp))
        except SmokeFailure as exc:
            report(f"FAILED while {stage[0]}: {exc}")
            return 1
        except Exception as exc:  # noqa: BLE001 - any error is a failed smoke test
            import traceback

            traceback.print_exc()
            report(f"FAILED while {stage[0]}: {type(exc).__name__}: {exc}")
            return 1
        finally:
            timer.stop()
    report("OK")
    return 0


def _run(app: QApplication, started: float, stage: list, tmp: Path) -> None:
    from app.assets import SAMPLE_PHOTO
    from app.icons import icon
    from app.settings import QUICK, Settings
    from app.windows.main_window import MainWindow
    from engine.document.history_store import HistoryStore

    stage[0] = "showing the window"
    settings = Settings(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings, history_store=HistoryStore(tmp / "history"))
    window.show()
    wait_until(app, lambda: window.windowHandle() is not None and window.windowHandle().isExposed(),
               30, "the window to appear")
    report(f"first window after {time.time() - started:.2f} s "
           f"(platform {app.platformName()}, frozen={bool(getattr(sys, 'frozen', False))})")

    stage[0] = "checking resources"
    check(SAMPLE_PHOTO.is_file(), f"sample photo missing: {SAMPLE_PHOTO}")
    check(not window.welcome.sample_button.isHidden(), "the welcome page hides the sample")
    from engine.net.config import CONFIG_DIR, MoebiusConfig

    for name in ("moebius.yaml", "tiny.yaml", "pixelhacker_vae.json"):
        check((CONFIG_DIR / name).is_file(), f"network config missing: {CONFIG_DIR / name}")
    check(MoebiusConfig.full().image_size == 512, "moebius.yaml did not parse as expected")
    glyph = icon("remove").pixmap(32, 32).toImage()
    check(not glyph.isNull() and any(glyph.pixelColor(x, y).alpha() > 0
                                     for x in range(32) for y in range(32)),
          "the icon font (qtawesome) did not draw")
    report(f"resources found ({SAMPLE_PHOTO.parent}, {CONFIG_DIR})")

    stage[0] = "removing with Quick"
    window.set_engine_choice(QUICK)
    check(window.open_path(SAMPLE_PHOTO), "the sample photo did not open")

    def photo():
        assert window.photo is not None
        return window.photo

    before = np.array(photo().document.pixels)
    mask = np.zeros(before.shape[:2], bool)
    r0, r1, c0, c1 = SIGN
    mask[r0:r1, c0:c1] = True
    check(window.canvas.setMaskArray(mask, "Smoke test"), "the mask was not accepted")
    outcome: dict[str, str] = {}
    window.jobs.finished.connect(lambda message: outcome.setdefault("done", message))
    window.jobs.failed.connect(lambda event: outcome.setdefault("failed", event.message))
    t0 = time.perf_counter()
    window.remove()
    check(window.jobs.running(window.photo) or bool(outcome), "Remove did not start a job")
    wait_until(app, lambda: bool(outcome), 60, "the removal")
    check("failed" not in outcome, f"the removal failed: {outcome.get('failed')}")
    after = np.array(photo().document.pixels)
    from engine.removal.composite import dilate

    outside = ~dilate(mask, BLEND_BAND)
    check(np.array_equal(after[outside], before[outside]), "pixels outside the mask changed")
    changed = float((after != before).any(-1)[mask].mean())
    check(changed >= MIN_CHANGED, f"only {changed:.0%} of the masked pixels changed")
    report(f"Quick removal in {time.perf_counter() - t0:.2f} s: {changed:.1%} of the mask "
           f"changed, nothing outside it ({outcome['done']})")
    window.canvas.undo()
    check(np.array_equal(np.array(photo().document.pixels), before), "undo failed")

    stage[0] = "closing the window"
    window.canvas.history.setClean()  # nothing to save: closing must not ask
    window.close()
    window.worker.shutdown()

    stage[0] = "reading HEIC and looking for faces"
    _check_heif_and_faces(before, tmp)

    stage[0] = "running the network code (torch, diffusers)"
    _check_network()


def _check_heif_and_faces(pixels: np.ndarray, tmp: Path) -> None:
    """The everyday extras a bundle could lose: HEIC files and the face detector."""
    from PIL import Image

    from engine.imageio.files import load_image
    from engine.imageio.heif import register_heif
    from engine.removal.faces import detect_faces

    t0 = time.perf_counter()
    register_heif()
    path = tmp / "sample.heic"
    Image.fromarray(pixels).save(path, quality=90)
    loaded = load_image(path)
    check(loaded.pixels.shape == pixels.shape, f"the HEIC read back as {loaded.pixels.shape}")
    faces = detect_faces(pixels)  # a landscape: the point is that the detector runs
    report(f"HEIC saved and read back, face detector ran ({len(faces)} found) in "
           f"{time.perf_counter() - t0:.2f} s")


def _check_network() -> None:
    """One tiny inpainting pass with random weights: torch and diffusers load and run."""
    import json
    from importlib.metadata import version

    t0 = time.perf_counter()
    import torch
    from diffusers import AutoencoderKL

    # What the weights download uses (engine/weights/store.py), imported as it does: no network.
    from huggingface_hub import constants, get_hf_file_metadata, get_session  # noqa: F401
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status  # noqa: F401

    from engine.events import drain
    from engine.net.config import CONFIG_DIR, MoebiusConfig
    from engine.net.model import RemovalModel
    from engine.net.vae import Vae
    from engine.net.weight_fill import fill_module_
    from engine.sampling.device import choose
    from engine.sampling.inpainter import MoebiusInpainter
    from engine.sampling.sampler import SamplerSettings
    from engine.weights.store import models_root

    imported = time.perf_counter() - t0
    torch.manual_seed(0)
    cfg = MoebiusConfig.tiny()
    vae_config = json.loads((CONFIG_DIR / "pixelhacker_vae.json").read_text())
    vae_config.update(block_out_channels=[32] * 4, sample_size=cfg.image_size)  # tiny widths
    vae = Vae(AutoencoderKL.from_config(vae_config), torch.device("cpu"), torch.float32)
    # The tests' deterministic weights.
    model = cast(RemovalModel, fill_module_(RemovalModel(cfg)).eval())
    inpainter = MoebiusInpainter(model, vae, choose("cpu", "exact"))
    size = cfg.image_size
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    hole = np.zeros((size, size), bool)
    hole[size // 4: size // 2, size // 4: size // 2] = True
    steps, out = drain(inpainter.inpaint(image, hole, SamplerSettings(steps=2), seed=0))
    last = steps[-1] if steps else None
    check(last is not None and bool(torch.isfinite(last.latents_out).all()),
          "the network produced no step or non-finite latents")
    check(out.shape == (1, size, size, 3) and out.dtype == np.uint8,
          f"unexpected network output {out.dtype} {out.shape}")
    report(f"network code ran in {time.perf_counter() - t0:.2f} s (imports {imported:.2f} s): "
           f"torch {version('torch')}, diffusers {version('diffusers')}, "
           f"huggingface_hub {version('huggingface_hub')}; weights would go to {models_root()}")
    # What a removal would run on here; a GPU build without a usable GPU says why.
    report(f"device: {choose('auto', 'auto').describe()}")
