"""One models folder for the command line and the app (issue 19, item 1), and installing
the autoencoder from files as people have them."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from engine.weights import location
from engine.weights.location import (
    config_file,
    configured_models_dir,
    models_folder,
    models_root,
    set_models_dir,
)
from engine.weights.store import Status, WeightStore


@pytest.fixture
def store(tmp_path, reference_dir) -> WeightStore:
    from engine.net.config import MoebiusConfig

    return WeightStore(tmp_path / "models", config=MoebiusConfig.tiny(),
                       vae_config=reference_dir / "tiny_vae" / "config.json")


def test_precedence_argument_environment_settings_default(tmp_path, monkeypatch):
    monkeypatch.delenv("MOEBIUS_MODELS_DIR", raising=False)
    assert models_folder().source == "default"
    assert models_root() == location.default_models_dir()
    set_models_dir(tmp_path / "chosen")
    assert models_folder() == location.ModelsFolder(tmp_path / "chosen", "settings")
    assert json.loads(config_file().read_text())["models_dir"] == str(tmp_path / "chosen")
    monkeypatch.setenv("MOEBIUS_MODELS_DIR", str(tmp_path / "env"))
    assert models_folder() == location.ModelsFolder(tmp_path / "env", "environment")
    assert models_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("MOEBIUS_MODELS_DIR")
    set_models_dir(None)
    assert configured_models_dir() is None and models_folder().source == "default"


def test_the_settings_file_keeps_other_keys_and_survives_damage(tmp_path):
    config_file().parent.mkdir(parents=True, exist_ok=True)
    config_file().write_text(json.dumps({"something_else": 3}))
    set_models_dir(tmp_path / "m")
    assert json.loads(config_file().read_text()) == {"something_else": 3,
                                                     "models_dir": str(tmp_path / "m")}
    config_file().write_text("{ not json")
    assert configured_models_dir() is None  # ignored (and logged), never a crash
    assert models_folder().source == "default"


def test_the_command_line_uses_the_folder_chosen_in_the_app(tmp_path, capsys, tiny_weights):
    from PySide6.QtCore import QSettings

    from app.settings import Settings
    from engine.cli import models as cli_models
    from engine.net.config import MoebiusConfig

    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    settings.models_dir = str(tmp_path / "from-app")  # what Preferences does
    parser = argparse.ArgumentParser()
    cli_models.add_parser(parser.add_subparsers(dest="command"))
    assert cli_models.run(parser.parse_args(["models", "list"])) == 0
    assert f"Models folder: {tmp_path / 'from-app'}" in capsys.readouterr().out
    # --models-dir still wins.
    args = parser.parse_args(["models", "--models-dir", str(tmp_path / "opt"), "list"])
    assert cli_models.run(args) == 0
    assert str(tmp_path / "opt") in capsys.readouterr().out
    # And the other way round: what the command line installs, the app sees.
    store = WeightStore(config=MoebiusConfig.tiny())
    assert store.root == tmp_path / "from-app"
    store.import_weights("ft_ffhq", tiny_weights)
    assert WeightStore().state("ft_ffhq").status == Status.READY


def test_an_earlier_app_setting_moves_to_the_shared_file(tmp_path):
    from PySide6.QtCore import QSettings

    from app.settings import Settings

    q = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    q.setValue("models/dir", str(tmp_path / "old-choice"))
    settings = Settings(q)
    assert settings.models_dir == str(tmp_path / "old-choice")
    assert configured_models_dir() == tmp_path / "old-choice"
    assert not q.contains("models/dir")


# ---- the autoencoder, from the files people have ------------------------------------------


@pytest.fixture
def vae_files(tmp_path, served_files):
    """The autoencoder as a browser leaves it: renamed downloads in a Downloads folder."""
    from engine.weights import zoo

    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    (downloads / "config (1).json").write_bytes(served_files[(zoo.VAE_REPO, "vae/config.json")])
    weights = downloads / "vae_diffusion_pytorch_model.bin"
    weights.write_bytes(served_files[(zoo.VAE_REPO, "vae/diffusion_pytorch_model.bin")])
    return downloads / "config (1).json", weights


def test_vae_from_two_files_with_any_names(store, vae_files):
    config, weights = vae_files
    assert store.identify([weights]) == "vae" and store.identify([config]) == "vae"
    state = store.import_weights("vae", [config, weights])
    assert state.status == Status.READY
    folder = store.folder("vae")
    assert (folder / "config.json").read_bytes() == config.read_bytes()
    assert (folder / "diffusion_pytorch_model.bin").read_bytes() == weights.read_bytes()


def test_vae_from_its_weights_file_alone(store, vae_files, reference_dir):
    _, weights = vae_files
    lonely = weights.parent.parent / "elsewhere" / weights.name
    lonely.parent.mkdir()
    shutil.copy(weights, lonely)
    assert store.import_weights("vae", lonely).status == Status.READY
    # Its configuration is fixed: ours stands in for the missing config.json (a copy).
    installed = store.folder("vae") / "config.json"
    assert installed.read_bytes() == (reference_dir / "tiny_vae" / "config.json").read_bytes()
    assert installed.stat().st_ino != (reference_dir / "tiny_vae" / "config.json").stat().st_ino


def test_a_network_file_is_not_taken_for_the_autoencoder(store, tiny_weights):
    from engine.errors import CheckpointError

    assert store.identify(tiny_weights) == "unet"
    with pytest.raises(CheckpointError, match="is a Moebius network"):
        store.import_weights("vae", tiny_weights)
    assert store.status("vae") == Status.MISSING


def test_size_on_disk_counts_partial_downloads(store, tiny_weights):
    assert store.size_on_disk("ft_places2") == 0
    store.import_weights("ft_places2", tiny_weights)
    size = store.size_on_disk("ft_places2")
    assert size >= tiny_weights.stat().st_size
    partial = store.folder("ft_ffhq") / ".incoming" / "x.part"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"0" * 1000)
    assert store.size_on_disk("ft_ffhq") == 1000


def test_the_missing_weights_dialog_installs_the_vae_file_it_is_given(
        qtbot, tmp_path, store, vae_files, tiny_weights):
    """The issue's first finding: Import from disk took the VAE file and refused it."""
    from app.jobs.worker import Worker
    from app.windows.model_dialog import ModelDialog
    from engine.removal.run import EngineHost

    worker = Worker(EngineHost())
    dialog = ModelDialog("ft_places2", store, worker)
    _, weights = vae_files
    with qtbot.waitSignal(dialog.panel.done, timeout=60000):
        dialog.import_path([weights])
    assert store.status("vae") == Status.READY
    assert "autoencoder is installed" in dialog.status.text()
    assert "Places" in dialog.status.text() and "python" not in dialog.status.text()
    with qtbot.waitSignal(dialog.accepted, timeout=60000):
        dialog.import_path(Path(tiny_weights))
    assert store.status("ft_places2") == Status.READY
    worker.shutdown()


def test_the_offline_message_is_plain(store, monkeypatch, tmp_path):
    """No "[Errno -2] Name or service not known", no DNS; the mirror setting is named only
    to people who set it; every missing file's address is listed."""
    from engine.errors import HubUnreachable
    from engine.weights import zoo
    from tests.fakehub import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    offline = WeightStore(store.root, config=store.config, vae_config=store.vae_config,
                          endpoint=dead)
    with pytest.raises(HubUnreachable) as err:
        offline.download("ft_ffhq", retries=0)
    message = str(err.value)
    assert "offline" in message and "Errno" not in message and "DNS" not in message
    assert "HF_ENDPOINT" not in message
    for url in (*zoo.resolve("ft_ffhq").urls(), *zoo.VAE.urls()):
        assert url in message
    monkeypatch.setenv("HF_ENDPOINT", dead)
    with pytest.raises(HubUnreachable, match=f"HF_ENDPOINT={dead}"):
        WeightStore(store.root, config=store.config, vae_config=store.vae_config).download(
            "vae", retries=0)
