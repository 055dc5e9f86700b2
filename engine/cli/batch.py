"""`python main.py batch INPUT_DIR -o OUTPUT_DIR (--masks DIR | --mask FILE) ...`"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from engine.cli.options import (
    LARGE_MASK_HINT,
    add_mask_options,
    add_removal_options,
    mask_policy_from_args,
    report_failure,
    settings_from_args,
)
from engine.cli.progress_bar import ProgressBar
from engine.cli.remove import REENCODE_HELP
from engine.events import Done, Failed, Item, Progress

DESCRIPTION = """\
Remove the same kind of object from every photo of a folder.

Masks are matched by file name: photo.jpg takes photo.png, photo_mask.png or
photo.mask.png from the masks folder (or from its sub-folder of the same relative
path); masks of another size are scaled when the aspect ratio matches. Photos
without a mask are listed, never guessed; a photo whose mask covers more than half
of it is skipped with a warning (see --invert-masks and --allow-large-masks).
Outputs keep each photo's name, format and metadata; the originals are never
modified or replaced, and an output folder inside the photos folder must hold no
photos of its own. Existing outputs are skipped unless --overwrite (which replaces
only files a batch run wrote), so an interrupted run resumes where it stopped; a
second run on the same output folder waits for the first. A report,
moebius-batch-report.json, is written to the output folder. The exit status is 1
if any photo failed or was skipped for its mask.

With --cluster the same job runs on Ray: photos are read and written by CPU tasks
and cleaned by removal workers (one model load each, a GPU each where the cluster
has GPUs), with the same rules, skips and report; a worker that dies costs no photo
(it is retried, --retries times at most)."""


def add_parser(sub) -> None:
    p = sub.add_parser("batch", help="clean a whole folder of photos",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=DESCRIPTION)
    p.add_argument("input_dir", type=_local_path)
    p.add_argument("-o", "--output", type=_local_path, required=True, dest="output_dir")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--masks", type=_local_path, help="folder of masks, one per photo")
    group.add_argument("--mask", type=_local_path,
                       help="one mask for every photo (scaled to each; same aspect ratio)")
    p.add_argument("--recursive", action="store_true",
                   help="include sub-folders (their structure is kept in the output)")
    p.add_argument("--overwrite", action="store_true",
                   help="redo photos whose output exists (only outputs a batch run wrote)")
    p.add_argument("--reencode-jpeg", action="store_true", help=REENCODE_HELP)
    add_mask_options(p)
    add_removal_options(p)
    cluster = p.add_argument_group(
        "cluster", "run the same job on a Ray cluster (needs pip install "
        "'moebius-studio[cluster]' on this machine and every node; the folders must be "
        "paths every node sees)")
    cluster.add_argument("--cluster", metavar="ADDRESS",
                         help="'local' (start Ray on this machine for the run), 'auto' (the "
                              "cluster this machine belongs to), HOST:PORT or ray://HOST:10001")
    cluster.add_argument("--actors", type=_positive, metavar="N",
                         help="removal workers, each loading the model once (default: one per "
                              "GPU of the cluster, or half its CPUs)")
    cluster.add_argument("--retries", type=_retries, default=2, metavar="N",
                         help="further attempts at a photo whose worker process died "
                              "(0-10, default 2)")


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def _local_path(text: str) -> Path:
    """A folder or file path; object-storage URLs are refused with the way to use them (the
    folder rules, the output folder's lock and its record of outputs need a filesystem)."""
    if _URL.match(text):
        raise argparse.ArgumentTypeError(
            f"{text} is a URL, and batch works on paths: mount the bucket at the same path "
            "on this machine and every node (README: \"Run it on your cluster\")")
    return Path(text)


def _positive(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text}")
    return int(text)


def _retries(text: str) -> int:
    if not text.isdigit() or int(text) > 10:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 10, not {text}")
    return int(text)


def _events(args, job):
    """The local run, or the same job on a Ray cluster (Ray is imported only then)."""
    if args.cluster is None:
        from engine.removal.batch import run_batch

        return run_batch(job)
    from engine.removal.cluster import ClusterOptions, run_cluster_batch

    return run_cluster_batch(job, ClusterOptions(args.cluster, args.actors, args.retries))


def run(args) -> int:
    from engine.removal.batch import BatchJob, ItemStatus, write_report

    if args.cluster is None and (args.actors is not None or args.retries != 2):
        print("error: --actors and --retries are for --cluster runs", file=sys.stderr)
        return 2
    job = BatchJob(args.input_dir, args.output_dir, args.masks, args.mask, args.recursive,
                   args.overwrite, settings_from_args(args), mask_policy_from_args(args),
                   keep_jpeg_blocks=not args.reencode_jpeg)
    bar = ProgressBar(sys.stderr)
    outcomes = []
    t0 = time.perf_counter()
    events = _events(args, job)
    waiting = False
    try:
        for event in events:
            if isinstance(event, Progress):
                if event.stage == "waiting":
                    if not waiting:  # once, not every poll
                        bar.close()
                        print(event.message, file=sys.stderr)
                    waiting = True
                    continue
                bar.update(event)
            elif isinstance(event, Item):
                o = event.outcome
                outcomes.append(o)
                if o.status in (ItemStatus.FAILED, ItemStatus.NO_MASK, ItemStatus.LARGE_MASK):
                    bar.close()
                    print(f"{o.status}: {o.source}: {o.message}", file=sys.stderr)
                elif o.note:  # a JPEG re-encoded whole although blocks were to be kept
                    bar.close()
                    print(f"note: {o.source}: {o.note}", file=sys.stderr)
            elif isinstance(event, Failed):
                bar.close()
                report_failure(event)
                return 1
            elif isinstance(event, Done):
                bar.close()
                summary = event.result
                if summary.count(ItemStatus.LARGE_MASK):
                    print(f"{summary.count(ItemStatus.LARGE_MASK)} photo(s) were not cleaned "
                          f"because their mask covers most of the photo. {LARGE_MASK_HINT}",
                          file=sys.stderr)
                print(f"{summary.text()} in {summary.seconds:.1f} s; report: {summary.report}")
                return 0 if summary.ok else 1
    except KeyboardInterrupt:
        # The file being worked on was not written (saves are atomic); finished ones stay.
        bar.close()
        report = write_report(job, outcomes, time.perf_counter() - t0)
        close = getattr(events, "close", None)  # a generator: lets go of the output folder
        if close is not None:
            close()
        done = sum(o.status == "done" for o in outcomes)
        print(f"\ninterrupted after {done} new file(s); run the same command again to "
              f"resume. Report: {report}", file=sys.stderr)
        return 130
    return 1  # the generator ended without a verdict: should not happen
