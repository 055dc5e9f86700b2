"""Options shared by `remove` and `batch`: parsed and range-checked by argparse, then
turned into the one `RemovalSettings` type, so the command line, batch and the app
agree on every default and range."""

from __future__ import annotations

import argparse
import math
import sys

from engine.errors import WeightsMissing
from engine.events import Failed
from engine.removal.settings import RANGES, EngineKind, RemovalSettings
from engine.removal.suggest import AUTO
from engine.sampling.device import DEVICE_CHOICES, QUALITY_CHOICES
from engine.weights import zoo

DEFAULTS = RemovalSettings()


def _number(name: str, kind: type):
    """An argparse type that accepts only finite numbers in RANGES[name]."""
    rng = RANGES[name]

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__} number") from None
        if not math.isfinite(value) or not rng.low <= value <= rng.high:
            raise argparse.ArgumentTypeError(f"must be between {rng.text()}, not {text}")
        return value

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def _variant(text: str) -> str:
    if text.strip().lower() == AUTO:
        return AUTO  # chosen per photo from the faces in it (engine.removal.suggest)
    try:
        return zoo.resolve(text).id
    except Exception as exc:  # UnknownModel: argparse prints it as a usage error
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_removal_options(p: argparse.ArgumentParser) -> None:
    r = RANGES
    p.add_argument("--engine", choices=[str(e) for e in EngineKind], default=str(DEFAULTS.engine),
                   help="moebius (diffusion model, best) or quick (classical, no download)")
    p.add_argument("--model", type=_variant, default=DEFAULTS.variant, dest="variant",
                   help="Moebius fine-tune: places2 (default), general, celebahq, ffhq, or "
                        "auto (chosen per photo from the faces in it; see `models suggest`)")
    p.add_argument("--steps", type=_number("steps", int), default=DEFAULTS.steps,
                   help=f"sampling steps, {r['steps'].text()} (default {DEFAULTS.steps})")
    p.add_argument("--guidance", type=_number("guidance", float), default=DEFAULTS.guidance,
                   help=f"guidance scale, {r['guidance'].text()} (default {DEFAULTS.guidance})")
    p.add_argument("--seed", type=_number("seed", int), default=DEFAULTS.seed,
                   help=f"random seed, 0 to 2^64-1 (default {DEFAULTS.seed})")
    p.add_argument("--device", default=DEFAULTS.device,
                   help=f"{', '.join(DEVICE_CHOICES)} or cuda:N (default auto)")
    p.add_argument("--quality", choices=QUALITY_CHOICES, default=DEFAULTS.quality,
                   help="exact: fp32; fast: fp16 on GPUs, bf16 on CPUs that have it "
                        "(slightly different pixels); auto (default): fast on a GPU only")
    p.add_argument("--no-colour-match", dest="colour_match", action="store_false",
                   help="do not match the fill's colour to its surroundings")


def settings_from_args(args: argparse.Namespace) -> RemovalSettings:
    """The RemovalSettings the parsed options describe (SettingsError if they are wrong)."""
    return RemovalSettings(engine=EngineKind(args.engine), variant=args.variant,
                           steps=args.steps, guidance=args.guidance, seed=args.seed,
                           device=args.device, quality=args.quality,
                           colour_match=args.colour_match)


def report_failure(event: Failed) -> None:
    """One clear line on stderr, plus the way out when a model is not installed."""
    print(f"error: {event.message}", file=sys.stderr)
    if event.is_a(WeightsMissing):
        print("(or use --engine quick, which needs no download)", file=sys.stderr)
