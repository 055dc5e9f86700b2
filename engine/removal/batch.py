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
import os
import socket
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

from engine.disk import remove_stale_temps, temp_path
from engine.errors import MaskTooLarge, MoebiusError
from engine.events import CancelToken, Done, Failed, Item, JobEvent, Progress
from engine.imageio.checks import resolved
from engine.imageio.files import LoadedImage, load_image, load_mask, save_image
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
from engine.removal.job import RemovalJob, RemovalResult
from engine.removal.run import EngineHost, run_removal
from engine.removal.settings import EngineKind, RemovalSettings, variation_paths
from engine.removal.suggest import Suggestion, resolve_auto

__all__ = [  # the planning names are public here too, where callers always found them
    "MASK_SUFFIXES", "REPORT_NAME", "STATUSES", "BatchItem", "BatchJob", "BatchProgress",
    "BatchSummary", "ItemStatus", "MaskFinder", "Outcome", "check_folders", "find_images",
    "plan", "run_batch", "write_report",
    # the pieces of one photo's work, shared with the cluster batch (engine/removal/cluster.py)
    "done_outcome", "error_outcome", "hold_output_folder", "item_outcome", "load_failure",
    "no_mask_outcomes", "open_work", "protected_paths", "remove_stale_outputs",
    "run_in_output_folder",
    "removal_failed", "save_work", "triage", "worker_name",
]

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
    seed: int | None = None  # the seed the removal used (set when it finished)
    worker: str | None = None  # "host:pid" of the process that worked on the photo
    # With --variations: every file written, with its seed: [{"output": ..., "seed": ...}]
    variations: list[dict] = field(default_factory=list)


def worker_name() -> str:
    """This process, as the report names it: "host:pid"."""
    return f"{socket.gethostname()}:{os.getpid()}"


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
    engines = host or EngineHost()  # one host: the model loads once for the whole folder
    t0 = time.perf_counter()
    yield from run_in_output_folder(
        job, cancel, job.settings.check_device,
        lambda items, unmatched: _run_locked(job, items, unmatched, cancel, engines, t0))


def run_in_output_folder(job: BatchJob, cancel: CancelToken, check: Callable[[], None],
                         run: Callable[[list[BatchItem], list[Path]], Iterator[JobEvent]]
                         ) -> Iterator[JobEvent]:
    """What every batch run does around its work (local or on a cluster): plan the folder
    and `check` the request (Failed before any work when either is wrong), say how many
    photos there are, then `run` them while holding the output folder's lock."""
    try:
        items, unmatched = plan(job)
        check()
    except (MoebiusError, OSError) as exc:
        yield Failed(str(exc), error=exc if isinstance(exc, MoebiusError) else None)
        return
    n = len(items)
    yield BatchProgress("planned", 0, 0, 0.0, f"{n} photo(s) to clean", count=n,
                        files=tuple(str(i.source) for i in items))
    lock = FolderLock(job.output_dir)
    try:
        refused = yield from hold_output_folder(job, lock, cancel, n)
        if refused is not None:
            yield refused
            return
        yield from run(items, unmatched)
    finally:
        lock.release()


def hold_output_folder(job: BatchJob, lock: FolderLock, cancel: CancelToken,
                       count: int) -> Generator[JobEvent, None, Failed | None]:
    """Take the output folder's lock, waiting (and saying so) while another run holds it.
    Returns None once it is held, or the Failed that ends the run."""
    while True:
        got = _try_lock(lock)
        if isinstance(got, Failed):
            return got
        if got:
            return None
        if cancel.cancelled:
            return Failed("Cancelled while waiting for the output folder; nothing was "
                          "written.", cancelled=True)
        yield BatchProgress("waiting", 0, 0, 0.0, "Waiting for another batch run that is "
                            f"writing to {job.output_dir}…", count=count)


def _try_lock(lock: FolderLock) -> bool | Failed:
    try:
        return lock.acquire(WAIT_POLL_S)
    except MoebiusError as exc:
        return Failed(str(exc), error=exc)


