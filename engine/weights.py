"""Model weights on disk: where they live, whether they can be trusted, and getting them.

Layout under the models root (`models_root` says how the root is chosen):

    <root>/<variant>/diffusion_pytorch_model.bin   (.safetensors when imported as one)
    <root>/vae/config.json + diffusion_pytorch_model.bin
    <root>/<id>/verified.json    written only after every check passed
    <root>/<id>/.incoming/       downloads: <file>.<etag>.part while transferring

A file reaches its final place only after its checksum and a strict load succeeded, and
the marker is written after that, so an interrupted download, import or crash leaves a
model "downloading" or "damaged", never falsely "ready".

Why our own transfer loop rather than `hf_hub_download`: in the installed huggingface_hub
(1.x) `hf_hub_download` writes to a process-unique temporary file and deletes it on any
failure, so a later call cannot resume; it reports progress only through tqdm and has no
cancel hook. Its `http_get` can resume but retries internally with sleeps and is not
public API. So we use the public pieces: `get_hf_file_metadata` (size, and the sha256 the
hub sends as X-Linked-Etag, following the hub's redirect rules up to the CDN), the hub's
shared httpx client `get_session()` (proxies, certificates, user agent, offline mode),
`build_hf_headers` (token) and `hf_raise_for_status` (the hub's error codes), and stream
the body ourselves: an HTTP Range header resumes from the partial file, a plain callback
reports progress and the cancel token is checked on every received chunk.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlparse

from engine import zoo
from engine.checkpoint import SAFETENSORS_CACHE_NAME
from engine.errors import (
    Cancelled,
    CheckpointError,
    DiskFull,
    DownloadError,
    HubFileNotFound,
    HubUnreachable,
    IntegrityError,
    MoebiusError,
    UnknownModel,
    WeightsMissing,
)
from engine.zoo import ModelEntry

if TYPE_CHECKING:
    from engine.config import MoebiusConfig
    from engine.events import CancelToken

log = logging.getLogger(__name__)

APP_NAME = "MoebiusStudio"
ENV_VAR = "MOEBIUS_MODELS_DIR"
MARKER = "verified.json"
INCOMING = ".incoming"  # partial downloads; their presence means "downloading"
IMPORTING = ".importing"  # staging for an import; always removed before returning
LOCKS = ".locks"
VAE_CONFIG = Path(__file__).parent / "configs" / "pixelhacker_vae.json"
WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
IMPORTABLE_SUFFIXES = (".bin", ".safetensors", ".pt", ".pth")
VAE_KEYS = ("in_channels", "out_channels", "latent_channels", "block_out_channels")
VERIFY_HINT = "python main.py models verify "
DOWNLOAD_HINT = "python main.py models download "
REPORT_BYTES = 1 << 20  # progress callbacks at most every MiB or REPORT_SECONDS
REPORT_SECONDS = 0.2

ProgressFn = Callable[[int, int], None]  # (done_bytes, total_bytes); total 0 = unknown


class Status(StrEnum):
    MISSING = "missing"
    DOWNLOADING = "downloading"  # a partial download exists, or one is running
    READY = "ready"
    DAMAGED = "damaged"  # files exist but are unverified, changed or failed a check


@dataclass(frozen=True)
class ModelState:
    entry: ModelEntry
    status: Status
    folder: Path
    detail: str = ""  # why it is damaged, or how far a download got
    partial_bytes: int = 0

    @property
    def id(self) -> str:
        return self.entry.id


def models_root(override: str | os.PathLike | None = None) -> Path:
    """The models folder: explicit argument (the GUI setting) > $MOEBIUS_MODELS_DIR > default."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME)) / "models"


def manual_help(*entries: ModelEntry) -> str:
    """How to get the entries' files without the built-in downloader."""
    parts = []
    for entry in entries:
        urls = "\n".join(f"  {u}" for u in entry.urls())
        if entry.kind == "vae":
            how = "save both in one folder, then run:\n  python main.py models import vae <folder>"
        else:
            how = f"then run:\n  python main.py models import {entry.id} <downloaded file>"
        parts.append(f"{urls}\n{how}")
    return "To get the weights by hand, download\n" + "\nand download\n".join(parts)


