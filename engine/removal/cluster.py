"""Batch cleaning on a Ray cluster: the local batch's job, its work spread over machines.

`run_cluster_batch(job, ClusterOptions(address))` is the same generator of events as
`run_batch` (BatchProgress, one Item per file, then Done(BatchSummary) or Failed) and keeps
the same guarantees, because the driver (this process) does everything that decides what
happens to a file exactly as a local run does: it plans with `plan` (folder rules, mask
matching), holds the output folder's lock for the whole run (one writing run per folder),
skips finished photos, refuses unsafe outputs, and writes the one report. Only the work
moves to the cluster, on Ray Data (`cluster_stages.py`):

    read + decode (CPU tasks) -> removal (actor pool) -> encode + atomic write (CPU tasks)

Each removal actor loads the model once; actors get a GPU each where the cluster has GPUs
(a share of one when there are more actors than GPUs). Every file on the way is written
through the local batch's `save_work`: atomically, recorded in the output folder's record
first (each writing process in a file of its own), names, formats and metadata kept.

Faults. A process that dies (killed, out of memory, a lost node) loses no photo: Ray
restarts the actor and retries the photo there, at most `retries` more times; it is
reported once, by the attempt that finished it. A photo whose every attempt killed its
worker is reported failed and the run goes on. Nothing half-written is ever visible (the
writes are atomic; at the end of a run each node removes the temporary files its dead
processes left). Stopping the driver (Ctrl+C, or `cancel`) stops the cluster's work
before the output folder is let go; a rerun skips what was finished.

Ray is an optional dependency (`pip install moebius-studio[cluster]`); it is imported
here only, when a cluster run starts.
"""

from __future__ import annotations

import logging
import secrets
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.errors import DeviceUnavailable, MoebiusError
from engine.events import CancelToken, Done, Failed, Item, JobEvent
from engine.removal.batch import (
    BatchItem,
    BatchJob,
    BatchProgress,
    BatchSummary,
    ItemStatus,
    Outcome,
    item_outcome,
    no_mask_outcomes,
    protected_paths,
    remove_stale_outputs,
    run_in_output_folder,
    triage,
    write_report,
)
from engine.removal.batch_plan import OutputRecord
from engine.removal.cluster_session import LOCAL, RaySession
from engine.removal.cluster_stages import (
    Remover,
    Work,
    close_run,
    open_run,
    pack,
    read_photo,
    write_photo,
)
from engine.removal.run import EngineHost
from engine.removal.settings import EngineKind, RemovalSettings

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ClusterOptions:
    address: str = LOCAL  # "local", "auto", "HOST:PORT" or "ray://HOST:10001"
    actors: int | None = None  # removal actors; None: one per GPU, or half the CPUs
    retries: int = 2  # further attempts at a photo whose worker process died
    # Builds each actor's EngineHost (tests inject a loader or a fault); None: the
    # installed models, read by every actor from its own machine's models folder.
    host_factory: Callable[[], EngineHost] | None = None


@dataclass(frozen=True)
class ActorPlan:
    count: int
    num_cpus: float
    num_gpus: float  # per actor: 1, or a share of one when actors outnumber GPUs
    threads: int  # torch threads per actor (CPU removal)

    def text(self) -> str:
        where = f"{self.num_gpus:g} GPU" if self.num_gpus else f"{self.num_cpus:g} CPU"
        return f"{self.count} removal worker(s), {where} each"


