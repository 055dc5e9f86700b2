"""Batch cleaning: the same kind of removal over a whole folder, safely and resumably.

Safety rules (engine/removal/batch_plan.py, all checked before any photo is touched):
inputs are never modified; the output folder may not be the input or masks folder, nor lie
inside the input folder while holding photos of its own; no output may land on an input or
a mask, and only files a batch run wrote are ever replaced. Outputs are written atomically,
so an interrupted run leaves only complete files (and its temporary file, which the next
run removes); a rerun skips what exists (unless `overwrite`). One run at a time writes to
an output folder; a second waits, then skips what the first finished. A file that fails is
reported and the run goes on; only a model that cannot load stops the run. Images without
a mask are listed, never guessed; a mask that covers most of its photo is not used unless
the job says the masks are inverted or large ones are wanted (`MaskPolicy`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from engine.disk import remove_stale_temps, temp_path
from engine.errors import MaskTooLarge, MoebiusError
from engine.events import CancelToken, Done, Failed, Item, JobEvent, Progress
from engine.imageio.checks import resolved
from engine.imageio.files import load_image, load_mask, save_image
from engine.removal.batch_plan import (
    MASK_SUFFIXES,
    BatchItem,
    BatchJob,
    FolderLock,
    MaskFinder,
    OutputRecord,
    check_folders,
    find_images,
    plan,
    unsafe_output,
)
from engine.removal.job import RemovalJob
from engine.removal.run import EngineHost, run_removal

__all__ = [  # the planning names are public here too, where callers always found them
    "MASK_SUFFIXES", "REPORT_NAME", "STATUSES", "BatchItem", "BatchJob", "BatchProgress",
    "BatchSummary", "ItemStatus", "MaskFinder", "Outcome", "check_folders", "find_images",
    "plan", "run_batch", "write_report",
]
from engine.removal.settings import EngineKind, RemovalSettings, variation_paths
from engine.removal.suggest import resolve_auto

log = logging.getLogger(__name__)

REPORT_NAME = "moebius-batch-report.json"
WAIT_POLL_S = 0.25  # how often a run waiting for the output folder checks for cancel


class ItemStatus(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"  # the output exists from an earlier run
    FAILED = "failed"
    NO_MASK = "no mask"
    LARGE_MASK = "mask too large"  # covers more than half of the photo: not used
    CANCELLED = "cancelled"


STATUSES = tuple(ItemStatus)


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
    seed: int | None = None  # of the removal written (Moebius; the first with variations)
    # With variations: every file written, with its seed: [{"output": ..., "seed": ...}]
    variations: list[dict] = field(default_factory=list)


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
        """Every photo with a mask is clean (done now or before)."""
        return self.count(ItemStatus.FAILED) == 0 and self.count(ItemStatus.LARGE_MASK) == 0

    def text(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in STATUSES if self.count(s)]
        return ", ".join(parts) or "nothing to do"


def run_batch(job: BatchJob, cancel: CancelToken | None = None,
              host: EngineHost | None = None) -> Iterator[JobEvent]:
    """Yields BatchProgress and one Item(Outcome) per file, then Done(BatchSummary); or
    Failed when the request is wrong (before any work) or the model cannot load (after
    writing the report)."""
    cancel = cancel or CancelToken()
    host = host or EngineHost()  # one host: the model loads once for the whole folder
    t0 = time.perf_counter()
    try:
        items, unmatched = plan(job)
        job.settings.check_device()
    except (MoebiusError, OSError) as exc:
        yield Failed(str(exc), error=exc if isinstance(exc, MoebiusError) else None)
        return
    n = len(items)
    yield BatchProgress("planned", 0, 0, 0.0, f"{n} photo(s) to clean", count=n,
                        files=tuple(str(i.source) for i in items))
    lock = FolderLock(job.output_dir)
    try:
        while True:
            got = _try_lock(lock)
            if isinstance(got, Failed):
                yield got
                return
            if got:
                break
            if cancel.cancelled:
                yield Failed("Cancelled while waiting for the output folder; nothing was "
                             "written.", cancelled=True)
                return
            yield BatchProgress("waiting", 0, 0, 0.0, "Waiting for another batch run that is "
                                f"writing to {job.output_dir}…", count=n)
        yield from _run_locked(job, items, unmatched, cancel, host, t0)
    finally:
        lock.release()


def _try_lock(lock: FolderLock) -> bool | Failed:
    try:
        return lock.acquire(WAIT_POLL_S)
    except MoebiusError as exc:
        return Failed(str(exc), error=exc)


def _run_locked(job: BatchJob, items: list[BatchItem], unmatched: list[Path],
                cancel: CancelToken, host: EngineHost, t0: float) -> Iterator[JobEvent]:
    """The run itself, holding the output folder's lock."""
    n = len(items)
    # Temporary files of a run that was killed while saving (only ours, see engine.disk).
    for folder in dict.fromkeys([job.output_dir, *(i.output.parent for i in items)]):
        remove_stale_temps(folder)
    outcomes = [Outcome(str(p), None, ItemStatus.NO_MASK, message="no mask found")
                for p in unmatched]
    for o in outcomes:
        yield Item(o)
    # Outputs may never replace an input photo or a mask (possible with nested folders).
    protected = {resolved(i.source) for i in items} | {resolved(p) for p in unmatched}
    protected |= {resolved(i.mask) for i in items if i.mask is not None}
    record = OutputRecord(job.output_dir)
    # The bar's fraction counts only files with work to do, so that skipped files do not
    # make the ETA (elapsed / fraction) look shorter than it is.
    work = sum(job.overwrite or not i.output.exists() for i in items) or 1
    worked = 0
    fatal: Failed | None = None
    masks: dict = {}  # a shared mask, decoded and scaled once per photo size
    for i, item in enumerate(items):
        span = (worked / work, 1 / work)
        unsafe = None
        if cancel.cancelled or fatal is not None:
            why = fatal.message if fatal else "the run was cancelled"
            outcome = _outcome(item, ItemStatus.CANCELLED, f"not started: {why}")
        elif item.output.exists() and not job.overwrite:
            outcome = _outcome(item, ItemStatus.SKIPPED, "output exists", output=True)
        elif (unsafe := unsafe_output(job, item, protected, record)) is not None:
            outcome = _outcome(item, ItemStatus.FAILED, unsafe)
        else:
            worked += 1
            outcome, fatal = yield from _one(job, item, i, n, span, cancel, host, masks, record)
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
         cancel: CancelToken, host: EngineHost, masks: dict, record: OutputRecord):
    """(outcome, Failed when the model could not load, which ends the run, else None)."""
    t0 = time.perf_counter()
    src, name = str(item.source), str(item.source.relative_to(job.input_dir))
    note, chosen = "", None
    written: list[dict] = []  # variations: each file with its seed
    seed = None
    try:
        image = load_image(item.source)
        settings, chosen = resolve_auto(job.settings, image.pixels)
        fatal = yield from _load_model(settings, host, item, index, count, span)
        if fatal is not None:
            return _outcome(item, ItemStatus.FAILED, fatal.message), fatal
        w, h = image.size
        # Masks of another size are scaled (nearest neighbour) when the aspect ratio
        # matches; otherwise load_mask raises MaskError and only this photo fails.
        key = (item.mask, w, h, image.orientation)
        pixels_mask = masks.get(key)
        assert item.mask is not None  # items without a mask are never worked on
        if pixels_mask is None:
            pixels_mask = load_mask(item.mask, (w, h), resize=True, orientation=image.orientation)
            if job.shared_mask is not None:  # decoding a 12 MP mask costs ~0.5 s
                if len(masks) >= 4:
                    masks.clear()
                pixels_mask.setflags(write=False)
                masks[key] = pixels_mask
        pixels_mask = job.masks.apply(pixels_mask, item.mask.name, name)
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
                candidates = event.result.candidates
                paths = variation_paths(item.output, len(candidates), folder=True)
                for result, path in zip(candidates, paths, strict=True):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    record.add(path)  # before the file exists: see OutputRecord
                    saved = save_image(path, image, result.apply_to(image.pixels),
                                       overwrite=job.overwrite,
                                       keep_jpeg_blocks=job.keep_jpeg_blocks)
                    if job.keep_jpeg_blocks and saved.blocks_kept is False:
                        note = saved.note
                    if len(candidates) > 1:
                        written.append({"output": str(path), "seed": result.seed})
                seed = candidates[0].seed
    except MaskTooLarge as exc:
        return _outcome(item, ItemStatus.LARGE_MASK, str(exc), time.perf_counter() - t0), None
    except MoebiusError as exc:
        return _outcome(item, ItemStatus.FAILED, str(exc), time.perf_counter() - t0), None
    except OSError as exc:  # the output folder or its record cannot be written
        return _outcome(item, ItemStatus.FAILED, f"cannot write to {item.output.parent}: "
                        f"{exc.strerror or exc}", time.perf_counter() - t0), None
    except Exception as exc:  # noqa: BLE001 - one odd file must not end the run
        log.exception("batch: %s failed", src)
        return _outcome(item, ItemStatus.FAILED, f"Unexpected error: {exc}",
                        time.perf_counter() - t0), None
    done = _outcome(item, ItemStatus.DONE, "", time.perf_counter() - t0, output=True)
    done.note = note
    if settings.engine is EngineKind.MOEBIUS:
        done.seed = seed
    if written:
        done.output = str(Path(written[0]["output"]).parent)
        done.variations = written
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
        tmp = temp_path(path)
        try:
            tmp.write_text(json.dumps(data, indent=1, default=str))
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        return path
    except OSError as exc:
        log.warning("could not write the batch report %s: %s", path, exc)
        return None
