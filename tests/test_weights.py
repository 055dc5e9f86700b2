"""The weights manager against a fake hub on 127.0.0.1: download, resume, cancel, errors,
import, verify, remove, the models folder and the `models` command. Never the internet."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.errors import (
    Cancelled,
    CheckpointError,
    DiskFull,
    HubFileNotFound,
    HubUnreachable,
    IntegrityError,
    WeightsMissing,
)
from engine.events import CancelToken
from engine.weights import zoo
from engine.weights.store import MARKER, VAE_CONFIG, Status, WeightStore, models_root
from tests.fakehub import free_port

UNET = "ft_places2/diffusion_pytorch_model.bin"
VAE_BIN = "vae/diffusion_pytorch_model.bin"


@pytest.fixture
def store(tmp_path, reference_dir) -> WeightStore:
    from engine.net.config import MoebiusConfig

    return WeightStore(
        tmp_path / "models", config=MoebiusConfig.tiny(),
        vae_config=reference_dir / "tiny_vae" / "config.json",
    )


@pytest.fixture
def vae_folder(tmp_path, served_files):
    folder = tmp_path / "my_vae"
    folder.mkdir()
    (folder / "config.json").write_bytes(served_files[(zoo.VAE_REPO, "vae/config.json")])
    (folder / "diffusion_pytorch_model.bin").write_bytes(served_files[(zoo.VAE_REPO, VAE_BIN)])
    return folder


def cdn(path: str) -> str:
    return f"cdn:{path}"


# ---- the zoo --------------------------------------------------------------------------


def test_zoo_names_and_aliases():
    assert list(zoo.VARIANTS) == ["pretrained", "ft_places2", "ft_celebahq", "ft_ffhq"]
    assert zoo.DEFAULT_VARIANT == "ft_places2"
    assert zoo.resolve("places2").id == "ft_places2" and zoo.resolve("General").id == "pretrained"
    assert zoo.resolve("celebahq").id == "ft_celebahq" and zoo.resolve("ffhq").id == "ft_ffhq"
    assert zoo.resolve("VAE") is zoo.VAE
    assert zoo.resolve("ft_places2").urls() == [
        "https://huggingface.co/hustvl/Moebius/resolve/main/ft_places2/diffusion_pytorch_model.bin"
    ]
    assert zoo.VAE.urls()[0] == "https://huggingface.co/hustvl/PixelHacker/resolve/main/vae/config.json"
    with pytest.raises(zoo.UnknownModel, match="choose one of"):
        zoo.resolve("sd15")


def test_importing_the_manager_loads_neither_torch_nor_the_hub_client():
    code = (
        "import sys, engine.weights.zoo, engine.weights.store, engine.cli.models\n"
        "print([m for m in ('torch', 'huggingface_hub', 'httpx') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.stdout.strip() == "[]"


# ---- downloads ------------------------------------------------------------------------


def test_download_installs_variant_and_vae(hub, store, served_files):
    assert store.status("ft_places2") == Status.MISSING
    assert store.status("vae") == Status.MISSING
    seen = []
    state = store.download("places2", progress=lambda d, t: seen.append((d, t)))
    assert state.status == Status.READY and store.status("vae") == Status.READY
    total = sum(len(b) for (r, p), b in served_files.items() if p == UNET or r == zoo.VAE_REPO)
    assert seen[-1] == (total, total)
    assert all(t == total for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) > 2
    unet, vae = store.paths("ft_places2")
    assert unet.read_bytes() == served_files[(zoo.MOEBIUS_REPO, UNET)]
    assert (vae / "config.json").is_file() and (vae / "diffusion_pytorch_model.bin").is_file()
    marker = json.loads((unet.parent / MARKER).read_text())
    sha = hashlib.sha256(unet.read_bytes()).hexdigest()
    assert marker["files"]["diffusion_pytorch_model.bin"]["sha256"] == sha
    assert not (unet.parent / ".incoming").exists()
    assert all(r.range is None for r in hub.requests)
    # Installed models are not fetched again; another variant reuses the VAE.
    before = len(hub.requests)
    store.download("ft_places2")
    assert len(hub.requests) == before
    store.download("ffhq")
    assert len(hub.served(cdn(VAE_BIN))) == 1


def test_corrupted_file_is_rejected(hub, store):
    hub.corrupt(UNET)
    with pytest.raises(IntegrityError, match="corrupted") as err:
        store.download("ft_places2")
    assert "models import ft_places2" in str(err.value)
    assert store.status("ft_places2") == Status.MISSING
    folder = store.folder("ft_places2")
    assert not (folder / MARKER).exists() and not (folder / "diffusion_pytorch_model.bin").exists()
    assert not list(folder.rglob("*.part"))


def test_truncated_transfer_resumes_on_the_next_call(hub, store, served_files):
    size = len(served_files[(zoo.MOEBIUS_REPO, UNET)])
    hub.drop(UNET, after=300_000)
    with pytest.raises(HubUnreachable, match="resume"):
        store.download("ft_places2", retries=0)
    state = store.state("ft_places2")
    assert state.status == Status.DOWNLOADING and state.partial_bytes == 300_000
    assert store.download("ft_places2").status == Status.READY
    first, second = hub.served(cdn(UNET))
    assert first.range is None and first.sent == 300_000
    assert second.range == "bytes=300000-" and second.status == 206
    assert second.sent == size - 300_000
    assert store.paths("ft_places2")[0].read_bytes() == served_files[(zoo.MOEBIUS_REPO, UNET)]


def test_dropped_connection_is_resumed_within_one_call(hub, store):
    hub.drop(UNET, after=100_000)
    assert store.download("ft_places2", retries=1).status == Status.READY
    assert [r.range for r in hub.served(cdn(UNET))] == [None, "bytes=100000-"]


def test_cancel_keeps_the_partial_file_and_a_later_download_resumes(hub, store, served_files):
    store.download("vae")
    hub.slow(UNET, chunk=16384, delay=0.01)
    token = CancelToken()

    def progress(done, total):
        if done >= 100_000:
            token.cancel()

    with pytest.raises(Cancelled):
        store.download("ft_places2", progress=progress, cancel=token)
    state = store.state("ft_places2")
    size = len(served_files[(zoo.MOEBIUS_REPO, UNET)])
    assert state.status == Status.DOWNLOADING and 100_000 <= state.partial_bytes < size
    assert not (state.folder / MARKER).exists()
    with pytest.raises(WeightsMissing, match="downloading"):
        store.paths("ft_places2")
    hub.clear_behaviours()
    assert store.download("ft_places2").status == Status.READY
    last = hub.served(cdn(UNET))[-1]
    assert last.range == f"bytes={state.partial_bytes}-"
    assert last.sent == size - state.partial_bytes


def test_cancel_from_another_thread(hub, store):
    """The GUI sets the token from its own thread while the worker downloads."""
    store.download("vae")
    hub.slow(UNET, chunk=8192, delay=0.02)
    token, started = CancelToken(), threading.Event()
    canceller = threading.Thread(target=lambda: started.wait(10) and token.cancel())
    canceller.start()
    with pytest.raises(Cancelled):
        store.download("ft_places2", progress=lambda d, t: d and started.set(), cancel=token)
    canceller.join()
    assert store.status("ft_places2") == Status.DOWNLOADING


def test_missing_file_on_the_hub(hub, store):
    hub.remove(zoo.MOEBIUS_REPO, "ft_ffhq/diffusion_pytorch_model.bin")
    with pytest.raises(HubFileNotFound) as err:
        store.download("ft_ffhq")
    message = str(err.value)
    assert "hustvl/Moebius/ft_ffhq/diffusion_pytorch_model.bin was not found" in message
    assert zoo.resolve("ft_ffhq").urls()[0] in message
    assert zoo.resolve("ft_ffhq").urls()[0].startswith("https://huggingface.co/hustvl/Moebius/resolve/")
    assert "python main.py models import ft_ffhq" in message
    assert store.status("ft_ffhq") == Status.MISSING


def test_server_error_is_reported_as_unreachable(hub, store):
    hub.fail("vae/config.json", 503)
    with pytest.raises(HubUnreachable, match="HTTP 503"):
        store.download("ft_places2")


def test_server_down_gives_the_manual_route(hub, store, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", dead)
    with pytest.raises(HubUnreachable) as err:
        store.download("ft_places2")
    message = str(err.value)
    assert "cannot reach" in message and dead in message
    assert "https://huggingface.co/hustvl/PixelHacker/resolve/main/vae/config.json" in message
    assert "python main.py models import vae" in message
    assert store.status("ft_places2") == Status.MISSING and store.status("vae") == Status.MISSING
    with pytest.raises(HubUnreachable) as err:
        store.download("vae", retries=0)
    assert not hub.requests


def test_not_enough_disk_space(hub, store, monkeypatch):
    import shutil

    from engine.weights import store as weights

    monkeypatch.setattr(weights.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 10))
    with pytest.raises(DiskFull, match="not enough disk space"):
        store.download("ft_places2")
    assert store.status("ft_places2") == Status.MISSING


# ---- import ---------------------------------------------------------------------------


def test_import_file_and_folders(store, tiny_weights, vae_folder, tmp_path):
    state = store.import_weights("ft_places2", tiny_weights)
    assert state.status == Status.READY
    installed = state.folder / "diffusion_pytorch_model.bin"
    assert installed.read_bytes() == tiny_weights.read_bytes()
    if os.stat(tiny_weights).st_dev == os.stat(state.folder).st_dev:
        assert os.path.samefile(installed, tiny_weights)  # hard link, not a copy
    assert store.import_weights("vae", vae_folder).status == Status.READY
    unet, vae = store.paths("ft_places2")
    assert unet == installed and vae == store.folder("vae")
    # A clone of the hub repository: the weights sit in a <variant>/ sub-folder.
    repo = tmp_path / "Moebius" / "ft_ffhq"
    repo.mkdir(parents=True)
    (repo / "diffusion_pytorch_model.bin").write_bytes(tiny_weights.read_bytes())
    assert store.import_weights("ffhq", repo.parent).status == Status.READY


def test_import_safetensors(store, tiny_model, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, str(path))
    state = store.import_weights("pretrained", path)
    assert state.status == Status.READY
    assert (state.folder / "diffusion_pytorch_model.safetensors").is_file()


def test_import_rejects_wrong_files_and_changes_nothing(store, tiny_weights, vae_folder, tmp_path):
    import torch

    with pytest.raises(CheckpointError, match="autoencoder"):
        store.import_weights("ft_places2", vae_folder / "diffusion_pytorch_model.bin")
    sd = torch.load(tiny_weights, weights_only=True)
    key = "embedding_layer.weight"
    sd[key] = torch.zeros(sd[key].shape[0], sd[key].shape[1] + 1)
    odd = tmp_path / "odd.bin"
    torch.save(sd, odd)
    with pytest.raises(CheckpointError, match="wrong shape"):
        store.import_weights("ft_places2", odd)
    junk = tmp_path / "notes.bin"
    junk.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.bin cannot be used .*is not a weight file"):
        store.import_weights("ft_places2", junk)
    with pytest.raises(CheckpointError, match="not a weight file"):
        store.import_weights("ft_places2", vae_folder / "config.json")
    with pytest.raises(CheckpointError, match="is a Moebius network .*not the autoencoder"):
        store.import_weights("vae", tmp_path / "odd.bin")
    assert store.status("ft_places2") == Status.MISSING and store.status("vae") == Status.MISSING
    assert not store.folder("ft_places2").exists()
    # A failed import over an installed model leaves it as it was.
    store.import_weights("ft_places2", tiny_weights)
    marker = (store.folder("ft_places2") / MARKER).read_text()
    with pytest.raises(CheckpointError):
        store.import_weights("ft_places2", odd)
    assert store.status("ft_places2") == Status.READY
    assert (store.folder("ft_places2") / MARKER).read_text() == marker
    with pytest.raises(CheckpointError, match="not the one Moebius needs"):
        WeightStore(store.root, vae_config=VAE_CONFIG).import_weights("vae", vae_folder)


# ---- verify, remove, root ---------------------------------------------------------------


def test_verify_detects_a_tampered_file(store, tiny_weights, vae_folder):
    store.import_weights("ft_places2", tiny_weights)
    store.import_weights("vae", vae_folder)
    verdicts = [s.status for s in store.verify_all()]
    assert verdicts == ["missing", "ready", "missing", "missing", "ready"]
    path = store.paths("ft_places2")[0]
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-200] ^= 0xFF
    path.unlink()  # the import hard-linked the original; leave it untouched
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # hide it from the quick check
    assert store.status("ft_places2") == Status.READY
    state = store.verify("ft_places2")
    assert state.status == Status.DAMAGED and "differs" in state.detail
    assert store.status("ft_places2") == Status.DAMAGED  # remembered
    with pytest.raises(WeightsMissing, match="damaged"):
        store.paths("ft_places2")
    # Touching the file is noticed without hashing.
    os.utime(store.folder("vae") / "config.json")
    assert store.status("vae") == Status.DAMAGED
    assert store.verify("vae").status == Status.READY  # same content: verified again


def test_files_copied_by_hand_are_verified_on_request(store, tiny_weights):
    folder = store.folder("ft_celebahq")
    folder.mkdir(parents=True)
    (folder / "diffusion_pytorch_model.bin").write_bytes(tiny_weights.read_bytes())
    assert store.status("celebahq") == Status.DAMAGED
    assert store.verify("celebahq").status == Status.READY


def test_remove(store, tiny_weights):
    store.import_weights("ft_places2", tiny_weights)
    assert store.remove("places2") is True
    assert store.status("ft_places2") == Status.MISSING and not store.folder("ft_places2").exists()
    assert store.remove("places2") is False


def test_models_root_precedence(monkeypatch, tmp_path):
    from platformdirs import user_data_dir

    monkeypatch.delenv("MOEBIUS_MODELS_DIR", raising=False)
    assert models_root() == Path(user_data_dir("MoebiusStudio")) / "models"
    monkeypatch.setenv("MOEBIUS_MODELS_DIR", str(tmp_path / "env"))
    assert models_root() == tmp_path / "env"
    assert WeightStore().root == tmp_path / "env"
    assert WeightStore(tmp_path / "arg").root == tmp_path / "arg"


# ---- the `models` command ---------------------------------------------------------------


def cli(store, *argv) -> int:
    from engine.cli import models as cli_models

    parser = argparse.ArgumentParser()
    cli_models.add_parser(parser.add_subparsers(dest="command"))
    return cli_models.run(parser.parse_args(["models", *argv]), store=store)


def test_cli_commands(hub, store, tiny_weights, capsys, tmp_path):
    assert cli(store, "list") == 0
    out = capsys.readouterr().out
    for variant in zoo.VARIANTS:
        assert f"{variant}" in out
    assert out.count("missing") == 5 and str(store.root) in out
    assert cli(store, "download", "places2") == 0
    captured = capsys.readouterr()
    assert "ft_places2: ready" in captured.out and "B" in captured.err  # the progress bar
    assert cli(store, "list") == 0
    out = capsys.readouterr().out
    assert out.count("ready") == 2
    assert cli(store, "verify") == 0
    assert cli(store, "verify", "ffhq") == 1  # not installed
    assert cli(store, "import", "ffhq", str(tiny_weights)) == 0
    assert cli(store, "remove", "ffhq") == 0
    capsys.readouterr()
    hub.remove(zoo.MOEBIUS_REPO, "pretrained/diffusion_pytorch_model.bin")
    assert cli(store, "download", "general") == 1
    assert "was not found" in capsys.readouterr().err
    junk = tmp_path / "junk.bin"
    junk.write_text("nope")
    assert cli(store, "import", "pretrained", str(junk)) == 1
    assert cli(store, "download", "sd15") == 1
    assert "unknown model" in capsys.readouterr().err


def test_cli_uses_models_dir_option(tmp_path, capsys):
    from engine.cli import models as cli_models

    parser = argparse.ArgumentParser()
    cli_models.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["models", "--models-dir", str(tmp_path / "x"), "list"])
    assert cli_models.run(args) == 0
    assert str(tmp_path / "x") in capsys.readouterr().out
