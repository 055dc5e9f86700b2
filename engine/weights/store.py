"""Model weights on disk: where they live, whether they can be trusted, and getting them.

Layout under the models root (`models_root` says how the root is chosen):

    <root>/<variant>/diffusion_pytorch_model.bin   (.safetensors when imported as one)
    <root>/vae/config.json + diffusion_pytorch_model.bin
    <root>/<id>/verified.json    written only after every check passed
    <root>/<id>/.incoming/       downloads: <file>.<etag>.part while transferring

A file reaches its final place only after its checksum and a strict load succeeded, and
the marker is written after that, so an interrupted download, import or crash leaves a
model "downloading" or "damaged", never falsely "ready".

This module is the public face: `WeightStore` (status, paths, import, verify, remove and
the checks every install goes through) and the names callers use. The download from the
Hugging Face Hub lives in engine/weights/hub.py; the file-level helpers (marker,
digests, disk space, finding what to import, the load checks) in engine/weights/files.py.
Their public names are importable from here as well.
"""

from __future__ import annotations

import builtins
import errno
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from engine.about import command_line
from engine.disk import size_text
from engine.errors import CheckpointError, MoebiusError, UnknownModel, WeightsMissing
from engine.net.checkpoint import SAFETENSORS_CACHE_NAME
from engine.net.config import CONFIG_DIR
from engine.weights import zoo
from engine.weights.files import (
    ENV_VAR,
    IMPORTABLE_SUFFIXES,
    IMPORTING,
    INCOMING,
    LOCKS,
    MARKER,
    VAE_KEYS,
    WEIGHT_NAMES,
    _check_unet,
    _check_vae,
    _digests,
    _dir_size,
    _import_sources,
    _installed_names,
    _link_or_copy,
    _marker_problem,
    _present,
    _read_marker,
    _write_json,
    _write_marker,
    files_kind,
    manual_help,
)
from engine.weights.hub import REPORT_BYTES, REPORT_SECONDS, HubDownloads, ProgressFn
from engine.weights.location import models_root
from engine.weights.state import ModelState, Status
from engine.weights.zoo import ModelEntry

if TYPE_CHECKING:
    from engine.net.config import MoebiusConfig

__all__ = [  # the public names, wherever they are defined
    "ENV_VAR", "IMPORTABLE_SUFFIXES", "IMPORTING", "INCOMING",
    "LOCKS", "MARKER", "REPORT_BYTES", "REPORT_SECONDS", "VAE_CONFIG", "VAE_KEYS",
    "WEIGHT_NAMES", "ModelState", "ProgressFn", "Status", "WeightStore", "manual_help",
    "models_root",
]

log = logging.getLogger(__name__)

VAE_CONFIG = CONFIG_DIR / "pixelhacker_vae.json"


# Folders being changed by this process -> what is happening ("downloading", ...).
_ACTIVE: dict[str, str] = {}
_ACTIVE_LOCK = threading.Lock()


def _key(folder: Path) -> str:
    return str(folder.resolve())


