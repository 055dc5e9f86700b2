"""Batch cleaning: the same kind of removal over a whole folder, safely and resumably.

Safety rules: inputs are never modified; the output folder may not be the input folder
(nor the masks folder), and no output may land on an input or a mask; outputs are written
atomically, so an interrupted run leaves only complete files, and a rerun skips what
exists (unless `overwrite`). A file that fails is reported and the run goes on; only a
model that cannot load stops the run. Images without a mask are listed, never guessed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from engine.errors import MoebiusError
from engine.events import CancelToken, Done, Failed, Item, JobEvent, Progress
from engine.imageio.files import is_supported, load_image, load_mask, save_image
from engine.removal.job import RemovalJob
from engine.removal.run import EngineHost, run_removal
from engine.removal.settings import EngineKind, RemovalSettings
from engine.removal.suggest import resolve_auto

log = logging.getLogger(__name__)

REPORT_NAME = "moebius-batch-report.json"
MASK_SUFFIXES = ("", "_mask", ".mask")  # photo.png, photo_mask.png, photo.mask.png


class ItemStatus(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"  # the output exists from an earlier run
    FAILED = "failed"
    NO_MASK = "no mask"
    CANCELLED = "cancelled"


STATUSES = tuple(ItemStatus)


@dataclass(frozen=True)
class BatchJob:
    input_dir: Path
    output_dir: Path
    masks_dir: Path | None = None  # one mask per photo, matched by name
    shared_mask: Path | None = None  # or one mask for every photo
    recursive: bool = False
    overwrite: bool = False
    settings: RemovalSettings = field(default_factory=RemovalSettings)
    keep_jpeg_blocks: bool = True  # JPEG outputs re-encode only the blocks that changed


@dataclass(frozen=True)
class BatchItem:
    source: Path
    mask: Path | None
    output: Path


@dataclass
class Outcome:
    source: str
    output: str | None
    status: ItemStatus
    seconds: float = 0.0
    message: str = ""
    mask: str | None = None
    note: str = ""  # why a JPEG had to be re-encoded whole, when that was not asked for
    model: str = ""  # the fine-tune used; with --model auto, chosen for this photo
    model_reason: str = ""  # with --model auto: why that fine-tune


@dataclass(frozen=True)
class BatchProgress(Progress):
    """Progress of a batch: the current file's removal stage plus where the run stands.

    A subclass, so consumers of plain `Progress` (the CLI bar, the worker) need no change.
    The first event (stage "planned") lists every file that will be processed, in order.
    """

    source: str = ""  # the file being worked on
    index: int = 0  # files finished so far
    count: int = 0  # files to process (photos without a mask not included)
    files: tuple[str, ...] = ()  # only on the "planned" event


@dataclass(frozen=True)
class BatchSummary:
    outcomes: list[Outcome]
    report: Path | None
    seconds: float

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return self.count(ItemStatus.FAILED) == 0

    def text(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in STATUSES if self.count(s)]
        return ", ".join(parts) or "nothing to do"


def check_folders(job: BatchJob) -> None:
    src, out = job.input_dir.resolve(), job.output_dir.resolve()
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
        if job.masks_dir.resolve() == out:
            raise MoebiusError("the output folder may not be the masks folder")
    if job.shared_mask is not None and not job.shared_mask.is_file():
        raise MoebiusError(f"mask not found: {job.shared_mask}")


def _masks_beside_photos(job: BatchJob) -> bool:
    return job.masks_dir is not None and job.masks_dir.resolve() == job.input_dir.resolve()


def find_images(job: BatchJob) -> list[Path]:
    """Supported images under the input folder, skipping hidden files (our temporary
    files among them) and our own output, masks folder and shared mask when they lie
    inside it, so a rerun never treats its own outputs as inputs."""
    src = job.input_dir.resolve()
    # Only folders strictly inside the input are skipped: an output folder *above* the
    # input (photos/raw -> photos) must not hide every input.
    skip = [p.resolve() for p in (job.output_dir, job.masks_dir, job.shared_mask)
            if p is not None and src in p.resolve().parents]
    masks_here = _masks_beside_photos(job)
    pattern = "**/*" if job.recursive else "*"
    found = []
    for path in sorted(job.input_dir.glob(pattern)):
        rel = path.relative_to(job.input_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        resolved = path.resolve()
        if any(resolved == s or s in resolved.parents for s in skip):
            continue
        if masks_here and path.stem.lower().endswith(("_mask", ".mask")):
            continue
        if path.is_file() and is_supported(path):
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
                    if p.is_file() and is_supported(p) and not p.name.startswith("."):
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
                    if candidate.resolve() != image.resolve():
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


def run_batch(job: BatchJob, cancel: CancelToken | None = None,
              host: EngineHost | None = None) -> Iterator[JobEvent]:
    """Yields BatchProgress and one Item(Outcome) per file, then Done(BatchSummary); or
    Failed when the folders are wrong or the model cannot load (after writing the report)."""
    cancel = cancel or CancelToken()
    host = host or EngineHost()  # one host: the model loads once for the whole folder
    t0 = time.perf_counter()
    try:
        items, unmatched = plan(job)
    except (MoebiusError, OSError) as exc:
        yield Failed(str(exc))
        return
    n = len(items)
    yield BatchProgress("planned", 0, 0, 0.0, f"{n} photo(s) to clean", count=n,
                        files=tuple(str(i.source) for i in items))
    outcomes = [Outcome(str(p), None, ItemStatus.NO_MASK, message="no mask found")
                for p in unmatched]
    for o in outcomes:
        yield Item(o)
    # Outputs may never replace an input photo or a mask (possible with nested folders).
    protected = {i.source.resolve() for i in items} | {p.resolve() for p in unmatched}
    protected |= {i.mask.resolve() for i in items if i.mask is not None}
    # The bar's fraction counts only files with work to do, so that skipped files do not
    # make the ETA (elapsed / fraction) look shorter than it is.
    work = sum(job.overwrite or not i.output.exists() for i in items) or 1
    worked = 0
    fatal: Failed | None = None
    masks: dict = {}  # a shared mask, decoded and scaled once per photo size
    for i, item in enumerate(items):
        span = (worked / work, 1 / work)
        if cancel.cancelled or fatal is not None:
            why = fatal.message if fatal else "the run was cancelled"
            outcome = _outcome(item, ItemStatus.CANCELLED, f"not started: {why}")
        elif item.output.exists() and not job.overwrite:
            outcome = _outcome(item, ItemStatus.SKIPPED, "output exists", output=True)
        elif item.output.resolve() in protected:
            outcome = _outcome(item, ItemStatus.FAILED,
                               f"the output {item.output} would replace an input")
        else:
            worked += 1
            outcome, fatal = yield from _one(job, item, i, n, span, cancel, host, masks)
        outcomes.append(outcome)
        yield Item(outcome)
        # Between files too, so that skips and failures move the bar and the count.
        yield BatchProgress("file", 0, 0, 1.0 if i + 1 == n else worked / work,
                            f"{i + 1}/{n} done", source=str(item.source), index=i + 1, count=n)
    seconds = time.perf_counter() - t0
    report = write_report(job, outcomes, seconds)
    if fatal is not None:
        yield Failed(fatal.message, error=fatal.error)
    else:
        yield Done(BatchSummary(outcomes, report, seconds))


def _load_model(settings: RemovalSettings, host: EngineHost, item: BatchItem, index: int,
                count: int, span: tuple[float, float]):
    """Load the network before the first photo that needs it. A model that cannot load
    would fail every photo the same way, so it ends the run instead: returns Failed."""
    try:
        if host.is_loaded(settings):
            return None
        yield BatchProgress("loading", 0, 1, span[0], "Loading the model…",
                            source=str(item.source), index=index, count=count)
        host.get(settings)
    except MoebiusError as exc:
        return Failed(str(exc), error=exc)
    except Exception as exc:  # noqa: BLE001 - e.g. out of memory
        log.exception("the model could not be loaded")
        return Failed(f"The model could not be loaded: {exc}")
    return None


def _outcome(item: BatchItem, status: ItemStatus, message: str = "", seconds: float = 0.0,
             output: bool = False) -> Outcome:
    return Outcome(str(item.source), str(item.output) if output else None, status, seconds,
                   message, str(item.mask))


def _one(job: BatchJob, item: BatchItem, index: int, count: int, span: tuple[float, float],
         cancel: CancelToken, host: EngineHost, masks: dict):
    """(outcome, Failed when the model could not load, which ends the run, else None)."""
    t0 = time.perf_counter()
    src, name = str(item.source), str(item.source.relative_to(job.input_dir))
    note, chosen = "", None
    try:
        image = load_image(item.source)
        settings, chosen = resolve_auto(job.settings, image.pixels)
        fatal = yield from _load_model(settings, host, item, index, count, span)
        if fatal is not None:
            return _outcome(item, ItemStatus.FAILED, fatal.message), fatal
        w, h = image.size
        # Masks of another size are scaled (nearest neighbour) when the aspect ratio
        # matches; otherwise load_mask raises MaskError and only this photo fails.
        pixels_mask = masks.get((item.mask, w, h))
        assert item.mask is not None  # items without a mask are never worked on
        if pixels_mask is None:
            pixels_mask = load_mask(item.mask, (w, h), resize=True)
            if job.shared_mask is not None:  # decoding a 12 MP mask costs ~0.5 s
                if len(masks) >= 4:
                    masks.clear()
                pixels_mask.setflags(write=False)
                masks[(item.mask, w, h)] = pixels_mask
        removal = RemovalJob(image.pixels, pixels_mask, settings)
        for event in run_removal(removal, cancel, host):
            if isinstance(event, Progress):
                yield BatchProgress(event.stage, event.step, event.total,
                                    span[0] + span[1] * event.fraction,
                                    f"{index}/{count} done · {name}: {event.message}",
                                    source=src, index=index, count=count)
            elif isinstance(event, Failed):
                if event.cancelled:
                    return _outcome(item, ItemStatus.CANCELLED, "cancelled while working; nothing "
                                    "written", time.perf_counter() - t0), None
                return _outcome(item, ItemStatus.FAILED, event.message,
                                time.perf_counter() - t0), None
            elif isinstance(event, Done):
                item.output.parent.mkdir(parents=True, exist_ok=True)
                saved = save_image(item.output, image, event.result.apply_to(image.pixels),
                                   overwrite=job.overwrite, keep_jpeg_blocks=job.keep_jpeg_blocks)
                if job.keep_jpeg_blocks and saved.blocks_kept is False:
                    note = saved.note
    except MoebiusError as exc:
        return _outcome(item, ItemStatus.FAILED, str(exc), time.perf_counter() - t0), None
    except Exception as exc:  # noqa: BLE001 - one odd file must not end the run
        log.exception("batch: %s failed", src)
        return _outcome(item, ItemStatus.FAILED, f"Unexpected error: {exc}",
                        time.perf_counter() - t0), None
    done = _outcome(item, ItemStatus.DONE, "", time.perf_counter() - t0, output=True)
    done.note = note
    if settings.engine is EngineKind.MOEBIUS:
        done.model = settings.variant
    if chosen is not None:
        done.model_reason = chosen.reason
    return done, None


def write_report(job: BatchJob, outcomes: list[Outcome], seconds: float) -> Path | None:
    """The JSON report in the output folder: settings, counts and every file's outcome."""
    path = job.output_dir / REPORT_NAME
    data = {
        "input": str(job.input_dir), "output": str(job.output_dir),
        "masks": str(job.masks_dir or job.shared_mask), "settings": job.settings.to_json(),
        "seconds": round(seconds, 3),
        "counts": {s: sum(o.status == s for o in outcomes) for s in STATUSES},
        "files": [asdict(o) for o in outcomes],
    }  # fmt: skip
    try:
        job.output_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(data, indent=1, default=str))
        tmp.replace(path)
        return path
    except OSError as exc:
        log.warning("could not write the batch report %s: %s", path, exc)
        return None
