"""The files of an installed model, one level below `WeightStore` (engine/weights/store.py).

Names of the on-disk layout, how to get a model's files by hand, sizes and digests, the
`verified.json` marker that vouches for a model's files, finding the files to import in
what a person points at, and the load checks that tell whether a file is the network (or
autoencoder) Moebius needs, and if not, what it is instead. Nothing here locks, downloads
or moves files into place; that is the store's job.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engine.about import command_line
from engine.disk import remove_stale_temps, size_text, temp_path
from engine.errors import Cancelled, CheckpointError, DiskFull, MoebiusError
from engine.weights.location import ENV_VAR
from engine.weights.zoo import ModelEntry

if TYPE_CHECKING:
    from engine.events import CancelToken
    from engine.net.config import MoebiusConfig

MARKER = "verified.json"
INCOMING = ".incoming"  # partial downloads; their presence means "downloading"
IMPORTING = ".importing"  # staging for an import; always removed before returning
LOCKS = ".locks"
WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
IMPORTABLE_SUFFIXES = (".bin", ".safetensors", ".pt", ".pth")
VAE_KEYS = ("in_channels", "out_channels", "latent_channels", "block_out_channels")


def manual_help(*entries: ModelEntry) -> str:
    """How to get the entries' files without the built-in downloader."""
    parts = []
    for entry in entries:
        urls = "\n".join(f"  {u}" for u in entry.urls())
        if entry.kind == "vae":
            how = ("save both in one folder, then run:\n  "
                   + command_line("models import vae <folder>"))
        else:
            how = "then run:\n  " + command_line(f"models import {entry.id} <downloaded file>")
        parts.append(f"{urls}\n{how}")
    return "To get the weights by hand, download\n" + "\nand download\n".join(parts)


# ---- sizes, digests, disk space ------------------------------------------------------


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _dir_size(folder: Path) -> int:
    try:
        return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    except FileNotFoundError:
        return 0


def _check_cancel(cancel: CancelToken | None) -> None:
    # Only downloads pass a token (hashing a downloaded file can take a while), hence
    # the message.
    if cancel is not None and cancel.cancelled:
        raise Cancelled("download cancelled; the partial file is kept, download again to resume")


def _digests(path: Path, git: bool = False, cancel=None) -> tuple[str, str]:
    """(sha256, git blob sha1 or "") of a file, read once."""
    sha = hashlib.sha256()
    blob = hashlib.sha1(f"blob {path.stat().st_size}\0".encode()) if git else None
    with open(path, "rb") as f:
        while block := f.read(4 << 20):
            sha.update(block)
            if blob is not None:
                blob.update(block)
            _check_cancel(cancel)
    return sha.hexdigest(), blob.hexdigest() if blob is not None else ""