# Folders being changed by this process -> what is happening ("downloading", ...).
_ACTIVE: dict[str, str] = {}
_ACTIVE_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Remote:
    entry: ModelEntry
    repo_path: str
    hub_url: str  # the /resolve/ address people can open
    url: str  # where the bytes are served (the CDN after the hub's redirect)
    size: int | None
    etag: str | None  # sha256 for LFS files, git blob sha1 for small files
    same_host: bool  # the token goes to the hub only, never to a CDN
    help: str  # how to get this download's files by hand

    @property
    def name(self) -> str:
        return self.repo_path.rsplit("/", 1)[-1]

    @property
    def where(self) -> str:
        return f"{self.entry.repo}/{self.repo_path}"


class _Reporter:
    """Aggregates bytes over all files of a download; throttles the callback."""

    def __init__(self, callback: ProgressFn | None, total: int, done: int):
        self.callback, self.total, self.done = callback, total, done
        self.sent, self.when = -1, 0.0

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if (
            self.done == self.total
            or abs(self.done - self.sent) >= REPORT_BYTES
            or now - self.when >= REPORT_SECONDS
        ):
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self.callback is not None and self.done != self.sent:
            self.sent, self.when = self.done, now or time.monotonic()
            self.callback(self.done, self.total)


class _Damaged(Exception):
    pass


