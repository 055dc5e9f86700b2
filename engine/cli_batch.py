"""`python main.py batch INPUT_DIR -o OUTPUT_DIR (--masks DIR | --mask FILE) ...`"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.events import Done, Failed, Item, Progress
from engine.progress_bar import ProgressBar


def add_parser(sub) -> None:
    from engine.cli import add_quality_options

    p = sub.add_parser("batch", help="clean a whole folder of photos",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=(
                           "Masks are matched by file name: photo.jpg takes photo.png, "
                           "photo_mask.png or photo.mask.png from the masks folder.\n"
                           "Existing outputs are skipped unless --overwrite, so an "
                           "interrupted run resumes where it stopped."))
    p.add_argument("input_dir", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, dest="output_dir")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--masks", type=Path, help="folder of masks, one per photo")
    group.add_argument("--mask", type=Path, help="one mask for every photo (resized to each)")
    p.add_argument("--recursive", action="store_true", help="include sub-folders")
    p.add_argument("--overwrite", action="store_true", help="redo photos whose output exists")
    add_quality_options(p)


def run(args) -> int:
    from engine.batch import BatchJob, run_batch
    from engine.cli import job_options

    job = BatchJob(args.input_dir, args.output_dir, args.masks, args.mask, args.recursive,
                   args.overwrite, job_options(args))
    bar = ProgressBar(sys.stderr)
    code = 0
    for event in run_batch(job):
        if isinstance(event, Progress):
            bar.update(event)
        elif isinstance(event, Item):
            o = event.outcome
            if o.status in ("failed", "no mask"):
                bar.close()
                print(f"{o.status}: {o.source}: {o.message}", file=sys.stderr)
        elif isinstance(event, Failed):
            bar.close()
            print(f"error: {event.message}", file=sys.stderr)
            return 1
        elif isinstance(event, Done):
            bar.close()
            summary = event.result
            print(f"{summary.text()} in {summary.seconds:.1f} s; report: {summary.report}")
            code = 0 if summary.ok else 1
    return code
