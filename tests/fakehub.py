"""A small fake Hugging Face hub on 127.0.0.1 for download tests (never the internet).

It answers what huggingface_hub's client really asks for:

- HEAD/GET /{org}/{repo}/resolve/{revision}/{path}
  * small ("git") files: 200 with X-Repo-Commit, ETag = git blob sha1, Content-Length;
  * large ("LFS") files: 302 to a CDN address with X-Repo-Commit, X-Linked-Etag = sha256,
    X-Linked-Size, like the real hub. The CDN address uses the host name "localhost" so
    the client sees a different host (it stops following redirects there, as with the
    real CDN, and drops the token);
  * 404 with X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound.
- GET /cdn/{sha256}/{repo}/{path}: the bytes, with Range support (206 + Content-Range).

Behaviours for tests: `drop(path, after, times)` closes the connection after `after` body
bytes, `slow(path, chunk, delay)` trickles the body, `corrupt(path)` serves altered bytes
under the original checksum, `fail(path, status)` answers an HTTP error. `requests` logs
every request with its Range header and how many body bytes were sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_THRESHOLD = 1024  # files above this are served like LFS/Xet files


@dataclass
class Served:
    method: str
    path: str  # repo path for /resolve/, "cdn:<repo path>" for CDN requests
    range: str | None
    status: int
    sent: int  # body bytes written


@dataclass
class _File:
    repo: str
    path: str
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def git_sha1(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()


class FakeHub:
    def __init__(self):
        self.files: dict[tuple[str, str], _File] = {}
        self.requests: list[Served] = []
        self._drops: dict[str, list[int]] = {}  # path -> [after, times left]
        self._slow: dict[str, tuple[int, float]] = {}
        self._corrupt: set[str] = set()
        self._fail: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ---- setup ---------------------------------------------------------------------

    def add(self, repo: str, path: str, data: bytes, lfs: bool | None = None) -> None:
        lfs = len(data) > LFS_THRESHOLD if lfs is None else lfs
        self.files[(repo, path)] = _File(repo, path, data, lfs)

    def remove(self, repo: str, path: str) -> None:
        del self.files[(repo, path)]

    def drop(self, path: str, after: int, times: int = 1) -> None:
        self._drops[path] = [after, times]

    def slow(self, path: str, chunk: int = 16384, delay: float = 0.01) -> None:
        self._slow[path] = (chunk, delay)

    def corrupt(self, path: str) -> None:
        self._corrupt.add(path)

    def fail(self, path: str, status: int) -> None:
        self._fail[path] = status

    def clear_behaviours(self) -> None:
        self._drops.clear()
        self._slow.clear()
        self._corrupt.clear()
        self._fail.clear()

    def served(self, path: str, method: str = "GET") -> list[Served]:
        return [r for r in self.requests if r.path == path and r.method == method]

    # ---- lifecycle -----------------------------------------------------------------

    def start(self) -> FakeHub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.handle_error = lambda request, address: None  # client hang-ups
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn_url(self) -> str:
        return f"http://localhost:{self.port}"

    def _log(self, served: Served) -> None:
        with self._lock:
            self.requests.append(served)


def free_port() -> int:
    """A port nothing listens on (for "server down" tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_HEAD(self):
            self._route(body=False)

        def do_GET(self):
            self._route(body=True)

        def _route(self, body: bool):
            path = unquote(urlsplit(self.path).path)
            m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            if m:
                return self._resolve(*m.groups(), body=body)
            m = re.fullmatch(r"/cdn/([0-9a-f]{64})/([^/]+/[^/]+)/(.+)", path)
            f = m and hub.files.get((m.group(2), m.group(3)))
            if f and f.sha256 == m.group(1):
                return self._send_file(f, f"cdn:{f.path}", {"ETag": f'"{f.sha256}"'}, body)
            self._error(404, None, path, body)

        def _resolve(self, repo: str, revision: str, path: str, body: bool):
            if not any(r == repo for r, _ in hub.files):
                return self._error(404, "RepoNotFound", path, body)
            if revision not in ("main", COMMIT):
                return self._error(404, "RevisionNotFound", path, body)
            f = hub.files.get((repo, path))
            if f is None:
                return self._error(404, "EntryNotFound", path, body)
            if path in hub._fail:
                return self._error(hub._fail[path], None, path, body)
            headers = {"X-Repo-Commit": COMMIT}
            if f.lfs:
                self.send_response(302)
                headers |= {
                    "Location": f"{hub.cdn_url}/cdn/{f.sha256}/{repo}/{path}",
                    "ETag": f'"{f.git_sha1}"',  # the pointer file's id, as on the real hub
                    "X-Linked-Etag": f'"{f.sha256}"',
                    "X-Linked-Size": str(len(f.data)),
                    "Content-Length": "0",
                }
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                hub._log(Served(self.command, path, self.headers.get("Range"), 302, 0))
                return None
            return self._send_file(f, path, headers | {"ETag": f'"{f.git_sha1}"'}, body)

        def _send_file(self, f: _File, label: str, headers: dict, body: bool):
            data = f.data
            if f.path in hub._corrupt:
                data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
            start, status = 0, 200
            requested = self.headers.get("Range")
            if requested:
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", requested.strip())
                start = int(m.group(1))
                if start >= len(data):
                    return self._error(416, None, label, body)
                end = int(m.group(2)) + 1 if m.group(2) else len(data)
                data, status = data[start:end], 206
                headers = headers | {
                    "Content-Range": f"bytes {start}-{start + len(data) - 1}/{len(f.data)}"
                }
            self.send_response(status)
            headers = headers | {
                "Content-Length": str(len(data)),
                "Content-Type": "application/octet-stream",
                "Accept-Ranges": "bytes",
            }
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            sent = self._write_body(f.path, data) if body else 0
            hub._log(Served(self.command, label, requested, status, sent))
            return None

        def _write_body(self, path: str, data: bytes) -> int:
            limit = len(data)
            drop = hub._drops.get(path)
            if drop and drop[1] > 0:
                drop[1] -= 1
                limit = min(limit, drop[0])
                self.close_connection = True
            chunk, delay = hub._slow.get(path, (1 << 16, 0.0))
            sent = 0
            try:
                while sent < limit:
                    piece = data[sent : min(sent + chunk, limit)]
                    self.wfile.write(piece)
                    self.wfile.flush()
                    sent += len(piece)
                    if delay:
                        time.sleep(delay)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            return sent

        def _error(self, status: int, code: str | None, label: str, body: bool):
            payload = json.dumps({"error": f"{code or status}"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-Repo-Commit", COMMIT)
            if code:
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", f"{code} (fake hub)")
            self.end_headers()
            if body:
                self.wfile.write(payload)
            hub._log(Served(self.command, label, self.headers.get("Range"), status, 0))

    return Handler
