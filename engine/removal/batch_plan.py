"""What a batch will do, and the folder rules that keep every original safe.

Rules, all checked before any photo is touched:
- The output folder is neither the input folder nor the masks folder.
- An output folder inside the input folder is refused when it holds any photo that a
  batch run did not write there (its originals would be within reach of outputs).
- No output lands on an input, on a mask, or inside the masks folder; and an existing
  file is replaced (with `overwrite`) only if a batch run wrote it.

Which files batch runs wrote is recorded in the output folder (`OutputRecord`): each
output's name is appended *before* it is written, so a run killed at any point never
leaves an output that a later run would take for an original.

Only one run writes to an output folder at a time (`FolderLock`, a hidden lock file that
the system releases even when a process is killed): a second run waits, then finds the
finished photos and skips them, so no photo is done twice and every report is true.
The record and the lock file live in the output folder's hidden `.moebius-batch` folder.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.disk import temp_path
from engine.errors import MoebiusError
from engine.imageio.checks import probe, resolved
from engine.imageio.files import is_supported
from engine.removal.masks import MaskPolicy
from engine.removal.settings import RemovalSettings

log = logging.getLogger(__name__)

MASK_SUFFIXES = ("", "_mask", ".mask")  # photo.png, photo_mask.png, photo.mask.png
BOOKKEEPING = ".moebius-batch"  # hidden folder in the output folder: the two files below
OUTPUT_RECORD = "outputs.txt"  # the outputs batch runs wrote, one per line
LOCK_NAME = "lock"


@dataclass(frozen=True)
class BatchJob:
    input_dir: Path
    output_dir: Path
    masks_dir: Path | None = None  # one mask per photo, matched by name
    shared_mask: Path | None = None  # or one mask for every photo
    recursive: bool = False
    overwrite: bool = False
    settings: RemovalSettings = field(default_factory=RemovalSettings)
    masks: MaskPolicy = field(default_factory=MaskPolicy)  # inverted? large ones confirmed?
    keep_jpeg_blocks: bool = True  # JPEG outputs re-encode only the blocks that changed


@dataclass(frozen=True)
class BatchItem:
    source: Path
    mask: Path | None
    output: Path


def _inside(path: Path, folder: Path) -> bool:
    """True when resolved `path` lies strictly inside resolved `folder`."""
    return folder in path.parents


class OutputRecord:
    """The outputs that batch runs wrote to one output folder (paths relative to it).

    A run appends to `outputs.txt`. Writers in other processes (the cluster batch's
    writing tasks, possibly on other machines sharing the folder) each append to a file
    of their own, `outputs.<writer>.txt`, since appends from several computers to one file
    are not safe on network filesystems; the folder's record is the union of them all, and
    the run that holds the folder's lock merges them into `outputs.txt` when they are done.
    """

    def __init__(self, output_dir: Path, writer: str | None = None):
        self.root = output_dir
        self.folder = output_dir / BOOKKEEPING
        self.writer = writer
        self.path = self.folder / (OUTPUT_RECORD if writer is None else f"outputs.{writer}.txt")
        self._names: set[str] | None = None

    def _files(self) -> list[Path]:
        if self.writer is not None:  # a writer knows what it wrote itself
            return [self.path]
        return [self.folder / OUTPUT_RECORD, *_shards(self.folder)]

    def names(self) -> set[str]:
        if self._names is None:
            self._names = set()
            for path in self._files():
                try:
                    self._names |= set(path.read_text(encoding="utf-8").splitlines())
                except FileNotFoundError:
                    pass
                except (OSError, UnicodeDecodeError) as exc:
                    log.warning("could not read %s: %s", path, exc)
        return self._names

    def _key(self, output: Path) -> str:
        return output.relative_to(self.root).as_posix()

    def wrote(self, output: Path) -> bool:
        return self._key(output) in self.names()

    def add(self, output: Path) -> None:
        """Record `output` before it is written (durably: a kill right after still counts)."""
        key = self._key(output)
        if key in self.names():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(key + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.names().add(key)

    def merge_writers(self) -> None:
        """Fold the writers' files into `outputs.txt` (call only while holding the folder's
        lock, with no writer of this run still working). Best effort: they also count
        where they are."""
        shards = _shards(self.folder)
        if self.writer is not None or not shards:
            return
        self._names = None
        text = "".join(f"{name}\n" for name in sorted(self.names()) if name)
        try:
            tmp = temp_path(self.path)
            try:
                with open(tmp, "w", encoding="utf-8") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                tmp.replace(self.path)
            finally:
                tmp.unlink(missing_ok=True)
            for shard in shards:
                shard.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not merge the output records in %s: %s", self.folder, exc)


def _shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("outputs.*.txt"))


def check_folders(job: BatchJob) -> None:
    src, out = resolved(job.input_dir), resolved(job.output_dir)
    if not src.is_dir():
        raise MoebiusError(f"input folder not found: {job.input_dir}")
    if src == out:
        raise MoebiusError("the output folder may not be the input folder: "
                           "originals are never overwritten")
    if out.exists() and not out.is_dir():
        raise MoebiusError(f"the output {job.output_dir} is a file, not a folder")
    if (job.masks_dir is None) == (job.shared_mask is None):
        raise MoebiusError("give either a masks folder or one shared mask")
    if job.masks_dir is not None:
        if not job.masks_dir.is_dir():
            raise MoebiusError(f"masks folder not found: {job.masks_dir}")
        if resolved(job.masks_dir) == out:
            raise MoebiusError("the output folder may not be the masks folder")
    if job.shared_mask is not None:
        probe(job.shared_mask)  # a regular image file (not a FIFO, a loop, ...): one sentence
    if _inside(out, src) and out.is_dir():
        record = OutputRecord(job.output_dir)
        strays = (p for p in sorted(job.output_dir.rglob("*"))
                  if is_supported(p) and not _hidden(p, job.output_dir)
                  and not p.is_dir() and not record.wrote(p))
        stray = next(strays, None)
        if stray is not None:
            raise MoebiusError(
                f"the output folder {job.output_dir} is inside the photos folder and holds "
                f"photos a batch run did not write ({stray.relative_to(job.output_dir)}); "
                f"choose an output folder outside {job.input_dir}, or an empty one")


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _masks_beside_photos(job: BatchJob) -> bool:
    return job.masks_dir is not None and resolved(job.masks_dir) == resolved(job.input_dir)


def find_images(job: BatchJob) -> list[Path]:
    """Supported images under the input folder, skipping hidden files (our temporary
    files among them) and our own output, masks folder and shared mask when they lie
    inside it, so a rerun never treats its own outputs as inputs. Links that lead nowhere
    and special files with a photo's name are included: they are reported, not ignored."""
    src = resolved(job.input_dir)
    # Only folders strictly inside the input are skipped: an output folder *above* the
    # input (photos/raw -> photos) must not hide every input.
    skip = [resolved(p) for p in (job.output_dir, job.masks_dir, job.shared_mask)
            if p is not None and _inside(resolved(p), src)]
    masks_here = _masks_beside_photos(job)
    pattern = "**/*" if job.recursive else "*"
    found = []
    for path in sorted(job.input_dir.glob(pattern)):
        if _hidden(path, job.input_dir):
            continue
        real = resolved(path)
        if any(real == s or _inside(real, s) for s in skip):
            continue
        if masks_here and path.stem.lower().endswith(("_mask", ".mask")):
            continue
        if is_supported(path) and not path.is_dir():
            found.append(path)
    return found


