"""`python main.py remove PHOTO --mask MASK -o OUT`: one photo, with a progress bar."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.options import add_removal_options, report_failure, settings_from_args
from engine.cli.progress_bar import ProgressBar
from engine.events import Done, Failed, Progress

REENCODE_HELP = ("JPEG output: encode the whole picture again instead of re-encoding only "
                 "the blocks the removal changed")


def add_parser(sub) -> None:
    p = sub.add_parser("remove", help="remove what a mask marks from one photo")
    p.add_argument("image", type=Path)
    p.add_argument("--mask", type=Path, required=True,
                   help="mask image of the same size: white (>= 128) = remove")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--reencode-jpeg", action="store_true", help=REENCODE_HELP)
    add_removal_options(p)


def run(args: argparse.Namespace) -> int:
    from engine.imageio.files import load_image, load_mask, save_image
    from engine.removal.job import RemovalJob
    from engine.removal.run import run_removal
    from engine.removal.suggest import resolve_auto

    settings = settings_from_args(args)
    if args.output.resolve() == args.image.resolve() and not args.overwrite:
        print("error: the output would replace the input photo; pass --overwrite to allow it",
              file=sys.stderr)
        return 1
    if args.output.exists() and not args.overwrite:
        print(f"error: {args.output} exists; pass --overwrite to replace it", file=sys.stderr)
        return 1
    image = load_image(args.image)
    h, w = image.pixels.shape[:2]
    mask = load_mask(args.mask, (w, h))
    settings, found = resolve_auto(settings, image.pixels)
    if found is not None:
        print(f"model: {found.variant} (auto: {found.reason})", file=sys.stderr)
    job = RemovalJob(image.pixels, mask, settings)
    bar = ProgressBar(sys.stderr)
    for event in run_removal(job):
        if isinstance(event, Progress):
            bar.update(event)
        elif isinstance(event, Failed):
            bar.close()
            report_failure(event)
            return 1
        elif isinstance(event, Done):
            bar.close()
            result = event.result
            saved = save_image(args.output, image, result.apply_to(image.pixels),
                               overwrite=args.overwrite, keep_jpeg_blocks=not args.reencode_jpeg)
            print(f"{saved.path}  ({result.regions} region(s), {result.seconds:.1f} s, "
                  f"{result.engine}, seed {result.seed})")
            if saved.note:
                print(f"  {saved.note}")
    return 0