def _run_locked(job: BatchJob, items: list[BatchItem], unmatched: list[Path],
                cancel: CancelToken, host: EngineHost, t0: float) -> Iterator[JobEvent]:
    """The run itself, holding the output folder's lock."""
    n = len(items)
    remove_stale_outputs(job, items)
    outcomes = no_mask_outcomes(unmatched)
    for o in outcomes:
        yield Item(o)
    protected = protected_paths(items, unmatched)
    record = OutputRecord(job.output_dir)
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
            outcome = item_outcome(item, ItemStatus.CANCELLED, f"not started: {why}")
        elif (triaged := triage(job, item, protected, record)) is not None:
            outcome = triaged
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
    except Exception as exc:  # noqa: BLE001 - e.g. out of memory
        return load_failure(exc)
    return None


def _one(job: BatchJob, item: BatchItem, index: int, count: int, span: tuple[float, float],
         cancel: CancelToken, host: EngineHost, masks: dict, record: OutputRecord):
    """(outcome, Failed when the model could not load, which ends the run, else None)."""
    t0 = time.perf_counter()
    src, name = str(item.source), str(item.source.relative_to(job.input_dir))
    try:
        image, mask = open_work(job, item, masks)
        settings, chosen = resolve_auto(job.settings, image.pixels)
        fatal = yield from _load_model(settings, host, item, index, count, span)
        if fatal is not None:
            return item_outcome(item, ItemStatus.FAILED, fatal.message), fatal
        for event in run_removal(RemovalJob(image.pixels, mask, settings), cancel, host):
            if isinstance(event, Progress):
                yield BatchProgress(event.stage, event.step, event.total,
                                    span[0] + span[1] * event.fraction,
                                    f"{index}/{count} done · {name}: {event.message}",
                                    source=src, index=index, count=count)
            elif isinstance(event, Failed):
                return removal_failed(item, event, time.perf_counter() - t0), None
            elif isinstance(event, Done):
                note = save_work(job, item, image, event.result, record)
                return done_outcome(item, time.perf_counter() - t0, note, event.result.seed,
                                    settings, chosen,
                                    variations=variation_records(item, event.result)), None
    except Exception as exc:  # noqa: BLE001 - one odd file must not end the run
        return error_outcome(item, exc, time.perf_counter() - t0), None
    return error_outcome(item, RuntimeError("the removal ended without a result"),
                         time.perf_counter() - t0), None


# --- One photo's work, in pieces --------------------------------------------------------
# The local run above calls them in one process; the cluster batch (cluster.py) calls
# them in its reading, removal and writing stages. Same pieces, same report.


def remove_stale_outputs(job: BatchJob, items: list[BatchItem]) -> None:
    """Temporary files of a run that was killed while saving (only ours, see engine.disk)."""
    for folder in dict.fromkeys([job.output_dir, *(i.output.parent for i in items)]):
        remove_stale_temps(folder)


def no_mask_outcomes(unmatched: list[Path]) -> list[Outcome]:
    return [Outcome(str(p), None, ItemStatus.NO_MASK, message="no mask found")
            for p in unmatched]


def protected_paths(items: list[BatchItem], unmatched: list[Path]) -> set[Path]:
    """Inputs and masks: outputs may never replace them (possible with nested folders)."""
    protected = {resolved(i.source) for i in items} | {resolved(p) for p in unmatched}
    return protected | {resolved(i.mask) for i in items if i.mask is not None}


def triage(job: BatchJob, item: BatchItem, protected: set[Path],
           record: OutputRecord) -> Outcome | None:
    """The outcome of a photo that needs no work (its output exists) or may not be written
    (unsafe); None when it is to be cleaned."""
    if not job.overwrite:
        # With --variations a photo is done when every one of its files is there.
        outputs = variation_paths(item.output, job.settings.variations, folder=True)
        if all(path.exists() for path in outputs):
            skipped = item_outcome(item, ItemStatus.SKIPPED, "output exists", output=True)
            if len(outputs) > 1:
                skipped.output = str(outputs[0].parent)
            return skipped
    unsafe = unsafe_output(job, item, protected, record)
    if unsafe is not None:
        return item_outcome(item, ItemStatus.FAILED, unsafe)
    return None


def load_failure(exc: BaseException) -> Failed:
    """The run's end when the model cannot load (it would fail every photo the same way)."""
    if isinstance(exc, MoebiusError):
        return Failed(str(exc), error=exc)
    log.error("the model could not be loaded", exc_info=exc)
    return Failed(f"The model could not be loaded: {exc}")