def _as_paths(path: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(path, str | os.PathLike):
        return [Path(path).expanduser()]
    return [Path(p).expanduser() for p in path]


class _Damaged(Exception):
    pass


def _unwritable(root: Path, activity: str, exc: OSError) -> MoebiusError:
    """One sentence for a models folder this process may not change."""
    why = {errno.EROFS: "is on a read-only disk", errno.EACCES: "is read-only for you",
           errno.EPERM: "is read-only for you", errno.ENOSPC: "is on a full disk"}
    state = why.get(exc.errno or 0, f"cannot be written ({exc.strerror or exc})")
    return MoebiusError(f"The folder {root} {state}, so {activity} a model there is not "
                        f"possible; choose a writable models folder (Preferences or "
                        f"${ENV_VAR}).")


class WeightStore(HubDownloads):
    """Installed weights under one root. `config`/`vae_config` say what a good file is
    (the full network and PixelHacker VAE by default; tests pass the tiny ones). The
    download methods come from `HubDownloads`."""

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        config: MoebiusConfig | None = None,
        vae_config: str | os.PathLike | None = None,
        endpoint: str | None = None,
    ):
        self.root = models_root(root)
        self._config = config
        self.vae_config = Path(vae_config) if vae_config else VAE_CONFIG
        self._endpoint = endpoint

    @property
    def config(self) -> MoebiusConfig:
        if self._config is None:
            from engine.net.config import MoebiusConfig

            self._config = MoebiusConfig.full()
        return self._config

    def folder(self, name: str) -> Path:
        return self.root / zoo.resolve(name).id

    # ---- status ----------------------------------------------------------------------

    def state(self, name: str) -> ModelState:
        entry = zoo.resolve(name)
        folder = self.folder(entry.id)
        partial = _dir_size(folder / INCOMING)
        if _ACTIVE.get(_key(folder)) == "downloading":
            return ModelState(entry, Status.DOWNLOADING, folder, "download in progress", partial)
        marker = _read_marker(folder)
        problem = _marker_problem(entry, folder, marker)
        if problem is None:
            return ModelState(entry, Status.READY, folder, "", partial)
        if partial:
            detail = f"{size_text(partial)} downloaded; download again to resume"
            return ModelState(entry, Status.DOWNLOADING, folder, detail, partial)
        if _present(entry, folder):
            return ModelState(entry, Status.DAMAGED, folder, problem)
        return ModelState(entry, Status.MISSING, folder)

    def status(self, name: str) -> Status:
        return self.state(name).status

    def list(self) -> list[ModelState]:
        """Every variant, then the shared VAE."""
        return [self.state(e.id) for e in zoo.entries()]

    def paths(self, variant: str) -> tuple[Path, Path]:
        """(UNet weight file, VAE folder) of a ready variant; WeightsMissing otherwise."""
        entry = zoo.resolve(variant)
        if entry.kind != "unet":
            raise UnknownModel(f"{variant!r} is not a Moebius variant")
        states = (self.state(entry.id), self.state(zoo.VAE.id))
        problems = [s for s in states if s.status != "ready"]
        if problems:
            lines = [f"The {entry.name} model cannot be used yet:"]
            for s in problems:
                why = f" ({s.detail})" if s.detail else ""
                lines.append(f"  {s.entry.name}: {s.status}{why}")
            lines.append("Download it in the app or run: "
                         + command_line(f"models download {entry.id}"))
            lines.append(manual_help(*(s.entry for s in problems)))
            raise WeightsMissing("\n".join(lines))
        marker = _read_marker(self.folder(entry.id))
        assert marker is not None  # READY means the marker was read and checked
        files = marker["files"]
        weight = next(n for n in WEIGHT_NAMES if n in files)
        return self.folder(entry.id) / weight, self.folder(zoo.VAE.id)

    # ---- import, verify, remove ------------------------------------------------------

    def import_weights(self, name: str,
                       path: str | os.PathLike | Sequence[str | os.PathLike]) -> ModelState:
        """Install weights from a file, a folder or several files (hard link when possible,
        else copy). For the autoencoder, its config.json and weights may be chosen as two
        files, or the weights alone (its configuration is fixed).

        The files are checked by loading them first; on any failure nothing is changed.
        """
        entry = zoo.resolve(name)
        chosen = _as_paths(path)
        for p in chosen:
            if not p.exists():
                raise MoebiusError(f"{p} does not exist")
        sources = _import_sources(entry, chosen, self.vae_config)
        folder = self.folder(entry.id)
        existed = folder.exists()
        with self._claim([entry], "importing"):
            stage = folder / IMPORTING
            shutil.rmtree(stage, ignore_errors=True)
            stage.mkdir(parents=True)
            try:
                for local, source in sources.items():
                    if source == self.vae_config:  # our own copy: never a hard link to it
                        shutil.copyfile(source, stage / local)
                    else:
                        _link_or_copy(source, stage / local)
                hashes = {n: _digests(stage / n)[0] for n in sources}
                try:
                    where = ", ".join(str(p.resolve()) for p in chosen)
                    self._install(entry, stage, hashes, where)
                except CheckpointError as exc:
                    message = str(exc)  # name the person's files, not our staging copies
                    for local, source in sources.items():
                        message = message.replace(str(stage / local), str(source))
                    message = message.replace(str(stage), str(next(iter(sources.values())).parent))
                    shown = ", ".join(str(p) for p in chosen)
                    if len(chosen) == 1 and message.startswith(f"{shown} "):  # named once
                        message = "the file" + message[len(shown):]
                    raise CheckpointError(
                        f"{shown} cannot be used as {entry.name} ({entry.id}): {message}",
                        exc.missing, exc.unexpected, exc.misshaped,
                    ) from exc
            finally:
                shutil.rmtree(stage, ignore_errors=True)
                if not existed and not any(folder.iterdir()):
                    folder.rmdir()
            shutil.rmtree(folder / INCOMING, ignore_errors=True)  # a stale download is moot
        return self.state(entry.id)

    def identify(self, path: str | os.PathLike | Sequence[str | os.PathLike]) -> str | None:
        """What the chosen files are: "vae", "unet" or None when it cannot be told (the
        import's checks then say what is wrong). Reads tensor names only."""
        return files_kind(_as_paths(path))

    def size_on_disk(self, name: str) -> int:
        """Bytes in a model's folder, partial downloads included."""
        folder = self.folder(name)
        try:
            return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        except OSError:
            return 0

    def verify(self, name: str) -> ModelState:
        """Re-hash and re-load installed files. Returns the resulting state; a failure is
        recorded so the model stays "damaged" until it is downloaded or imported again."""
        entry = zoo.resolve(name)
        folder = self.folder(entry.id)
        with self._claim([entry], "verifying"):
            marker = _read_marker(folder)
            names = _installed_names(entry, folder, marker)
            if not names:
                return self.state(entry.id)
            recorded = (marker or {}).get("files", {})
            try:
                hashes = {}
                for n in names:
                    if not (folder / n).is_file():
                        raise _Damaged(f"{n} is missing")
                    hashes[n] = _digests(folder / n)[0]
                    want = recorded.get(n, {}).get("sha256")
                    if want and hashes[n] != want:
                        raise _Damaged(
                            f"{n} differs from the copy that was verified (sha256 "
                            f"{hashes[n][:12]}… instead of {want[:12]}…); download or "
                            "import it again"
                        )
                try:
                    self._check(entry, folder, hashes)
                except CheckpointError as exc:
                    raise _Damaged(str(exc)) from exc
            except _Damaged as bad:
                if marker is not None:
                    marker["damaged"] = str(bad)
                    try:
                        _write_json(folder / MARKER, marker)
                    except OSError as exc:
                        raise _unwritable(folder, "verifying", exc) from exc
                return replace(self.state(entry.id), status=Status.DAMAGED, detail=str(bad))
            source = (marker or {}).get("source", "found on disk")
            try:
                _write_marker(entry, folder, hashes, source)
            except OSError as exc:
                raise _unwritable(folder, "verifying", exc) from exc
        return self.state(entry.id)

    def verify_all(self) -> builtins.list[ModelState]:
        """Verify everything that has files; the rest is reported as it is."""
        out = []
        for e in zoo.entries():
            s = self.state(e.id)
            out.append(self.verify(e.id) if s.status in ("ready", "damaged") else s)
        return out

    def remove(self, name: str) -> bool:
        """Delete a model's folder (files, marker and partial downloads). False if absent."""
        entry = zoo.resolve(name)
        folder = self.folder(entry.id)
        if not folder.exists():
            return False
        with self._claim([entry], "removing"):
            try:
                shutil.rmtree(folder)
            except OSError as exc:
                raise _unwritable(folder, "removing", exc) from exc
        log.info("removed %s", folder)
        return True

    # ---- shared machinery ------------------------------------------------------------

    def _install(self, entry: ModelEntry, staged: Path, hashes: dict, source: str) -> None:
        """Check the staged files by loading them, then move them into place."""
        self._check(entry, staged, hashes)
        folder = self.folder(entry.id)
        # Until the new marker exists the model reads "damaged", never falsely "ready".
        (folder / MARKER).unlink(missing_ok=True)
        for old in (*WEIGHT_NAMES, SAFETENSORS_CACHE_NAME, "config.json"):
            if old not in hashes:  # e.g. a .bin replaced by an imported .safetensors
                (folder / old).unlink(missing_ok=True)
        for n in hashes:
            os.replace(staged / n, folder / n)
        _write_marker(entry, folder, hashes, source)
        log.info("%s installed in %s", entry.id, folder)

    def _check(self, entry: ModelEntry, folder: Path, names) -> None:
        if entry.kind == "vae":
            _check_vae(folder, self.vae_config)
        else:
            _check_unet(folder / next(n for n in WEIGHT_NAMES if n in names), self.config)

    @contextmanager
    def _claim(self, entries: builtins.list[ModelEntry], activity: str) -> Iterator[None]:
        """One writer per model: within this process and across processes (file lock)."""
        from filelock import FileLock, Timeout

        keys = [_key(self.folder(e.id)) for e in entries]
        with _ACTIVE_LOCK:
            busy = [k for k in keys if k in _ACTIVE]
            if busy:
                raise MoebiusError(
                    f"{Path(busy[0]).name} is busy ({_ACTIVE[busy[0]]}); wait for it to finish"
                )
            _ACTIVE.update(dict.fromkeys(keys, activity))
        locks = []
        try:
            try:
                (self.root / LOCKS).mkdir(parents=True, exist_ok=True)
                for e in entries:
                    lock = FileLock(str(self.root / LOCKS / f"{e.id}.lock"))
                    try:
                        lock.acquire(timeout=0)
                    except Timeout:
                        raise MoebiusError(
                            f"{e.name} is being changed by another Moebius Studio; wait for it "
                            "to finish"
                        ) from None
                    locks.append(lock)
            except OSError as exc:  # a read-only or full models folder, a permission problem
                raise _unwritable(self.root, activity, exc) from exc
            yield
        finally:
            for lock in reversed(locks):
                lock.release()
            with _ACTIVE_LOCK:
                for k in keys:
                    _ACTIVE.pop(k, None)

