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