class WeightStore:
    """Installed weights under one root. `config`/`vae_config` say what a good file is
    (the full network and PixelHacker VAE by default; tests pass the tiny ones)."""

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
            from engine.config import MoebiusConfig

            self._config = MoebiusConfig.full()
        return self._config

    @property
    def endpoint(self) -> str:
        """The hub address: argument > $HF_ENDPOINT > huggingface_hub's default."""
        if self._endpoint:
            return self._endpoint.rstrip("/")
        if os.environ.get("HF_ENDPOINT"):
            return os.environ["HF_ENDPOINT"].rstrip("/")
        from huggingface_hub import constants

        return constants.ENDPOINT.rstrip("/")

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
            detail = f"{_mb(partial)} downloaded; download again to resume"
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
            lines.append(f"Download it in the app or run: {DOWNLOAD_HINT}{entry.id}")
            lines.append(manual_help(*(s.entry for s in problems)))
            raise WeightsMissing("\n".join(lines))
        files = _read_marker(self.folder(entry.id))["files"]
        weight = next(n for n in WEIGHT_NAMES if n in files)
        return self.folder(entry.id) / weight, self.folder(zoo.VAE.id)

    # ---- download --------------------------------------------------------------------

    def download(
        self,
        name: str,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
        *,
        force: bool = False,
        retries: int = 3,
    ) -> ModelState:
        """Download, check and install a variant (and the VAE if it is not ready yet).

        Resumes a partial download. `progress(done, total)` counts bytes over all files of
        this call, called from this thread. `cancel` stops at the next received chunk and
        keeps the partial file. A lost connection is resumed up to `retries` times before
        an error is raised; the next call resumes from there.
        """
        entry = zoo.resolve(name)
        wanted = [zoo.VAE, entry] if entry.kind == "unet" else [entry]
        todo = [e for e in wanted if (force and e is entry) or self.status(e.id) != "ready"]
        if not todo:
            return self.state(entry.id)
        with self._claim(todo, "downloading"):
            help = manual_help(*todo)  # offline or not, the person may fetch all of it by hand
            remotes = [self._remote(e, f, help) for e in todo for f in e.files]
            have = sum(_size(self._part_path(r)) for r in remotes)
            total = sum(r.size or 0 for r in remotes) if all(r.size for r in remotes) else 0
            self._ensure_space(max(total - have, 0), self.root)
            report = _Reporter(progress, total, have)
            report.flush()
            for e in todo:
                mine = [r for r in remotes if r.entry is e]
                hashes = {r.name: self._fetch(r, report, cancel, retries) for r in mine}
                self._install_download(e, hashes, mine)
            report.flush()
        return self.state(entry.id)

    def _remote(self, entry: ModelEntry, repo_path: str, help: str) -> _Remote:
        from huggingface_hub import get_hf_file_metadata

        # Built from the endpoint read now, not huggingface_hub's import-time template,
        # so HF_ENDPOINT set after import (or the GUI's setting) is honoured.
        hub_url = zoo.resolve_url(entry.repo, repo_path, self.endpoint)
        try:
            meta = get_hf_file_metadata(hub_url, endpoint=self.endpoint)
        except Exception as exc:
            self._fail(exc, f"{entry.repo}/{repo_path}", help)
        if meta.commit_hash is None:  # a captive portal or proxy page, not a hub
            raise DownloadError(
                f"{self.endpoint} answered but is not a Hugging Face server (no X-Repo-Commit "
                "header). Check HF_ENDPOINT, the proxy settings or sign in to the network.\n"
                + help
            )
        same = urlparse(hub_url).hostname == urlparse(meta.location).hostname
        return _Remote(entry, repo_path, hub_url, meta.location, meta.size, meta.etag, same, help)

    def _part_path(self, r: _Remote) -> Path:
        # The etag is in the name so a partial file is never continued with the bytes of
        # a different version of the file.
        tag = re.sub(r"[^0-9A-Za-z]", "", r.etag or "")[:16] or "unknown"
        return self.folder(r.entry.id) / INCOMING / f"{r.name}.{tag}.part"

    def _fetch(self, r: _Remote, report: _Reporter, cancel, retries: int) -> str:
        """Transfer one file into .incoming/<name> and check it; returns its sha256."""
        import httpx

        part = self._part_path(r)
        part.parent.mkdir(parents=True, exist_ok=True)
        for stale in part.parent.glob(f"{r.name}.*.part"):
            if stale != part:
                log.info("discarding %s: the server now has another version", stale.name)
                stale.unlink()
        staged = part.parent / r.name
        if not part.exists() and staged.is_file() and _size(staged) == r.size:
            os.replace(staged, part)  # finished by an interrupted run; the checksum decides
        done = _size(part)
        if r.size is not None and done > r.size:
            part.unlink()
            report.add(-done)
            done = 0
        failures = 0
        try:
            while r.size is None or done < r.size:
                _check_cancel(cancel)
                before = done
                try:
                    done = self._transfer(r, part, done, report, cancel)
                    if r.size is None or done >= r.size:
                        break
                    raise httpx.RemoteProtocolError("the server ended the transfer early")
                except httpx.TransportError as exc:
                    done = _size(part)
                    failures = 1 if done > before else failures + 1
                    if failures > retries:
                        self._fail(exc, r.where, r.help, done)
                    log.warning("%s: connection lost (%s); resuming at %d", r.name, exc, done)
                    _pause(0.5 * failures, cancel)
        except MoebiusError:
            raise
        except Exception as exc:
            self._fail(exc, r.where, r.help, done)
        return self._check_download(r, part, cancel)

    def _transfer(self, r: _Remote, part: Path, offset: int, report: _Reporter, cancel) -> int:
        """One GET from `offset` to the end (or until the connection drops). Returns the
        new offset, which always equals the partial file's size."""
        import httpx
        from huggingface_hub import constants, get_session
        from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

        headers = build_hf_headers(headers={"Accept-Encoding": "identity"})
        if not r.same_host:
            headers.pop("authorization", None)
        if offset:
            headers["Range"] = f"bytes={offset}-"
        timeout = httpx.Timeout(constants.HF_HUB_DOWNLOAD_TIMEOUT)
        with get_session().stream("GET", r.url, headers=headers, timeout=timeout) as response:
            hf_raise_for_status(response)
            if offset and response.status_code != 206:
                # The server ignored Range and sends everything: start over rather than
                # append a second copy.
                log.info("%s: the server cannot resume; downloading from the start", r.name)
                report.add(-offset)
                offset = 0
            # Unbuffered, so the file never holds more than the bytes counted in `offset`,
            # even when a write fails (full disk) or the connection drops mid-chunk.
            with open(part, "ab" if offset else "wb", buffering=0) as f:
                for chunk in response.iter_bytes():
                    _check_cancel(cancel)
                    view = memoryview(chunk)
                    while view:
                        n = f.write(view)
                        view, offset = view[n:], offset + n
                        report.add(n)
        return offset

    def _check_download(self, r: _Remote, part: Path, cancel) -> str:
        size = _size(part)
        if r.size is not None and size != r.size:
            part.unlink()
            raise IntegrityError(
                f"{r.hub_url} arrived with {size} bytes instead of {r.size}; the partial file "
                "was deleted. Run the download again.\n" + r.help
            )
        etag = (r.etag or "").lower()
        git = bool(re.fullmatch(r"[0-9a-f]{40}", etag))
        sha256, sha1 = _digests(part, git, cancel)
        got = sha1 if git else sha256
        if re.fullmatch(r"[0-9a-f]{64}", etag) or git:
            if got != etag:
                part.unlink()
                raise IntegrityError(
                    f"{r.hub_url} is corrupted: its checksum is {got} but the server says "
                    f"{etag}. The file was deleted; run the download again.\n" + r.help
                )
        else:
            log.warning("%s: the server sent no checksum; relying on the load check", r.name)
        os.replace(part, part.parent / r.name)
        return sha256

    def _install_download(self, entry: ModelEntry, hashes: dict, remotes: list) -> None:
        incoming = self.folder(entry.id) / INCOMING
        try:
            self._install(entry, incoming, hashes, ", ".join(r.hub_url for r in remotes))
        except CheckpointError as exc:
            for n in hashes:  # checksums matched, so the files will never load: drop them
                (incoming / n).unlink(missing_ok=True)
            raise CheckpointError(
                f"the downloaded {entry.name} does not load: {exc}\n" + manual_help(entry)
            ) from exc
        shutil.rmtree(incoming, ignore_errors=True)

    # ---- import, verify, remove ------------------------------------------------------

    def import_weights(self, name: str, path: str | os.PathLike) -> ModelState:
        """Install weights from a file or folder (hard link when possible, else copy).

        The files are checked by loading them first; on any failure nothing is changed.
        """
        entry = zoo.resolve(name)
        src = Path(path).expanduser()
        if not src.exists():
            raise MoebiusError(f"{src} does not exist")
        sources = _import_sources(entry, src)
        folder = self.folder(entry.id)
        existed = folder.exists()
        with self._claim([entry], "importing"):
            stage = folder / IMPORTING
            shutil.rmtree(stage, ignore_errors=True)
            stage.mkdir(parents=True)
            try:
                for local, source in sources.items():
                    self._link_or_copy(source, stage / local)
                hashes = {n: _digests(stage / n)[0] for n in sources}
                try:
                    self._install(entry, stage, hashes, str(src.resolve()))
                except CheckpointError as exc:
                    message = str(exc)  # name the person's files, not our staging copies
                    for local, source in sources.items():
                        message = message.replace(str(stage / local), str(source))
                    message = message.replace(str(stage), str(next(iter(sources.values())).parent))
                    raise CheckpointError(
                        f"{src} cannot be used as {entry.name} ({entry.id}): {message}",
                        exc.missing, exc.unexpected, exc.misshaped,
                    ) from exc
            finally:
                shutil.rmtree(stage, ignore_errors=True)
                if not existed and not any(folder.iterdir()):
                    folder.rmdir()
            shutil.rmtree(folder / INCOMING, ignore_errors=True)  # a stale download is moot
        return self.state(entry.id)

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
                    _write_json(folder / MARKER, marker)
                return replace(self.state(entry.id), status=Status.DAMAGED, detail=str(bad))
            source = (marker or {}).get("source", "found on disk")
            _write_marker(entry, folder, hashes, source)
        return self.state(entry.id)

    def verify_all(self) -> list[ModelState]:
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
            shutil.rmtree(folder)
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
            self._check_vae(folder)
        else:
            self._check_unet(folder / next(n for n in WEIGHT_NAMES if n in names))

    def _check_unet(self, path: Path) -> None:
        from engine.checkpoint import check_state_dict, expected_shapes, read_state_dict

        if not _looks_like_weights(path):  # else torch's unpickler blames "Python objects"
            raise CheckpointError(
                f"{path} is not a weight file (neither a PyTorch checkpoint nor safetensors)"
            )
        sd = read_state_dict(path)
        expected = expected_shapes(self.config)
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

    def _check_vae(self, folder: Path) -> None:
        from engine.vae import Vae

        got = dict(Vae.load(folder).model.config)
        want = json.loads(self.vae_config.read_text())
        wrong = [
            f"{k} {_plain(got.get(k))} instead of {_plain(want[k])}"
            for k in VAE_KEYS
            if k in want and _plain(got.get(k)) != _plain(want[k])
        ]
        if wrong:
            raise CheckpointError(
                f"the autoencoder in {folder} is not the one Moebius needs: " + "; ".join(wrong)
            )

    @contextmanager
    def _claim(self, entries: list[ModelEntry], activity: str) -> Iterator[None]:
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
            (self.root / LOCKS).mkdir(parents=True, exist_ok=True)
            for e in entries:
                lock = FileLock(str(self.root / LOCKS / f"{e.id}.lock"))
                try:
                    lock.acquire(timeout=0)
                except Timeout:
                    raise MoebiusError(
                        f"{e.name} is being changed by another Moebius Studio; wait for it to "
                        "finish"
                    ) from None
                locks.append(lock)
            yield
        finally:
            for lock in reversed(locks):
                lock.release()
            with _ACTIVE_LOCK:
                for k in keys:
                    _ACTIVE.pop(k, None)

    def _ensure_space(self, needed: int, where: Path) -> None:
        where.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(where).free
        if needed > free:
            raise DiskFull(
                f"not enough disk space in {where}: {_mb(needed)} needed, {_mb(free)} free. "
                f"Free some space or choose another models folder (setting or ${ENV_VAR})."
            )

    def _link_or_copy(self, src: Path, dst: Path) -> None:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # another filesystem, or no hard links there (FAT, some network drives)
        self._ensure_space(src.stat().st_size, dst.parent)
        try:
            shutil.copyfile(src, dst)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DiskFull(f"the disk filled up while copying {src} to {dst}") from exc
            raise MoebiusError(f"could not copy {src} to {dst}: {exc}") from exc

    def _fail(self, exc: Exception, where: str, help: str, done: int = 0) -> NoReturn:
        """Raise a download failure as a MoebiusError with a clear message, chained to the
        original; errors we cannot explain are re-raised unchanged."""
        new = self._translate(exc, where, help, done)
        if new is exc:
            raise exc
        raise new from exc

    def _translate(self, exc: Exception, where: str, help: str, done: int) -> Exception:
        import httpx
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            OfflineModeIsEnabled,
            RemoteEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        if isinstance(exc, MoebiusError):
            return exc
        if isinstance(exc, OfflineModeIsEnabled):
            return HubUnreachable(
                f"cannot download {where}: Hugging Face offline mode is on (HF_HUB_OFFLINE).\n"
                + help
            )
        if isinstance(exc, HfHubHTTPError):
            code = exc.response.status_code if exc.response is not None else None
            not_found = (RemoteEntryNotFoundError, RevisionNotFoundError, RepositoryNotFoundError)
            if isinstance(exc, GatedRepoError) or code in (401, 403):
                return DownloadError(
                    f"{self.endpoint} refused access to {where} (HTTP {code}). If you use a "
                    "Hugging Face token, check it.\n" + help
                )
            if code == 404 or isinstance(exc, not_found):
                return HubFileNotFound(
                    f"{where} was not found on {self.endpoint} (HTTP {code}); it may have been "
                    "moved or renamed.\n" + help
                )
            return HubUnreachable(
                f"{self.endpoint} answered HTTP {code} for {where}; the server may be down or "
                "busy. Try again later.\n" + help
            )
        if isinstance(exc, httpx.ConnectError):
            dns = re.search(r"name or service|nodename|name resolution|getaddrinfo", str(exc), re.I)
            reason = "its name could not be resolved (DNS)" if dns else "the connection failed"
            return HubUnreachable(
                f"cannot reach {self.endpoint} to download {where}: {reason} ({exc}). Check the "
                "internet connection, proxy settings and HF_ENDPOINT.\n" + help
            )
        if isinstance(exc, httpx.TransportError):
            what = "timed out" if isinstance(exc, httpx.TimeoutException) else f"failed ({exc})"
            resume = f" after {_mb(done)}; run the download again to resume" if done else ""
            return HubUnreachable(
                f"the connection to {self.endpoint} for {where} {what}{resume}.\n" + help
            )
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return DiskFull(
                f"the disk holding {self.root} is full ({_mb(done)} of {where} saved; the "
                "download resumes once there is space)."
            )
        return exc


