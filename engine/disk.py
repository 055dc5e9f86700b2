"""What every part of the engine that writes to disk shares: sizes said in plain units,
temporary files of our own naming, and removing those a killed process left behind.

Everything Moebius Studio writes (photos, batch reports, weight markers and caches) goes
through a temporary file beside its target that is renamed over it when complete. The
name says who wrote it: `.<target name>.moebius-<host>-<pid>-<random>.tmp`. A process
killed mid-write (kill -9, a power cut) leaves that file behind; `remove_stale_temps`
deletes it on a later run once its process is gone. Files of another computer (a shared
network folder) or of the older naming (`.<name>.<random>.tmp`) are removed only when a
day old, and files that merely look similar are never touched.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import time
import zlib
from pathlib import Path

log = logging.getLogger(__name__)

STALE_AFTER_S = 24 * 3600  # for temporaries whose writer cannot be asked
_HOST = f"{zlib.crc32(socket.gethostname().encode()) & 0xFFFF:04x}"
_OURS = re.compile(r"^\..+\.moebius-(?P<host>[0-9a-f]{4})-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")
_OLDER = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")  # atomic_write's name before the pid


def size_text(n: float) -> str:
    """Bytes in the unit that shows them best: 512 bytes, 40 kB, 3.1 MB, 20.0 GB (never
    "0.0 MB needed, 0.0 MB free")."""
    if n < 1000:
        return f"{int(n)} bytes"
    for unit in ("kB", "MB", "GB"):
        n /= 1000
        if n < 999.95:
            return f"{n:.0f} {unit}" if unit == "kB" else f"{n:.1f} {unit}"
    return f"{n / 1000:.1f} TB"


def temp_path(target: Path) -> Path:
    """A fresh temporary path beside `target`, named so a later run can tell it is ours."""
    token = secrets.token_hex(4)
    return target.with_name(f".{target.name}.moebius-{_HOST}-{os.getpid()}-{token}.tmp")


def is_stale(name: str, age_s: float) -> bool:
    """True for a temporary file of ours that no running process will finish."""
    ours = _OURS.match(name)
    if ours is None:
        return _OLDER.match(name) is not None and age_s > STALE_AFTER_S
    pid = int(ours["pid"])
    if ours["host"] != _HOST or pid == os.getpid():
        return age_s > STALE_AFTER_S  # another computer's, or still being written by us
    return not _process_exists(pid)


def _process_exists(pid: int) -> bool:
    import psutil

    try:
        return psutil.pid_exists(pid)
    except Exception:  # noqa: BLE001 - cannot tell: keep the file
        return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete our stale temporary files directly in `folder`; returns them.

    Best effort: a folder that cannot be listed, or a file that cannot be deleted, is
    skipped (the next run tries again)."""
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        try:
            if entry.name.endswith(".tmp") and entry.is_file(follow_symlinks=False):
                age = now - entry.stat(follow_symlinks=False).st_mtime
                if is_stale(entry.name, age):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
        except OSError as exc:
            log.debug("could not check or remove %s: %s", entry.path, exc)
    if removed:
        log.info("removed %d unfinished temporary file(s) of an earlier run in %s",
                 len(removed), folder)
    return removed