def open_work(job: BatchJob, item: BatchItem, masks: dict) -> tuple[LoadedImage, np.ndarray]:
    """Decode a photo and its mask, the job's MaskPolicy applied. Raises what
    `error_outcome` reports. `masks` caches a shared mask per photo size."""
    name = str(item.source.relative_to(job.input_dir))
    image = load_image(item.source)
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
    return image, job.masks.apply(pixels_mask, item.mask.name, name)


def save_work(job: BatchJob, item: BatchItem, image: LoadedImage, result: RemovalResult,
              record: OutputRecord) -> str:
    """Write the cleaned photo atomically (with variations, each candidate into the photo's
    own sub-folder: name/name-1.jpg ...); returns the JPEG note ("" when none)."""
    note = ""
    candidates = result.candidates
    for candidate, path in zip(candidates, variation_paths(item.output, len(candidates),
                                                           folder=True), strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        # A variation file an earlier, stopped run wrote is ours to replace; a person's not.
        ours = record.wrote(path)
        record.add(path)  # before the file exists: see OutputRecord
        saved = save_image(path, image, candidate.apply_to(image.pixels),
                           overwrite=job.overwrite or ours,
                           keep_jpeg_blocks=job.keep_jpeg_blocks)
        if job.keep_jpeg_blocks and saved.blocks_kept is False:
            note = saved.note
    return note


def variation_records(item: BatchItem, result: RemovalResult) -> list[dict]:
    """The report's list of a photo's variation files with their seeds ([] for one)."""
    candidates = result.candidates
    if len(candidates) == 1:
        return []
    paths = variation_paths(item.output, len(candidates), folder=True)
    return [{"output": str(p), "seed": c.seed} for c, p in zip(candidates, paths, strict=True)]


def item_outcome(item: BatchItem, status: ItemStatus, message: str = "", seconds: float = 0.0,
                 output: bool = False, worker: str | None = None) -> Outcome:
    return Outcome(str(item.source), str(item.output) if output else None, status, seconds,
                   message, str(item.mask), worker=worker)


def done_outcome(item: BatchItem, seconds: float, note: str, seed: int,
                 settings: RemovalSettings, chosen: Suggestion | None,
                 worker: str | None = None, variations: list[dict] | None = None) -> Outcome:
    """A cleaned photo's outcome; `settings` are the ones its removal used (with --model
    auto, made concrete for it by `resolve_auto`, which also gave `chosen`). With
    `variations` (variation_records) its output is the photo's sub-folder of them."""
    done = item_outcome(item, ItemStatus.DONE, "", seconds, output=True,
                        worker=worker or worker_name())
    done.note, done.seed = note, seed
    if variations:
        done.output, done.variations = str(Path(variations[0]["output"]).parent), variations
    if settings.engine is EngineKind.MOEBIUS:
        done.model = settings.variant
    if chosen is not None:
        done.model_reason = chosen.reason
    return done


def removal_failed(item: BatchItem, event: Failed, seconds: float,
                   worker: str | None = None) -> Outcome:
    """The outcome of a removal that ended with Failed (cancelled, or an error)."""
    if event.cancelled:
        return item_outcome(item, ItemStatus.CANCELLED, "cancelled while working; nothing "
                            "written", seconds, worker=worker or worker_name())
    return item_outcome(item, ItemStatus.FAILED, event.message, seconds,
                        worker=worker or worker_name())


def error_outcome(item: BatchItem, exc: BaseException, seconds: float,
                  worker: str | None = None) -> Outcome:
    """The outcome of a photo whose reading, mask, removal or saving raised `exc`."""
    worker = worker or worker_name()
    if isinstance(exc, MaskTooLarge):
        return item_outcome(item, ItemStatus.LARGE_MASK, str(exc), seconds, worker=worker)
    if isinstance(exc, MoebiusError):
        return item_outcome(item, ItemStatus.FAILED, str(exc), seconds, worker=worker)
    if isinstance(exc, OSError):  # the output folder or its record cannot be written
        return item_outcome(item, ItemStatus.FAILED, f"cannot write to {item.output.parent}: "
                            f"{exc.strerror or exc}", seconds, worker=worker)
    log.error("batch: %s failed", item.source, exc_info=exc)
    return item_outcome(item, ItemStatus.FAILED, f"Unexpected error: {exc}", seconds, worker=worker)


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
