"""`python main.py remove PHOTO --mask MASK -o OUT`: one photo, with a progress bar.

The whole request is checked before any work, in this order: the options (argparse and
`RemovalSettings`), the photo and mask files (regular files of a format we open, read no
further than their first bytes), the output (extension, folder, what it would replace),
and the device. Only then are the images decoded, then the model loaded, then the work
done; so a mistake costs a second, never a finished removal.
"""

from __future__ import annotations

import argparse
import sys
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
from engine.errors import MaskError, MaskTooLarge
from engine.events import Done, Failed, Progress
from engine.removal.settings import variation_paths

REENCODE_HELP = ("JPEG output: encode the whole picture again instead of re-encoding only "
                 "the blocks the removal changed")


def add_parser(sub) -> None:
    p = sub.add_parser("remove", help="remove what a mask marks from one photo")
    p.add_argument("image", type=Path)
    p.add_argument("--mask", type=Path, required=True,
                   help="mask image: white (grey >= 128) = remove; a mask of another size "
                        "with the photo's aspect ratio is scaled to fit")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT if it exists (even when OUT is the input photo)")
    p.add_argument("--reencode-jpeg", action="store_true", help=REENCODE_HELP)
    add_mask_options(p)
    add_removal_options(p)


def check_request(args: argparse.Namespace):
    """Everything that can be known before decoding a pixel; returns the settings."""
    from engine.imageio.checks import check_output, probe, same_file

    settings = settings_from_args(args)
    fmt = probe(args.image)
    probe(args.mask)
    if same_file(args.mask, args.image):
        raise MaskError(f"The mask '{args.mask}' is the photo itself; give the mask image "
                        "that marks in white what to remove.")
    if same_file(args.output, args.mask):
        raise MaskError(f"The output '{args.output}' would replace the mask; choose another "
                        "name.")
    for output in variation_paths(args.output, settings.variations):
        check_output(output, overwrite=args.overwrite, default_format=fmt,
                     inputs=(args.image,))
    settings.check_device()
    return settings


def run(args: argparse.Namespace) -> int:
    from engine.disk import remove_stale_temps
    from engine.imageio.files import load_image, load_mask, save_image
    from engine.removal.job import RemovalJob
    from engine.removal.run import run_removal
    from engine.removal.suggest import resolve_auto

    settings = check_request(args)
    remove_stale_temps(args.output.parent)  # left by a run killed while saving
    image = load_image(args.image)
    mask = load_mask(args.mask, image.size, resize=True, orientation=image.orientation)
    try:
        mask = mask_policy_from_args(args).apply(mask, args.mask.name, args.image.name)
    except MaskTooLarge as exc:
        print(f"error: {exc} {LARGE_MASK_HINT}", file=sys.stderr)
        return 1
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
            candidates = event.result.candidates
            paths = variation_paths(args.output, len(candidates))
            for result, path in zip(candidates, paths, strict=True):
                saved = save_image(path, image, result.apply_to(image.pixels),
                                   overwrite=args.overwrite,
                                   keep_jpeg_blocks=not args.reencode_jpeg)
                print(f"{saved.path}  ({result.regions} region(s), {result.seconds:.1f} s, "
                      f"{result.engine}, seed {result.seed})")
                if saved.note:
                    print(f"  {saved.note}")
    return 0
