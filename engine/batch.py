"""Batch cleaning: the same kind of removal over a whole folder, safely and resumably.

Safety rules: inputs are never modified; the output folder may not be the input folder;
outputs are written atomically, so an interrupted run leaves only complete files, and a
rerun skips what exists (unless `overwrite`). A file that fails is reported and the run
goes on. Images without a mask are listed, never guessed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.errors import MoebiusError
from engine.events import CancelToken, Done, Failed, Item, JobEvent, Progress
from engine.image_io import is_supported, load_image, load_mask, save_image
from engine.removal import EngineHost, RemovalJob, run_removal

log = logging.getLogger(__name__)

REPORT_NAME = "moebius-batch-report.json"
MASK_SUFFIXES = ("", "_mask", ".mask")  # photo.png, photo_mask.png, photo.mask.png


@dataclass(frozen=True)
class BatchJob:
    input_dir: Path
    output_dir: Path
    masks_dir: Path | None = None  # one mask per photo, matched by name
    shared_mask: Path | None = None  # or one mask for every photo
    recursive: bool = False
    overwrite: bool = False
    options: dict = field(default_factory=dict)  # RemovalJob fields: engine, model, steps...


@dataclass(frozen=True)
class BatchItem:
    source: Path
    mask: Path | None
    output: Path


@dataclass
class Outcome:
    source: str
    output: str | None
    status: str  # "done", "skipped", "failed", "no mask", "cancelled"
    seconds: float = 0.0
    message: str = ""


@dataclass(frozen=True)
class BatchSummary:
    outcomes: list[Outcome]
    report: Path | None
    seconds: float

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def text(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in ("done", "skipped", "failed", "no mask",
                                                   "cancelled") if self.count(s)]
        return ", ".join(parts) or "nothing to do"


def check_folders(job: BatchJob) -> None:
    src, out = job.input_dir.resolve(), job.output_dir.resolve()
    if not src.is_dir():
        raise MoebiusError(f"input folder not found: {job.input_dir}")
    if src == out:
        raise MoebiusError("the output folder may not be the input folder: "
                           "originals are never overwritten")
    if (job.masks_dir is None) == (job.shared_mask is None):
        raise MoebiusError("give either a masks folder or one shared mask")
    if job.masks_dir is not None and not job.masks_dir.is_dir():
        raise MoebiusError(f"masks folder not found: {job.masks_dir}")
    if job.shared_mask is not None and not job.shared_mask.is_file():
        raise MoebiusError(f"mask not found: {job.shared_mask}")


def find_images(job: BatchJob) -> list[Path]:
    """Supported images under the input folder, skipping our own output and mask folders."""
    skip = [p.resolve() for p in (job.output_dir, job.masks_dir) if p is not None]
    pattern = "**/*" if job.recursive else "*"
    found = []
    for path in sorted(job.input_dir.glob(pattern)):
        resolved = path.resolve()
        if any(resolved == s or s in resolved.parents for s in skip):
            continue
        if path.is_file() and is_supported(path) and not _looks_like_mask(path):
            found.append(path)
    return found


def _looks_like_mask(path: Path) -> bool:
    return path.stem.endswith("_mask") or path.stem.endswith(".mask")


def find_mask(job: BatchJob, image: Path) -> Path | None:
    if job.shared_mask is not None:
        return job.shared_mask
    rel = image.relative_to(job.input_dir)
    for folder in dict.fromkeys([job.masks_dir / rel.parent, job.masks_dir]):
        for suffix in MASK_SUFFIXES:
            for candidate in sorted(folder.glob(f"{_glob_escape(image.stem)}{suffix}.*")):
                if is_supported(candidate) and candidate.resolve() != image.resolve():
                    return candidate
    return None


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def plan(job: BatchJob) -> tuple[list[BatchItem], list[Path]]:
    """(items to process, images that have no mask)."""
    check_folders(job)
    items, unmatched = [], []
    for image in find_images(job):
        mask = find_mask(job, image)
        if mask is None:
            unmatched.append(image)
        else:
            items.append(BatchItem(image, mask, job.output_dir / image.relative_to(job.input_dir)))
    return items, unmatched


def run_batch(job: BatchJob, cancel: CancelToken | None = None,
              host: EngineHost | None = None) -> Iterator[JobEvent]:
    """Yields Progress and one Item(Outcome) per file, then Done(BatchSummary) or Failed."""
    cancel = cancel or CancelToken()
    host = host or EngineHost()  # one host: the model loads once for the whole folder
    t0 = time.perf_counter()
    try:
        items, unmatched = plan(job)
    except MoebiusError as exc:
        yield Failed(str(exc))
        return
    outcomes = [Outcome(str(p), None, "no mask", message="no mask found") for p in unmatched]
    for o in outcomes:
        yield Item(o)
    n = len(items)
    for i, item in enumerate(items):
        if cancel.cancelled:
            outcome = Outcome(str(item.source), None, "cancelled")
        else:
            outcome = yield from _one(job, item, i, n, cancel, host)
        outcomes.append(outcome)
        yield Item(outcome)
    report = _write_report(job, outcomes)
    yield Done(BatchSummary(outcomes, report, time.perf_counter() - t0))


def _one(job: BatchJob, item: BatchItem, index: int, count: int, cancel: CancelToken,
         host: EngineHost):
    t0 = time.perf_counter()
    name = item.source.name
    if item.output.exists() and not job.overwrite:
        return Outcome(str(item.source), str(item.output), "skipped", 0.0, "output exists")
    try:
        image = load_image(item.source)
        h, w = image.pixels.shape[:2]
        mask = load_mask(item.mask, (w, h), resize=job.shared_mask is not None)
        removal = RemovalJob(image.pixels, mask, **job.options)
        for event in run_removal(removal, cancel, host):
            if isinstance(event, Progress):
                yield Progress(event.stage, event.step, event.total,
                               (index + event.fraction) / count,
                               f"{name} ({index + 1}/{count}): {event.message}")
            elif isinstance(event, Failed):
                status = "cancelled" if event.cancelled else "failed"
                return Outcome(str(item.source), None, status, time.perf_counter() - t0,
                               event.message)
            elif isinstance(event, Done):
                item.output.parent.mkdir(parents=True, exist_ok=True)
                save_image(item.output, image, event.result.apply_to(image.pixels),
                           overwrite=job.overwrite)
    except MoebiusError as exc:
        return Outcome(str(item.source), None, "failed", time.perf_counter() - t0, str(exc))
    return Outcome(str(item.source), str(item.output), "done", time.perf_counter() - t0)


def _write_report(job: BatchJob, outcomes: list[Outcome]) -> Path | None:
    path = job.output_dir / REPORT_NAME
    try:
        job.output_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"files": [asdict(o) for o in outcomes]}, indent=1))
        tmp.replace(path)
        return path
    except OSError as exc:
        log.warning("could not write the batch report %s: %s", path, exc)
        return None
