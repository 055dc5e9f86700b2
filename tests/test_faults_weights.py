"""Fault suite, the weights store: bad weight files, read-only and nearly full models folders.

Each case runs a `models` command (or a model load) and asserts the exit code, one plain
line naming the file and what to do (none of torch's or diffusers' own text), that the
given files and the models folder are unchanged, and that nothing half-written remains.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
import shutil

import numpy as np
import pytest
import torch

import engine.net.checkpoint as checkpoint
from engine.cli import models as models_cli
from engine.cli.main import build_parser
from engine.disk import size_text
from engine.weights.store import WeightStore
from tests.faults import Snapshot, one_line, stale_temp, temporaries

ENGINE_WORDS = ("weights_only", "size mismatch", "PytorchStreamReader", "Traceback",
                "torch.Size", "miniz")


@pytest.fixture
def store(tmp_path, reference_dir) -> WeightStore:
    from engine.net.config import MoebiusConfig

    return WeightStore(tmp_path / "models", config=MoebiusConfig.tiny(),
                       vae_config=reference_dir / "tiny_vae" / "config.json")


@pytest.fixture
def installed(store, tiny_weights, reference_dir) -> WeightStore:
    store.import_weights("ft_places2", tiny_weights)
    store.import_weights("vae", reference_dir / "tiny_vae")
    return store


def _models(store: WeightStore, *argv: str) -> int:
    args = build_parser().parse_args(["models", *argv])
    return models_cli.run(args, store=store)


def _plain(line: str) -> str:
    assert not any(word in line for word in ENGINE_WORDS), line
    return line


# --- weight files that are not what they claim (item 8) -----------------------------------

class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _bad_file(kind: str, folder, tiny_weights):
    path = folder / "given" / "diffusion_pytorch_model.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    good = tiny_weights.read_bytes()
    if kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
        return path, "the file is incomplete: the file ends early, as after an interrupted " \
                     "download or copy; download it again."
    if kind == "garbage":
        path.write_bytes(b"\x80\x02" + bytes(range(256)) * 8)
        return path, "the file is damaged or not a PyTorch weight file; download it again."
    if kind == "empty":
        path.write_bytes(b"")
        return path, "the file is empty (0 bytes); download it again."
    if kind == "text":
        path.write_text("these are not the weights you are looking for")
        return path, "the file is not a weight file (neither a PyTorch checkpoint nor " \
                     "safetensors); choose the diffusion_pytorch_model.bin you downloaded."
    if kind == "code":
        path.write_bytes(pickle.dumps({"w": _RunsCode()}, protocol=2))
        return path, f"refused to load {path}: it contains Python objects other than " \
                     "tensors, which could run code on this computer."
    if kind == "numpy":
        torch.save({"w": torch.zeros(2), "n": np.zeros(3)}, path,
                   _use_new_zipfile_serialization=False)
        return path, "it contains Python objects other than tensors"
    if kind == "missing":
        return folder / "given" / "nowhere.bin", "does not exist"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "garbage", "empty", "text", "code", "numpy",
                                  "missing"])
def test_bad_weight_files_are_one_plain_line_and_change_nothing(store, tmp_path, tiny_weights,
                                                                capsys, kind):
    bad, says = _bad_file(kind, tmp_path, tiny_weights)
    snap = Snapshot(tmp_path)
    assert _models(store, "import", "ft_places2", str(bad)) == 1
    line = _plain(one_line(capsys.readouterr().err))
    assert line.startswith("error: ") and str(bad) in line and says in line
    assert store.status("ft_places2") == "missing"
    snap.unchanged()


def test_an_autoencoder_with_the_wrong_config_is_one_plain_line(store, tmp_path, reference_dir,
                                                               capsys):
    vae = tmp_path / "my_vae"
    shutil.copytree(reference_dir / "tiny_vae", vae)
    config = json.loads((vae / "config.json").read_text())
    config["block_out_channels"] = [2 * c for c in config["block_out_channels"]]
    (vae / "config.json").write_text(json.dumps(config))
    snap = Snapshot(tmp_path)
    assert _models(store, "import", "vae", str(vae)) == 1
    line = _plain(one_line(capsys.readouterr().err))
    assert f"the autoencoder weights {vae / 'diffusion_pytorch_model.safetensors'} do not " \
           f"match {vae / 'config.json'}" in line
    assert line.endswith("both files must come from the same autoencoder, so download both "
                         "files of the autoencoder again.")
    assert store.status("vae") == "missing"
    snap.unchanged()


# --- a read-only or nearly full models folder (item 4) -------------------------------------

@pytest.fixture
def read_only_locks(monkeypatch):
    """The models folder's disk is read-only: creating the lock file fails as it would."""
    real = os.open

    def refuse(path, flags, *a, **k):
        if ".locks" in str(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", refuse)


@pytest.mark.parametrize("command", [("verify",), ("verify", "places2"), ("remove", "vae")])
def test_verify_and_remove_on_a_read_only_folder_say_so(installed, tmp_path, capsys,
                                                        read_only_locks, command):
    snap = Snapshot(tmp_path)
    assert _models(installed, *command) == 1
    folder = installed.root
    activity = "removing" if command[0] == "remove" else "verifying"
    assert one_line(capsys.readouterr().err) == (
        f"error: The folder {folder} is on a read-only disk, so {activity} a model there is "
        "not possible; choose a writable models folder (Preferences or $MOEBIUS_MODELS_DIR).")
    snap.unchanged()
    assert installed.status("vae") == "ready"


@pytest.mark.parametrize("fault", ["safetensors", "disk full", "read-only"])
def test_a_cache_that_cannot_be_written_never_fails_a_load(installed, tmp_path, monkeypatch,
                                                           caplog, fault):
    from safetensors import SafetensorError

    errors = {"safetensors": SafetensorError("Error while serializing: IoError(No space left "
                                             "on device)"),
              "disk full": OSError(errno.ENOSPC, "No space left on device"),
              "read-only": PermissionError(errno.EACCES, "Permission denied")}

    def fail(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a cache")  # what a failed write leaves
        raise errors[fault]

    monkeypatch.setattr("safetensors.torch.save_file", fail)
    monkeypatch.setattr(checkpoint, "_cache_warned", set())
    unet, _ = installed.paths("ft_places2")
    snap = Snapshot(tmp_path)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):  # the model loads, twice; the warning is said once
            model = checkpoint.load_model(unet)
            assert sum(p.numel() for p in model.parameters()) > 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "loading will stay a few seconds slower" in warnings[0]
    assert not (unet.parent / checkpoint.SAFETENSORS_CACHE_NAME).exists()
    snap.unchanged()


def test_a_nearly_full_disk_says_how_much_in_units_that_show_it(store, tmp_path, tiny_weights,
                                                                capsys, monkeypatch):
    import engine.weights.files as files

    monkeypatch.setattr(files.os, "link", lambda *a: (_ for _ in ()).throw(OSError(18, "x")))
    monkeypatch.setattr(files.shutil, "disk_usage",
                        lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 30_000, 30_000))
    snap = Snapshot(tmp_path)
    size = tiny_weights.stat().st_size
    assert _models(store, "import", "ft_places2", str(tiny_weights)) == 1
    line = _plain(one_line(capsys.readouterr().err))
    assert f"{size_text(size)} needed, 30 kB free." in line and "0.0 MB" not in line
    assert size_text(40_000) == "40 kB" and size_text(512) == "512 bytes"
    snap.unchanged()


def test_temporary_files_of_killed_writes_are_removed_next_time(installed, tmp_path, capsys):
    folder = installed.folder("ft_places2")
    leftovers = [stale_temp(folder, "verified.json"),
                 stale_temp(folder, checkpoint.SAFETENSORS_CACHE_NAME)]
    assert _models(installed, "verify", "places2") == 0
    assert "ft_places2: ready" in capsys.readouterr().out
    assert not leftovers[0].exists()  # the marker write cleans its own leftovers
    unet, _ = installed.paths("ft_places2")
    checkpoint.load_model(unet)  # writes the cache, and cleans a cache write's leftovers
    assert not leftovers[1].exists() and not temporaries(tmp_path)