class MaskFinder:
    """Matches photos to masks by file stem; each masks folder is listed once."""

    def __init__(self, job: BatchJob):
        self.job = job
        self._listing: dict[Path, dict[str, list[Path]]] = {}
        # With masks beside the photos, "photo.png" would be a photo too: names only.
        self.suffixes = MASK_SUFFIXES[1:] if _masks_beside_photos(job) else MASK_SUFFIXES

    def _stems(self, folder: Path) -> dict[str, list[Path]]:
        if folder not in self._listing:
            stems: dict[str, list[Path]] = {}
            if folder.is_dir():
                for p in sorted(folder.iterdir()):
                    if is_supported(p) and not p.is_dir() and not p.name.startswith("."):
                        stems.setdefault(p.stem.lower(), []).append(p)
            self._listing[folder] = stems
        return self._listing[folder]

    def find(self, image: Path) -> Path | None:
        if self.job.shared_mask is not None:
            return self.job.shared_mask
        rel = image.relative_to(self.job.input_dir)
        masks = self.job.masks_dir
        assert masks is not None  # check_folders: a masks folder or one shared mask
        for folder in dict.fromkeys([masks / rel.parent, masks]):
            for suffix in self.suffixes:
                for candidate in self._stems(folder).get(image.stem.lower() + suffix, []):
                    if resolved(candidate) != resolved(image):
                        return candidate
        return None


def plan(job: BatchJob) -> tuple[list[BatchItem], list[Path]]:
    """(items to process, images that have no mask)."""
    check_folders(job)
    finder = MaskFinder(job)
    items, unmatched = [], []
    for image in find_images(job):
        mask = finder.find(image)
        if mask is None:
            unmatched.append(image)
        else:
            items.append(BatchItem(image, mask, job.output_dir / image.relative_to(job.input_dir)))
    return items, unmatched


def unsafe_output(job: BatchJob, item: BatchItem, protected: set[Path],
                  record: OutputRecord) -> str | None:
    """Why writing `item.output` could lose a file of the person's, or None when it is safe."""
    target = resolved(item.output)
    if target in protected:
        return f"the output {item.output} would replace an input"
    if job.masks_dir is not None and _inside(target, resolved(job.masks_dir)):
        return f"the output {item.output} would land in the masks folder"
    if job.overwrite and item.output.exists() and not record.wrote(item.output):
        return (f"{item.output} exists and was not written by a batch run, so it is kept; "
                "move it away or choose another output folder")
    return None


class FolderLock:
    """The output folder's lock: one writing run at a time. A hidden lock file that the
    system releases when the process ends, however it ends (kill -9 included)."""

    def __init__(self, output_dir: Path):
        from filelock import FileLock

        self.folder = output_dir
        # Not thread-local: a run abandoned on one thread may be finalised on another.
        self._lock = FileLock(str(output_dir / BOOKKEEPING / LOCK_NAME), thread_local=False)

    def acquire(self, timeout_s: float) -> bool:
        """True once the lock is ours; False if another run still held it after `timeout_s`."""
        from filelock import Timeout

        try:
            (self.folder / BOOKKEEPING).mkdir(parents=True, exist_ok=True)
            self._lock.acquire(timeout=timeout_s)
        except Timeout:
            return False
        except OSError as exc:
            raise MoebiusError(f"cannot write to the output folder {self.folder}: "
                               f"{exc.strerror or exc}") from exc
        return True

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()
