"""Command line: `python main.py remove|batch|models ...`.

This module prints (it is the command line); the rest of the engine logs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from engine.errors import MoebiusError
from engine.events import Done, Failed, Progress
from engine.progress_bar import ProgressBar

DEFAULT_MODEL = "ft_places2"


def add_quality_options(p: argparse.ArgumentParser) -> None:
    """Options shared by `remove` and `batch`."""
    p.add_argument("--engine", choices=("quick", "moebius"), default="moebius",
                   help="moebius (diffusion model, best) or quick (classical, no download)")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="Moebius fine-tune: places2 (default), general, celebahq, ffhq")
    p.add_argument("--steps", type=int, default=20, help="sampling steps (default 20)")
    p.add_argument("--guidance", type=float, default=2.5, help="guidance scale (default 2.5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--quality", choices=("auto", "exact", "fast"), default="auto",
                   help="exact: fp32; fast: fp16 on GPUs, bf16 on CPUs that have it "
                        "(slightly different pixels); auto (default): fast on a GPU only")
    p.add_argument("--no-colour-match", dest="colour_match", action="store_false",
                   help="do not match the fill's colour to its surroundings")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("moebius-studio")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "(source)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moebius-studio",
                                     description="Object removal with Moebius.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    rm = sub.add_parser("remove", help="remove what a mask marks from one photo")
    rm.add_argument("image", type=Path)
    rm.add_argument("--mask", type=Path, required=True,
                    help="mask image of the same size: white (>= 128) = remove")
    rm.add_argument("-o", "--output", type=Path, required=True)
    rm.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    add_quality_options(rm)

    from engine import cli_batch, cli_models

    cli_batch.add_parser(sub)
    cli_models.add_parser(sub)
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "remove":
            return cmd_remove(args)
        if args.command == "batch":
            from engine import cli_batch

            return cli_batch.run(args)
        from engine import cli_models

        return cli_models.run(args)
    except MoebiusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; nothing was written", file=sys.stderr)
        return 130


def report_failure(event: Failed) -> None:
    """One clear line on stderr, plus the way out when a model is not installed."""
    print(f"error: {event.message}", file=sys.stderr)
    if event.error == "WeightsMissing":
        print("(or use --engine quick, which needs no download)", file=sys.stderr)


def job_options(args) -> dict:
    from engine.zoo import resolve

    return dict(engine=args.engine, model=resolve(args.model).id, steps=args.steps,
                guidance=args.guidance, seed=args.seed, device=args.device,
                quality=args.quality, colour_match=args.colour_match)


def cmd_remove(args) -> int:
    from engine.image_io import load_image, load_mask, save_image
    from engine.removal import RemovalJob, run_removal

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
    job = RemovalJob(image.pixels, mask, **job_options(args))
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
            out = save_image(args.output, image, result.apply_to(image.pixels),
                             overwrite=args.overwrite)
            print(f"{out}  ({result.regions} region(s), {result.seconds:.1f} s, "
                  f"{result.engine}, seed {result.seed})")
    return 0