# ---- helpers ---------------------------------------------------------------------------


def _key(folder: Path) -> str:
    return str(folder.resolve())


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


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _plain(value):
    return list(value) if isinstance(value, list | tuple) else value


def _check_cancel(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled("download cancelled; the partial file is kept, download again to resume")


def _pause(seconds: float, cancel: CancelToken | None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        _check_cancel(cancel)
        time.sleep(min(0.05, max(end - time.monotonic(), 0)))


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


def _looks_like_weights(path: Path) -> bool:
    """A zip (torch.save), a legacy pickle (protocol byte 0x80) or a safetensors header."""
    with open(path, "rb") as f:
        head = f.read(16)
    if path.suffix == ".safetensors" or zipfile.is_zipfile(path):
        return True
    return head[:1] == b"\x80"


def _read_marker(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


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
        return f"not verified; run: {VERIFY_HINT}{entry.id}"
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
            return f"{n} changed after it was verified; run: {VERIFY_HINT}{entry.id}"
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


def _import_sources(entry: ModelEntry, src: Path) -> dict[str, Path]:
    """Local file name -> file to import, found in what the person pointed at."""
    if entry.kind == "vae":
        base = src if src.is_dir() else src.parent
        for folder in (base, base / "vae"):
            weights = [folder / n for n in WEIGHT_NAMES if (folder / n).is_file()]
            if (folder / "config.json").is_file() and weights:
                return {"config.json": folder / "config.json", weights[0].name: weights[0]}
        raise CheckpointError(
            f"{src} is not an autoencoder folder: it needs config.json and "
            "diffusion_pytorch_model.bin (or .safetensors) side by side.\n" + manual_help(entry)
        )
    if src.is_dir():
        found = [d / n for d in (src, src / entry.id) for n in WEIGHT_NAMES if (d / n).is_file()]
        if not found:
            loose = [p for p in src.iterdir() if p.suffix in IMPORTABLE_SUFFIXES]
            found = loose if len(loose) == 1 else []
        if not found:
            raise CheckpointError(
                f"no Moebius weights in {src}: expected diffusion_pytorch_model.bin (or "
                f".safetensors), directly or in a {entry.id}/ sub-folder.\n" + manual_help(entry)
            )
        src = found[0]
    if src.suffix not in IMPORTABLE_SUFFIXES:
        raise CheckpointError(
            f"{src} is not a weight file: expected a .bin or .safetensors file.\n"
            + manual_help(entry)
        )
    return {WEIGHT_NAMES[0] if src.suffix == ".safetensors" else WEIGHT_NAMES[1]: src}


def _diagnose(sd, expected: dict) -> tuple[str, bool]:
    """A one-line verdict on a file that is not the expected network; and whether the
    key-by-key listing would help the reader."""
    from engine.checkpoint import KNOWN_CONFIGS, expected_shapes

    keys = set(sd)
    if "quant_conv.weight" in keys or any(k.startswith("encoder.down_blocks") for k in keys):
        return (
            "it is an autoencoder (VAE) file, not a Moebius network; the autoencoder is "
            "imported with: python main.py models import vae <folder>",
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
