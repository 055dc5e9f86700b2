"""Helpers of the fault suite (tests/test_faults_*.py): what every case asserts.

Each case runs one bad request or one fault and checks four things: the exit code (or the
dialog shown), that the message is one line, that no input changed (sha256 of every file
that existed before), and that nothing half-written remains (no temporary file of ours,
no output that should not exist).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.photos import scene, with_object

ROOT = Path(__file__).resolve().parent.parent
BOOKKEEPING = {".moebius-batch", ".locks"}  # folders of lock files and the batch record


def hashes(root: Path) -> dict[Path, str]:
    """sha256 of every regular file under `root` (links and special files are skipped;
    huge sparse files stand in with their size and time: reading 20 GB of zeros proves
    nothing)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink() or not p.is_file():
            continue
        st = p.stat()
        if st.st_size > 64 << 20:
            out[p] = f"{st.st_size} bytes, modified {st.st_mtime_ns}"
        else:
            out[p] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def temporaries(root: Path) -> list[Path]:
    """Files that only exist while something is being written: ours end in .tmp, partial
    downloads in .part."""
    return [p for p in root.rglob("*") if p.name.endswith((".tmp", ".part"))]


class Snapshot:
    """The files of a folder before a fault, to compare with after it."""

    def __init__(self, root: Path):
        self.root = root
        self.before = hashes(root)

    def unchanged(self, allow_new: tuple[Path, ...] = ()) -> None:
        """Every file that existed is byte-identical, none is gone, nothing is half-written,
        and the only new files are `allow_new` (and lock files, the batch record and report)."""
        after = hashes(self.root)
        for path, digest in self.before.items():
            assert after.get(path) == digest, f"{path} changed or disappeared"
        assert not temporaries(self.root), temporaries(self.root)
        new = {p for p in after if p not in self.before}
        allowed = {Path(p) for p in allow_new}
        stray = {p for p in new - allowed if not BOOKKEEPING & set(p.parts)
                 and p.name != "moebius-batch-report.json"}
        assert not stray, f"unexpected new files: {sorted(stray)}"


def one_line(text: str) -> str:
    """The single line of `text` (after stripping); fails if there are more."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{text}"
    return lines[0]


def photo_with_mask(folder: Path, name: str = "photo.png", size=(96, 72), seed: int = 0,
                    mask_name: str | None = "mask.png", box=None):
    """A small test photo with a red object, and its mask (white = remove)."""
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    box = box or (w * 2 // 5, h * 2 // 5, w * 3 // 5, h * 3 // 5)
    img, mask = with_object(scene(w, h, seed=seed), box)
    kw = {"quality": 92} if name.endswith(".jpg") else {}
    Image.fromarray(img).save(folder / name, **kw)
    if mask_name is not None:
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / mask_name)
    return folder / name, (folder / mask_name if mask_name else None), img, mask


def save_mask(path: Path, mask: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return path


def dead_pid() -> int:
    """The id of a process that has ended (our temp files name their writer's id)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def stale_temp(folder: Path, target: str, pid: int | None = None) -> Path:
    """A temporary file as a save of `target` leaves it when killed (process `pid`)."""
    from engine.disk import temp_path

    fresh = temp_path(folder / target)
    # Our naming with another process id: .<target>.moebius-<host>-<pid>-<random>.tmp
    prefix, _, rest = fresh.name.rpartition(f"-{os.getpid()}-")
    path = folder / f"{prefix}-{pid if pid is not None else dead_pid()}-{rest}"
    path.write_bytes(b"")
    return path


def run_main(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python main.py ARGS` in a fresh process, as a person would type it."""
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
