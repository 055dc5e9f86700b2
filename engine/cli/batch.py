"""`python main.py batch INPUT_DIR -o OUTPUT_DIR (--masks DIR | --mask FILE) ...`"""

from __future__ import annotations

import argparse
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
if any photo failed or was skipped for its mask."""


def add_parser(sub) -> None:
    p = sub.add_parser("batch", help="clean a whole folder of photos",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=DESCRIPTION)
    p.add_argument("input_dir", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, dest="output_dir")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--masks", type=Path, help="folder of masks, one per photo")
    group.add_argument("--mask", type=Path,
                       help="one mask for every photo (scaled to each; same aspect ratio)")
    p.add_argument("--recursive", action="store_true",
                   help="include sub-folders (their structure is kept in the output)")
    p.add_argument("--overwrite", action="store_true",
                   help="redo photos whose output exists (only outputs a batch run wrote)")
    p.add_argument("--reencode-jpeg", action="store_true", help=REENCODE_HELP)
    add_mask_options(p)
    add_removal_options(p)


def run(args) -> int:
    from engine.removal.batch import BatchJob, ItemStatus, run_batch, write_report

    job = BatchJob(args.input_dir, args.output_dir, args.masks, args.mask, args.recursive,
                   args.overwrite, settings_from_args(args), mask_policy_from_args(args),
                   keep_jpeg_blocks=not args.reencode_jpeg)
    bar = ProgressBar(sys.stderr)
    outcomes = []
    t0 = time.perf_counter()
    events = run_batch(job)
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