def plan_actors(settings: RemovalSettings, resources: dict[str, float],
                actors: int | None) -> ActorPlan:
    """How many removal actors, and what each asks of the cluster.

    GPU actors for the Moebius engine where the cluster has GPUs (unless the device is
    cpu or mps); otherwise CPU actors sharing half the CPUs, the other half being left
    for reading and writing (a Quick removal costs about as much as its decode+encode).
    """
    gpus = float(resources.get("GPU", 0.0))
    cpus = max(1.0, float(resources.get("CPU", 1.0)))
    on_gpu = (settings.engine is EngineKind.MOEBIUS and gpus > 0
              and settings.device not in ("cpu", "mps"))
    if on_gpu:
        count = actors or max(1, int(gpus))
        return ActorPlan(count, 1.0, min(1.0, gpus / count), 1)
    count = actors or max(1, int(cpus // 2))
    share = max(cpus / 2, 1.0) / count  # Ray accounts fractions; threads are whole
    return ActorPlan(count, round(min(share, cpus), 3), 0.0, max(1, round(share)))


def run_cluster_batch(job: BatchJob, options: ClusterOptions,
                      cancel: CancelToken | None = None) -> Iterator[JobEvent]:
    """The batch on a Ray cluster; events and report as `run_batch` gives them."""
    cancel = cancel or CancelToken()
    t0 = time.perf_counter()
    yield from run_in_output_folder(  # the device is checked against the cluster's own
        job, cancel, lambda: None,
        lambda items, unmatched: _run_locked(job, options, items, unmatched, cancel, t0))


def _run_locked(job: BatchJob, options: ClusterOptions, items: list[BatchItem],
                unmatched: list[Path], cancel: CancelToken, t0: float) -> Iterator[JobEvent]:
    n = len(items)
    remove_stale_outputs(job, items)
    protected = protected_paths(items, unmatched)
    record = OutputRecord(job.output_dir)
    settled: dict[int, Outcome] = {}
    for i, item in enumerate(items):
        if (triaged := triage(job, item, protected, record)) is not None:
            settled[i] = triaged
    todo = [i for i in range(n) if i not in settled]
    session = None
    if todo:  # the cluster and the device are checked before anything is reported
        try:
            session = RaySession.open(options.address)
            settings = _actor_settings(job.settings, session.resources())
        except MoebiusError as exc:
            if session is not None:
                session.close()
            yield Failed(str(exc), error=exc)
            return
    first = no_mask_outcomes(unmatched)
    for o in [*first, *settled.values()]:
        yield Item(o)
    ended: _Ended | None = None
    if session is not None:
        try:
            ended = yield from _work_on_cluster(job, replace(job, settings=settings), options,
                                                session, items, todo, settled, cancel)
        finally:
            session.close_work()
            close_run(job.output_dir)  # no task of this run writes from here on
            _sweep(session, job, [items[i] for i in todo])
            session.close()
        record.merge_writers()
    why = _Why(ended, cancel.cancelled, min((i for i in todo if i not in settled), default=-1))
    outcomes = first + [settled.get(i) or _unsettled(job, items[i], i, why, options)
                        for i in range(n)]
    seconds = time.perf_counter() - t0
    report = write_report(job, outcomes, seconds)
    if ended is not None:
        yield ended.failed
    else:
        yield Done(BatchSummary(outcomes, report, seconds))


@dataclass(frozen=True)
class _Ended:
    """Why a run ended before every photo came back."""

    failed: Failed
    model: bool  # the model could not be loaded (else: the cluster stopped working)


@dataclass(frozen=True)
class _Why:
    ended: _Ended | None
    cancelled: bool
    first_left: int  # the first photo in plan order that never came back


def _unsettled(job: BatchJob, item: BatchItem, index: int, why: _Why,
               options: ClusterOptions) -> Outcome:
    """The outcome of a photo that never came back from the cluster."""
    ended = why.ended
    if ended is not None and ended.model:  # as a local run: the first left fails, the
        if index == why.first_left:  # rest are not started
            return item_outcome(item, ItemStatus.FAILED, ended.failed.message)
        return item_outcome(item, ItemStatus.CANCELLED, f"not started: {ended.failed.message}")
    if ended is not None or why.cancelled:
        if not job.overwrite and item.output.exists():  # written while the run stopped
            return item_outcome(item, ItemStatus.DONE, "finished while the run was stopping",
                                output=True)
        reason = ended.failed.message if ended is not None else "the run was cancelled"
        return item_outcome(item, ItemStatus.CANCELLED, f"not finished: {reason}")
    return item_outcome(item, ItemStatus.FAILED,
                        f"lost on the cluster: its worker process died on each of "
                        f"{options.retries + 1} attempts (killed or out of memory); "
                        "nothing was written")


def _work_on_cluster(job: BatchJob, actor_job: BatchJob, options: ClusterOptions,
                     session: RaySession, items: list[BatchItem], todo: list[int],
                     settled: dict[int, Outcome], cancel: CancelToken):
    """Stream the photos through the cluster, filling `settled` as outcomes arrive;
    returns why the run ended early, or None."""
    import pickle

    actors = plan_actors(actor_job.settings, session.resources(), options.actors)
    n, total = len(items), len(todo)
    yield BatchProgress("starting", 0, 0, 0.0, f"Starting {actors.text()} on the cluster…",
                        count=n)
    run = secrets.token_hex(8)
    open_run(job.output_dir, run)
    rows = session.start(_pipeline(job, actor_job, options, actors, session,
                                   [(i, items[i]) for i in todo], run))
    finished = 0
    try:
        for row in rows:
            index = int(row["index"])
            fatal = pickle.loads(row["fatal"])
            if fatal is not None:
                log.info("the model could not be loaded on the cluster: %s", fatal.message)
                return _Ended(fatal, model=True)
            outcome: Outcome = pickle.loads(row["outcome"])
            settled[index] = outcome
            finished += 1
            yield Item(outcome)
            yield BatchProgress("file", 0, 0, finished / total, f"{len(settled)}/{n} done",
                                source=outcome.source, index=len(settled), count=n)
            if cancel.cancelled:
                break
    except Exception as exc:  # noqa: BLE001 - a lost head node, an actor pool that
        log.info("the cluster stopped the run", exc_info=exc)  # cannot start, ...
        return _Ended(Failed(f"The Ray cluster stopped working: {type(exc).__name__}: {exc}"
                             .split("\n")[0]), model=False)
    return None


def _actor_settings(settings: RemovalSettings, resources: dict[str, float]) -> RemovalSettings:
    """The settings the actors run with: on the cluster Ray hands each GPU actor its GPU,
    which the actor sees as its first, so cuda:N means cuda there."""
    if settings.engine is not EngineKind.MOEBIUS:
        return settings
    if settings.device.startswith("cuda"):
        if not resources.get("GPU"):
            raise DeviceUnavailable(f"--device {settings.device}: the Ray cluster has no "
                                    "GPUs; use --device auto or cpu")
        if settings.device != "cuda":
            log.warning("on a cluster each worker gets its own GPU; --device %s is taken "
                        "as cuda", settings.device)
            return replace(settings, device="cuda")
    return settings


def _pipeline(job: BatchJob, actor_job: BatchJob, options: ClusterOptions, actors: ActorPlan,
              session: RaySession, work: list[tuple[int, BatchItem]], run: str):
    """The Ray Data pipeline (lazy): one photo per block, so a lost block is one photo."""
    import ray.data

    rows = [pack(Work(i, item)) for i, item in work]
    ds: Any = ray.data.from_items(rows, override_num_blocks=len(rows))  # Ray types maps loosely
    # Photos come back as they finish; a photo lost after its retries is left out (the
    # driver reports it), not allowed to end the whole run.
    ds.context.max_errored_blocks = -1
    ds.context.enable_progress_bars = False
    ds.context.print_on_execution_start = False
    env = session.remote_env()
    # Bounded retries: Ray Data's own default retries a task whose process died forever,
    # and a photo that kills every worker (a decoder crash, out of memory) would never end.
    # Ray takes these as "ray_remote_args", which it says it drops in 2.64 (pyproject pins
    # ray below that until it says what replaces them).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
        ds = ds.map(read_photo, fn_args=(job, run), num_cpus=1, max_retries=options.retries,
                    retry_exceptions=False, **env)
        ds = ds.map(Remover, fn_constructor_args=(actor_job, actors.threads,
                                                  options.host_factory),
                    compute=ray.data.ActorPoolStrategy(size=actors.count,
                                                       max_tasks_in_flight_per_actor=1),
                    num_cpus=actors.num_cpus, num_gpus=actors.num_gpus or None,
                    max_restarts=-1, max_task_retries=options.retries, **env)
        return ds.map(write_photo, fn_args=(job, run), num_cpus=1, max_retries=options.retries,
                      retry_exceptions=False, **env)


def _sweep(session: RaySession, job: BatchJob, items: list[BatchItem]) -> None:
    folders = sorted({str(job.output_dir), *(str(i.output.parent) for i in items)})
    session.sweep(folders)
    remove_stale_outputs(job, items)  # and the driver's own machine
