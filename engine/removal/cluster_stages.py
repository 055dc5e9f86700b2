"""The cluster batch's three stages, as Ray runs them on the cluster's workers.

    read (CPU tasks) -> remove (an actor pool: one model load per actor) -> write (CPU tasks)

Each stage calls the same pieces as the local batch (`engine.removal.batch`: `open_work`,
`run_removal`, `save_work` and the outcome makers), so a photo's output and its line in
the report are the ones a local run gives. A row is `{"index": i, "work": <pickled Work>}`:
one pickled value per photo keeps Ray Data from guessing column types across photos whose
pixels, masks and metadata differ in shape and kind.

What a stage does not finish, it passes on: a photo that could not be read carries its
outcome through the removal and write stages untouched. A stage never raises for one
photo's fault; only a dying process (killed, out of memory) makes Ray retry the photo.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.disk import remove_stale_temps, temp_path
from engine.events import Done, Failed
from engine.imageio.files import LoadedImage
from engine.removal.batch import (
    BatchItem,
    BatchJob,
    ItemStatus,
    Outcome,
    done_outcome,
    error_outcome,
    item_outcome,
    load_failure,
    open_work,
    removal_failed,
    save_work,
    variation_records,
    worker_name,
)
from engine.removal.batch_plan import BOOKKEEPING, OutputRecord
from engine.removal.job import RemovalJob, RemovalResult
from engine.removal.run import EngineHost, run_removal
from engine.removal.settings import EngineKind, RemovalSettings
from engine.removal.suggest import AUTO, Suggestion, resolve_auto

log = logging.getLogger(__name__)

Row = dict[str, Any]


@dataclass
class Work:
    """One photo on its way through the stages."""

    index: int  # its place in the plan (the report lists photos in plan order)
    item: BatchItem
    image: LoadedImage | None = None
    mask: np.ndarray | None = None
    result: RemovalResult | None = None
    outcome: Outcome | None = None  # set by the stage that settled the photo's fate
    seconds: float = 0.0  # time spent working on it so far (queues not included)
    worker: str | None = None  # the removal actor that cleaned it
    # The model could not be loaded on that worker: the run ends, as a local run does.
    fatal: Failed | None = None
    # The settings its removal uses: the job's, or with --model auto the fine-tune chosen
    # for this photo from its faces (`chosen` says why), found by the reading task.
    settings: RemovalSettings | None = None
    chosen: Suggestion | None = None


def pack(work: Work) -> Row:
    return {"index": work.index, "work": pickle.dumps(work, protocol=pickle.HIGHEST_PROTOCOL)}


def unpack(row: Row) -> Work:
    return pickle.loads(row["work"])


class _MaskCache:
    """A shared mask decoded once per photo size in each worker process, as a local run
    does once per run; keyed by run, so a later run never sees an earlier run's mask."""

    run: str = ""
    masks: dict = {}

    @classmethod
    def of(cls, run: str) -> dict:
        if run != cls.run:
            cls.run, cls.masks = run, {}
        return cls.masks


def read_photo(row: Row, job: BatchJob, run: str) -> Row:
    """Decode the photo and its mask; with --model auto, choose its fine-tune (CPU task)."""
    work = unpack(row)
    t0 = time.perf_counter()
    try:
        work.image, work.mask = open_work(job, work.item, _MaskCache.of(run))
        work.settings, work.chosen = resolve_auto(job.settings, work.image.pixels)
    except Exception as exc:  # noqa: BLE001 - reported in the photo's outcome
        work.outcome = error_outcome(work.item, exc, time.perf_counter() - t0)
    work.seconds += time.perf_counter() - t0
    return pack(work)


