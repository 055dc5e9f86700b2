"""Shared fixtures. Everything here works offline, from the reference fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Never the person's own folders: settings (QSettings), logs, model weights and caches of
# the app and of every subprocess a test starts go to a throw-away home for this run.
_HOME = Path(tempfile.mkdtemp(prefix="moebius-test-home-"))
for _var, _sub in (("HOME", ""), ("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                   ("XDG_STATE_HOME", ".local/state"), ("XDG_CACHE_HOME", ".cache")):
    os.environ[_var] = str(_HOME / _sub)
os.environ.pop("MOEBIUS_MODELS_DIR", None)

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(os.environ.get("MOEBIUS_REFERENCE_DIR", ROOT / "tests" / "fixtures" / "moebius"))


def pytest_configure(config):
    if not (REFERENCE / "manifest_tiny.json").is_file():
        raise pytest.UsageError(f"reference fixtures not found in {REFERENCE}")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    # Results must not depend on the thread count; two threads keep CI predictable.
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))


def golden(name: str) -> dict:
    from safetensors.torch import load_file

    return load_file(str(REFERENCE / f"golden_{name}.safetensors"))


def max_rel(got, ref) -> float:
    """max |got - ref| / max |ref|: the reference README's error measure."""
    return float((got.float() - ref.float()).abs().max() / ref.float().abs().max())


@pytest.fixture(scope="session")
def tiny_model():
    from engine.net.config import MoebiusConfig
    from engine.net.model import RemovalModel
    from engine.net.weight_fill import fill_module_

    return fill_module_(RemovalModel(MoebiusConfig.tiny()))


@pytest.fixture(scope="session")
def full_model():
    from engine.net.config import MoebiusConfig
    from engine.net.model import RemovalModel
    from engine.net.weight_fill import fill_module_

    return fill_module_(RemovalModel(MoebiusConfig.full()))


@pytest.fixture(scope="session")
def tiny_vae():
    from engine.net.vae import Vae

    return Vae.load(REFERENCE / "tiny_vae")


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory, tiny_model) -> Path:
    """The filled tiny network saved exactly like the authors' checkpoints."""
    from engine.net.checkpoint import save_bin

    path = tmp_path_factory.mktemp("tiny_weights") / "diffusion_pytorch_model.bin"
    save_bin(tiny_model, path)
    return path


@pytest.fixture(scope="session")
def tiny_inpainter(tiny_model, tiny_vae):
    from engine.sampling.device import choose
    from engine.sampling.inpainter import MoebiusInpainter

    return MoebiusInpainter(tiny_model, tiny_vae, choose("cpu"))


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, tiny_weights):
    """A models folder with the tiny network installed as Places2, plus the tiny VAE."""
    from engine.net.config import MoebiusConfig
    from engine.weights.store import WeightStore

    store = WeightStore(tmp_path_factory.mktemp("models"), config=MoebiusConfig.tiny(),
                        vae_config=REFERENCE / "tiny_vae" / "config.json")
    store.import_weights("vae", REFERENCE / "tiny_vae")
    store.import_weights("ft_places2", tiny_weights)
    return store


@pytest.fixture
def tiny_models_dir(tiny_store, monkeypatch) -> Path:
    """The tiny models folder, selected for code that reads MOEBIUS_MODELS_DIR."""
    monkeypatch.setenv("MOEBIUS_MODELS_DIR", str(tiny_store.root))
    return tiny_store.root


@pytest.fixture(autouse=True)
def _own_config_folder(tmp_path_factory, monkeypatch):
    """Each test has its own user config folder, so the settings file that the command line
    and the app share (engine/weights/location.py) never carries over between tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))


# ---- a fake model server (tests/fakehub.py) ------------------------------------------


@pytest.fixture(scope="session")
def served_files(tiny_weights, reference_dir, tmp_path_factory) -> dict:
    """Repo path -> bytes: the tiny UNet as the authors' .bin, the tiny VAE re-saved as .bin."""
    import torch
    from safetensors.torch import load_file

    from engine.weights import zoo

    vae_bin = tmp_path_factory.mktemp("vae_bin") / "diffusion_pytorch_model.bin"
    torch.save(load_file(str(reference_dir / "tiny_vae" / "diffusion_pytorch_model.safetensors")),
               vae_bin)
    unet = tiny_weights.read_bytes()
    files = {(zoo.MOEBIUS_REPO, f"{v}/diffusion_pytorch_model.bin"): unet for v in zoo.VARIANTS}
    config = reference_dir / "tiny_vae" / "config.json"
    files[(zoo.VAE_REPO, "vae/config.json")] = config.read_bytes()
    files[(zoo.VAE_REPO, "vae/diffusion_pytorch_model.bin")] = vae_bin.read_bytes()
    return files


@pytest.fixture
def hub(served_files, monkeypatch, tmp_path):
    """A fake Hugging Face hub on 127.0.0.1 serving the tiny models (tests/fakehub.py);
    huggingface_hub is pointed at it for the test."""
    from huggingface_hub import constants

    from tests.fakehub import FakeHub

    fake = FakeHub()
    for (repo, path), data in served_files.items():
        fake.add(repo, path, data)
    fake.start()
    # huggingface_hub reads these at import time, so the constants are patched too.
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    monkeypatch.setattr(constants, "ENDPOINT", fake.url)
    template = fake.url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _no_modal_dialog_waits_for_a_person(request, monkeypatch):
    """A modal dialog nobody answers would hang the run (its event loop never returns to
    Python, so no timeout fires): any a test does not answer itself fails at once. Tests
    answer them by patching these (tests/dialogs.py), which overrides this guard."""
    if "PySide6.QtWidgets" not in __import__("sys").modules:
        return
    from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

    def refuse(*args, **kwargs):
        raise AssertionError(f"an unanswered modal dialog was opened in {request.node.name}")

    for name in ("exec", "question", "warning", "information", "critical", "about"):
        monkeypatch.setattr(QMessageBox, name, refuse)
    for name in ("getOpenFileName", "getSaveFileName", "getExistingDirectory"):
        monkeypatch.setattr(QFileDialog, name, refuse)
    for name in ("getInt", "getText", "getItem", "getDouble"):
        monkeypatch.setattr(QInputDialog, name, refuse)


@pytest.fixture(autouse=True)
def _qt_objects_die_on_the_gui_thread(request):
    """Windows a Qt test leaves behind must be freed here, on the GUI thread. Left to
    Python's cyclic collector, they can be freed whenever a later test's worker thread
    happens to allocate, and a QObject freed off its own thread leaves its timers behind:
    the next timer event then reaches freed memory and the run segfaults."""
    yield
    if "qtbot" not in request.fixturenames:
        return
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture(autouse=True)
def _denormals_as_the_process_started():
    """Loading a model on the CPU makes the process flush denormals to zero
    (engine/sampling/device.py, tune_cpu_runtime); hypothesis then refuses every float
    strategy. Each test starts with the default."""
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_flush_denormal(False)


@pytest.fixture
def settings(tmp_path):
    """The app's settings in a file of the test's own (never the person's)."""
    from PySide6.QtCore import QSettings

    from app.settings import Settings

    return Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def photo(tmp_path):
    """A 480×360 PNG scene with one object, and the mask that covers it."""
    from PIL import Image

    from tests.photos import scene, with_object

    img, mask = with_object(scene(480, 360, seed=9), (200, 150, 260, 200))
    path = tmp_path / "photo.png"
    Image.fromarray(img).save(path)
    return path, img, mask
