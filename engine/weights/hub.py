"""Getting a model's files from the Hugging Face Hub: the download half of `WeightStore`.

`HubDownloads` is mixed into `WeightStore` (engine/weights/store.py). Files arrive in
<model>/.incoming/ as <file>.<etag>.part, are checked against the hub's checksum there and
then handed to the store's `_install`, which loads them before moving them into place.

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
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlparse

from engine.disk import size_text
from engine.errors import (
    CheckpointError,
    DiskFull,
    DownloadError,
    HubFileNotFound,
    HubUnreachable,
    IntegrityError,
    MoebiusError,
)
from engine.weights import zoo
from engine.weights.files import (
    INCOMING,
    _check_cancel,
    _digests,
    _ensure_space,
    _size,
    manual_help,
)
from engine.weights.state import ModelState
from engine.weights.zoo import ModelEntry

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from engine.events import CancelToken

# The store's logger, as before these methods moved here, so log lines keep their name.
log = logging.getLogger("engine.weights.store")

REPORT_BYTES = 1 << 20  # progress callbacks at most every MiB or REPORT_SECONDS
REPORT_SECONDS = 0.2

ProgressFn = Callable[[int, int], None]  # (done_bytes, total_bytes); total 0 = unknown


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


def _endpoint_note() -> str:
    """Names the mirror setting only to people who set it (they know what it is)."""
    mirror = os.environ.get("HF_ENDPOINT")
    return f" (downloads come from HF_ENDPOINT={mirror})" if mirror else ""


def _pause(seconds: float, cancel: CancelToken | None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        _check_cancel(cancel)
        time.sleep(min(0.05, max(end - time.monotonic(), 0)))


class HubDownloads:
    """Download, resume, check and install a model's files from the hub.

    A mixin for `WeightStore`, which provides `root`, `_endpoint`, `folder()`, `state()`,
    `status()`, `_claim()` and `_install()`.
    """

    if TYPE_CHECKING:  # what WeightStore provides (declared for the type checker only)
        root: Path
        _endpoint: str | None

        def folder(self, name: str) -> Path: ...
        def state(self, name: str) -> ModelState: ...
        def status(self, name: str) -> str: ...
        def _claim(self, entries: list[ModelEntry],
                   activity: str) -> AbstractContextManager[None]: ...
        def _install(self, entry: ModelEntry, staged: Path, hashes: dict,
                     source: str) -> None: ...

    @property
    def endpoint(self) -> str:
        """The hub address: argument > $HF_ENDPOINT > huggingface_hub's default."""
        if self._endpoint:
            return self._endpoint.rstrip("/")
        if os.environ.get("HF_ENDPOINT"):
            return os.environ["HF_ENDPOINT"].rstrip("/")
        from huggingface_hub import constants

        return constants.ENDPOINT.rstrip("/")

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
            _ensure_space(max(total - have, 0), self.root)
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
                f"{self.endpoint} answered, but not the way the model server does: this "
                "network may want you to sign in first (open any web page in a browser), or "
                f"a proxy is in the way{_endpoint_note()}.\n" + help
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
            # The raw error ("[Errno -2] Name or service not known") helps nobody reading
            # the message; it goes to the log.
            log.info("cannot connect to %s: %s", self.endpoint, exc)
            return HubUnreachable(
                f"cannot reach {self.endpoint} to download {where}: this computer seems to be "
                "offline, or a firewall or proxy blocks the connection. Check the internet "
                f"connection and try again{_endpoint_note()}.\n" + help
            )
        if isinstance(exc, httpx.TransportError):
            log.info("transfer from %s failed: %r", self.endpoint, exc)
            what = "timed out" if isinstance(exc, httpx.TimeoutException) else "was interrupted"
            resume = (f" after {size_text(done)}; run the download again to resume"
                      if done else "")
            return HubUnreachable(
                f"the connection to {self.endpoint} for {where} {what}{resume}.\n" + help
            )
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return DiskFull(
                f"the disk holding {self.root} is full ({size_text(done)} of {where} saved; the "
                "download resumes once there is space)."
            )
        return exc
