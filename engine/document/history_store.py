"""Where edit histories live on disk, and the bound on how much they use together.

One folder per photo under the user data folder (`default_root()`), named by the SHA-256
of the photo file's bytes (`file_digest`); `journal.py` writes what goes inside. When
the folders together pass `limit`, the photos written longest ago are forgotten first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from engine.about import APP_DIR_NAME

log = logging.getLogger(__name__)

INDEX_NAME = "journal.json"  # a photo folder holds a history when this file is there
DEFAULT_LIMIT = 2 * 1024**3  # bytes on disk for all photos' histories together


def default_root() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_DIR_NAME)) / "history"


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes; hashlib releases the GIL on large reads."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


class HistoryStore:
    """All journals under one root, with a bound on the disk they use together."""

    def __init__(self, root: str | os.PathLike | None = None, limit: int = DEFAULT_LIMIT):
        self.root = Path(root) if root is not None else default_root()
        self.limit = int(limit)

    def folder(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        return (self.folder(key) / INDEX_NAME).is_file()

    def usage(self) -> int:
        """Bytes the journals use on disk."""
        return sum(size for _, _, size in self._photos())

    def _photos(self) -> list[tuple[str, float, int]]:
        """(key, last written, bytes) per photo folder."""
        out: list[tuple[str, float, int]] = []
        if not self.root.is_dir():
            return out
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            size, newest = 0, 0.0
            for f in folder.iterdir():
                try:
                    st = f.stat()
                except OSError:
                    continue
                size += st.st_size
                newest = max(newest, st.st_mtime)
            out.append((folder.name, newest, size))
        return out

    def enforce_limit(self, keep: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Forget the photos written longest ago until the total fits the limit (never those
        in `keep`); returns the keys forgotten."""
        photos = sorted(self._photos(), key=lambda p: p[1])
        total = sum(size for _, _, size in photos)
        gone = []
        for key, _, size in photos:
            if total <= self.limit:
                break
            if key in keep:
                continue
            self.forget(key)
            total -= size
            gone.append(key)
        if gone:
            log.info("edit histories over %d MB: forgot the %d oldest photo(s)",
                     self.limit // 2**20, len(gone))
        return gone

    def forget(self, key: str) -> None:
        shutil.rmtree(self.folder(key), ignore_errors=True)

    def clear(self) -> None:
        """Forget every photo's history."""
        if self.root.is_dir():
            for folder in self.root.iterdir():
                if folder.is_dir():
                    shutil.rmtree(folder, ignore_errors=True)