def _ensure_space(needed: int, where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(where).free
    if needed > free:
        raise DiskFull(
            f"not enough disk space in {where}: {size_text(needed)} needed, "
            f"{size_text(free)} free. "
            f"Free some space or choose another models folder (setting or ${ENV_VAR})."
        )


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
        return
    except OSError:
        pass  # another filesystem, or no hard links there (FAT, some network drives)
    _ensure_space(src.stat().st_size, dst.parent)
    try:
        shutil.copyfile(src, dst)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFull(f"the disk filled up while copying {src} to {dst}") from exc
        raise MoebiusError(f"could not copy {src} to {dst}: {exc}") from exc


# ---- the verified.json marker --------------------------------------------------------


def _read_marker(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


def _write_json(path: Path, data: dict) -> None:
    remove_stale_temps(path.parent)  # a marker write killed half-way
    tmp = temp_path(path)
    try:
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_marker(entry: ModelEntry, folder: Path, hashes: dict, source: str) -> None:
    files = {}
    for n, sha in hashes.items():
        st = (folder / n).stat()
        files[n] = {"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    _write_json(
        folder / MARKER,
        {
            "id": entry.id,
            "files": files,
            "source": source,
            "verified_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )


def _marker_problem(entry: ModelEntry, folder: Path, marker: dict | None) -> str | None:
    """None when the marker vouches for the files as they are now; otherwise why not."""
    if marker is None:
        return "not verified; run: " + command_line(f"models verify {entry.id}")
    if marker.get("damaged"):
        return str(marker["damaged"])
    files = marker["files"]
    if not any(n in files for n in WEIGHT_NAMES) or (
        entry.kind == "vae" and "config.json" not in files
    ):
        return f"{MARKER} is incomplete"
    for n, rec in files.items():
        try:
            st = (folder / n).stat()
        except OSError:
            return f"{n} is missing"
        if st.st_size != rec.get("size") or st.st_mtime_ns != rec.get("mtime_ns"):
            return (f"{n} changed after it was verified; run: "
                    + command_line(f"models verify {entry.id}"))
    return None


def _present(entry: ModelEntry, folder: Path) -> bool:
    names = (*WEIGHT_NAMES, "config.json") if entry.kind == "vae" else WEIGHT_NAMES
    return any((folder / n).is_file() for n in names)


def _installed_names(entry: ModelEntry, folder: Path, marker: dict | None) -> list[str]:
    """The files verify() should check: those the marker lists, else what is on disk."""
    if marker is not None:
        return list(marker["files"])
    weight = next((n for n in WEIGHT_NAMES if (folder / n).is_file()), None)
    if weight is None:
        return []
    return ["config.json", weight] if entry.kind == "vae" else [weight]


# ---- finding what to import ----------------------------------------------------------


def _import_sources(entry: ModelEntry, chosen: Sequence[Path],
                   vae_config: Path) -> dict[str, Path]:
    """Local file name -> file to import, found in what the person chose: one file, one
    folder, or several files (the autoencoder's config.json and weights, in any folder
    and under any name). The autoencoder's weights alone are enough: its configuration
    is fixed, so `vae_config` stands in for a missing config.json."""
    files = [p for p in chosen if not p.is_dir()]
    folders = [p for p in chosen if p.is_dir()]
    shown = ", ".join(str(p) for p in chosen)
    if entry.kind == "vae":
        return _vae_sources(entry, files, folders, vae_config, shown)
    for folder in folders:
        found = [d / n for d in (folder, folder / entry.id) for n in WEIGHT_NAMES
                 if (d / n).is_file()]
        if not found:
            loose = [p for p in folder.iterdir() if p.suffix in IMPORTABLE_SUFFIXES]
            found = loose if len(loose) == 1 else []
        if not found:
            raise CheckpointError(
                f"no Moebius weights in {folder}: expected diffusion_pytorch_model.bin (or "
                f".safetensors), directly or in a {entry.id}/ sub-folder.\n" + manual_help(entry)
            )
        files.append(found[0])
    weights = [p for p in files if p.suffix in IMPORTABLE_SUFFIXES]
    if not weights:
        raise CheckpointError(
            f"{shown} is not a weight file: expected a .bin or .safetensors file.\n"
            + manual_help(entry)
        )
    if len(weights) > 1:
        raise CheckpointError(f"choose one weight file for {entry.name}, not {len(weights)}")
    return {_local_weight_name(weights[0]): weights[0]}


def _vae_sources(entry: ModelEntry, files: list[Path], folders: list[Path], vae_config: Path,
                 shown: str) -> dict[str, Path]:
    for folder in folders:
        for d in (folder, folder / "vae"):
            found = [d / n for n in WEIGHT_NAMES if (d / n).is_file()]
            if found:
                files += [found[0], *([d / "config.json"] if (d / "config.json").is_file()
                                      else [])]
                break
    weights = [p for p in files if p.suffix in IMPORTABLE_SUFFIXES]
    configs = [p for p in files if p.suffix == ".json"]
    if not weights and configs:  # the config alone: its weights may sit beside it
        weights = [configs[0].parent / n for n in WEIGHT_NAMES
                   if (configs[0].parent / n).is_file()][:1]
    if len(weights) != 1 or len(configs) > 1:
        what = ("config.json and one weight file" if weights or configs
                else "diffusion_pytorch_model.bin (or .safetensors)")
        raise CheckpointError(
            f"{shown} is not the autoencoder: it needs {what}.\n" + manual_help(entry)
        )
    if _weight_kind(weights[0]) == "unet":
        raise CheckpointError(
            f"{weights[0]} is a Moebius network (a fine-tune), not the autoencoder"
        )
    beside = weights[0].parent / "config.json"
    config = configs[0] if configs else beside if beside.is_file() else vae_config
    return {"config.json": config, _local_weight_name(weights[0]): weights[0]}


def _local_weight_name(path: Path) -> str:
    return WEIGHT_NAMES[0] if path.suffix == ".safetensors" else WEIGHT_NAMES[1]


def _weight_kind(path: Path) -> str | None:
    """"vae" or "unet" judged by the tensor names in a weight file (read lazily: a
    memory map or the safetensors header); None when it is neither or unreadable."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                keys = set(f.keys())
        else:
            from engine.net.checkpoint import read_state_dict

            keys = set(read_state_dict(path))
    except Exception:  # noqa: BLE001 - not readable as weights: the checks will say why
        return None
    if "quant_conv.weight" in keys or any(k.startswith("encoder.down_blocks") for k in keys):
        return "vae"
    if any(k.startswith(("diff_model.", "embedding_layer.")) for k in keys):
        return "unet"
    return None


def _is_vae_config(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and (data.get("_class_name") == "AutoencoderKL"
                                       or "latent_channels" in data)


def files_kind(chosen: Sequence[Path]) -> str | None:
    """What the person chose holds: "vae" (the autoencoder), "unet" (a Moebius network)
    or None (cannot tell; the import's checks will say what is wrong)."""
    for p in chosen:
        candidates = [p]
        if p.is_dir():
            candidates = [d / n for d in (p, p / "vae") for n in ("config.json", *WEIGHT_NAMES)]
            candidates += sorted(q for q in p.iterdir() if q.suffix in IMPORTABLE_SUFFIXES)
        for c in candidates:
            if c.suffix == ".json" and c.is_file() and _is_vae_config(c):
                return "vae"
            if c.suffix in IMPORTABLE_SUFFIXES and c.is_file():
                kind = _weight_kind(c)
                if kind is not None:
                    return kind
    return None


# ---- is it the network (or autoencoder) Moebius needs? -------------------------------


def _check_unet(path: Path, config: MoebiusConfig) -> None:
    """Load the file strictly against `config`; a CheckpointError says what it is instead."""
    from engine.net.checkpoint import check_state_dict, expected_shapes, read_state_dict

    if not _looks_like_weights(path):  # else torch's unpickler blames "Python objects"
        raise CheckpointError(
            f"{path} is not a weight file (neither a PyTorch checkpoint nor safetensors); "
            "choose the diffusion_pytorch_model.bin you downloaded."
        )
    sd = read_state_dict(path)
    expected = expected_shapes(config)
    try:
        check_state_dict(sd, expected, path.name)
        return
    except CheckpointError as exc:
        summary, show_detail = _diagnose(sd, expected)
        error = CheckpointError(
            f"{summary}\n{exc}" if show_detail else summary,
            exc.missing, exc.unexpected, exc.misshaped,
        )
    del sd  # unmap the file before the caller deletes it (Windows keeps mapped files)
    raise error


def _check_vae(folder: Path, vae_config: Path) -> None:
    """Load the autoencoder and compare its shape settings with `vae_config`'s."""
    from engine.net.vae import Vae

    got = dict(Vae.load(folder).model.config)
    want = json.loads(vae_config.read_text())
    wrong = [
        f"{k} {_plain(got.get(k))} instead of {_plain(want[k])}"
        for k in VAE_KEYS
        if k in want and _plain(got.get(k)) != _plain(want[k])
    ]
    if wrong:
        raise CheckpointError(
            f"the autoencoder in {folder} is not the one Moebius needs: " + "; ".join(wrong)
        )


def _looks_like_weights(path: Path) -> bool:
    """A zip (torch.save; also one cut short, which the loader reports as incomplete), a
    legacy pickle (protocol byte 0x80) or a safetensors file."""
    with open(path, "rb") as f:
        head = f.read(16)
    if path.suffix == ".safetensors" or zipfile.is_zipfile(path):
        return True
    return head[:1] == b"\x80" or head[:4] == b"PK\x03\x04" or not head


def _diagnose(sd, expected: dict) -> tuple[str, bool]:
    """A one-line verdict on a file that is not the expected network; and whether the
    key-by-key listing would help the reader."""
    from engine.net.checkpoint import KNOWN_CONFIGS, expected_shapes

    keys = set(sd)
    if "quant_conv.weight" in keys or any(k.startswith("encoder.down_blocks") for k in keys):
        return (
            "it is an autoencoder (VAE) file, not a Moebius network; the autoencoder is "
            "imported with: " + command_line("models import vae <folder>"),
            False,
        )
    shared = keys & set(expected)
    if len(shared) < max(1, len(expected) // 10):
        return (
            f"it is not a Moebius checkpoint (only {len(shared)} of its {len(keys)} tensors "
            "have Moebius names)",
            False,
        )
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    for label, make in KNOWN_CONFIGS.items():
        if shapes == expected_shapes(make()):
            return f"it is the {label}-size Moebius network, a different size from this one", False
    return "its tensors do not match the Moebius network", True


def _plain(value):
    return list(value) if isinstance(value, list | tuple) else value