class Remover:
    """A removal actor: loads the model once, then cleans one photo per call.

    A model that cannot load is not raised (Ray would restart the actor over and over):
    every photo sent here comes back with it as `fatal`, and the driver ends the run
    with that message, as a local run does. With --model auto the fine-tune is chosen per
    photo, so it is loaded by the first photo that needs it (one model held at a time).
    """

    def __init__(self, job: BatchJob, threads: int,
                 host_factory: Callable[[], EngineHost] | None = None):
        self.job = job
        self.worker = worker_name()
        self.fatal: Failed | None = None
        if threads > 0:  # the actor's share of its machine's CPUs, not all of them
            import cv2

            cv2.setNumThreads(threads)
            if job.settings.engine is EngineKind.MOEBIUS:
                import torch

                torch.set_num_threads(threads)
        self.host = host_factory() if host_factory is not None else EngineHost()
        if job.settings.variant != AUTO:
            self._load(job.settings)

    def _load(self, settings: RemovalSettings) -> None:
        try:
            self.host.get(settings)
        except Exception as exc:  # noqa: BLE001 - reported once, by the driver
            self.fatal = _portable(load_failure(exc))
            log.error("%s: %s", self.worker, self.fatal.message)

    def __call__(self, row: Row) -> Row:
        work = unpack(row)
        if work.outcome is not None:  # not readable: nothing to remove
            return row
        assert work.image is not None and work.mask is not None
        work.worker = self.worker
        settings = work.settings or self.job.settings
        if self.fatal is None and not self.host.is_loaded(settings):
            self._load(settings)
        if self.fatal is not None:  # the driver settles this photo and the rest
            work.fatal = self.fatal
            work.image = work.mask = None
            return pack(work)
        t0 = time.perf_counter()
        removal = RemovalJob(work.image.pixels, work.mask, settings)
        try:
            for event in run_removal(removal, None, self.host):
                if isinstance(event, Failed):
                    work.outcome = removal_failed(work.item, event,
                                                  work.seconds + time.perf_counter() - t0,
                                                  self.worker)
                elif isinstance(event, Done):
                    work.result = event.result
        except Exception as exc:  # noqa: BLE001 - run_removal reports its own; be sure
            work.outcome = error_outcome(work.item, exc, work.seconds, self.worker)
        work.seconds += time.perf_counter() - t0
        work.mask = None  # the writer needs the photo and the patch only
        if work.outcome is not None:
            work.image = None
        return pack(work)


def write_photo(row: Row, job: BatchJob, run: str) -> Row:
    """Encode and write the cleaned photo atomically (CPU task); returns its outcome."""
    work = unpack(row)
    if work.outcome is None and work.fatal is None:
        assert work.image is not None and work.result is not None
        t0 = time.perf_counter()
        try:
            if not run_is_current(job.output_dir, run):  # a task left over from a stopped run
                work.outcome = item_outcome(work.item, ItemStatus.CANCELLED,
                                            "not finished: the run had stopped")
            elif job.overwrite or not work.item.output.exists():
                note = save_work(job, work.item, work.image, work.result,
                                 OutputRecord(job.output_dir, writer=_writer_id()))
            else:  # a retried task: its first attempt had finished the file (atomically)
                note = ""
            if work.outcome is None:
                work.outcome = done_outcome(work.item, work.seconds + time.perf_counter() - t0,
                                            note, work.result.seed,
                                            work.settings or job.settings, work.chosen,
                                            work.worker, variation_records(work.item,
                                                                           work.result))
        except Exception as exc:  # noqa: BLE001 - reported in the photo's outcome
            work.outcome = error_outcome(work.item, exc, work.seconds + time.perf_counter()
                                         - t0, work.worker)
    return {"index": work.index, "outcome": pickle.dumps(work.outcome),
            "fatal": pickle.dumps(work.fatal)}


# The run that may write to an output folder, named in a file beside its lock. The driver
# holds the folder's lock, but cannot always see its tasks end: once it has let go of the
# folder (after Ctrl+C, say), a writing task still on its way finds another name here, or
# none, and writes nothing.
RUN_FILE = "run"


def open_run(output_dir: Path, run: str) -> None:
    """Name `run` as the output folder's writing run (while holding its lock)."""
    path = output_dir / BOOKKEEPING / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        tmp.write_text(run)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def close_run(output_dir: Path) -> None:
    try:
        (output_dir / BOOKKEEPING / RUN_FILE).unlink(missing_ok=True)
    except OSError as exc:  # the lock still keeps other runs out
        log.warning("could not remove %s: %s", output_dir / BOOKKEEPING / RUN_FILE, exc)


def run_is_current(output_dir: Path, run: str) -> bool:
    try:
        return (output_dir / BOOKKEEPING / RUN_FILE).read_text() == run
    except OSError:
        return False


def sweep_temporaries(folders: list[str]) -> int:
    """Remove the temporary files that dead processes of this machine left in `folders`
    (run on every node at the end of a run: only a process's own machine can tell that
    it is gone)."""
    return sum(len(remove_stale_temps(Path(f))) for f in folders)


def _writer_id() -> str:
    """This process's name for its own output record: host and pid, file-name safe."""
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40]
    return f"{host}-{os.getpid()}"


def _portable(failed: Failed) -> Failed:
    """`failed` as it can cross to the driver (an exception that does not unpickle is
    dropped; its message stays)."""
    try:
        pickle.loads(pickle.dumps(failed))
        return failed
    except Exception:  # noqa: BLE001
        return Failed(failed.message, failed.cancelled)
