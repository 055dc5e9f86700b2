"""Options shared by `remove` and `batch`: parsed and range-checked by argparse, then
turned into the one `RemovalSettings` type, so the command line, batch and the app
agree on every default and range."""

from __future__ import annotations

import argparse
import sys

from engine.errors import SettingsError, WeightsMissing
from engine.events import Failed
from engine.removal.masks import MaskPolicy
from engine.removal.settings import RANGES, EngineKind, RemovalSettings
from engine.removal.suggest import AUTO
from engine.sampling.device import DEVICE_CHOICES, QUALITY_CHOICES
from engine.sampling.hardware import device_option_help
from engine.weights import zoo

DEFAULTS = RemovalSettings()


# The numeric settings the command line offers, with their help. The range and default
# come from RANGES and RemovalSettings, so --help states exactly what is checked; a new
# numeric setting needs its range in RANGES and a line here (or in NOT_ON_COMMAND_LINE),
# which tests/test_settings.py enforces.
NUMBER_HELP = {
    "steps": "sampling steps",
    "guidance": "guidance scale: how strongly the fill follows the model's idea of a clean "
                "photo",
    "strength": "denoising strength: near 1 ignores what was under the mask",
    "seed": "random seed (the same seed gives the same result)",
    "variations": "candidates to write, one seed each (seed, seed + regions, ...): OUT-1 ... "
                  "OUT-N (batch: one sub-folder per photo); they share the encoder pass",
}
NOT_ON_COMMAND_LINE = ("context",)  # internal tuning of the region windows


def _number(name: str):
    """An argparse type that accepts only finite numbers in RANGES[name]."""
    rng = RANGES[name]

    def parse(text: str):
        try:
            value = int(text) if rng.whole else float(text)
        except ValueError:
            kind = "whole number" if rng.whole else "number"
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind}") from None
        try:
            return rng.check(name, value)
        except SettingsError:
            raise argparse.ArgumentTypeError(f"must be between {rng.text()}, not {text}"
                                             ) from None

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
    p.add_argument("--engine", choices=[str(e) for e in EngineKind], default=str(DEFAULTS.engine),
                   help="moebius (diffusion model, best) or quick (classical, no download)")
    p.add_argument("--model", type=_variant, default=DEFAULTS.variant, dest="variant",
                   help="Moebius fine-tune: places2 (default), general, celebahq, ffhq, or "
                        "auto (chosen per photo from the faces in it; see `models suggest`)")
    for name, what in NUMBER_HELP.items():
        default = getattr(DEFAULTS, name)
        p.add_argument(f"--{name}", type=_number(name), default=default,
                       help=f"{what}; {RANGES[name].text()} (default {default})")
    p.add_argument("--device", type=_device, default=DEFAULTS.device,
                   help=device_option_help())
    p.add_argument("--quality", choices=QUALITY_CHOICES, default=DEFAULTS.quality,
                   help="exact: fp32; fast: fp16 on GPUs, bf16 on CPUs that have it "
                        "(slightly different pixels); auto (default): fast on a GPU only")
    p.add_argument("--no-colour-match", dest="colour_match", action="store_false",
                   help="do not match the fill's colour to its surroundings")


def _device(text: str) -> str:
    kind, _, index = text.partition(":")
    if text in DEVICE_CHOICES or (kind == "cuda" and index.isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"unknown device {text!r}; choose one of "
                                     f"{', '.join(DEVICE_CHOICES)} or cuda:N")


def add_mask_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--invert-masks", "--invert-mask", dest="invert_masks", action="store_true",
                   help="masks mark what to remove in black (and what to keep in white)")
    p.add_argument("--allow-large-masks", "--allow-large-mask", dest="allow_large_masks",
                   action="store_true",
                   help="use masks that cover more than half of their photo (otherwise such a "
                        "photo is skipped with a warning: usually the mask has the other "
                        "black/white convention, or is not a mask at all)")


def mask_policy_from_args(args: argparse.Namespace) -> MaskPolicy:
    return MaskPolicy(invert=args.invert_masks, allow_large=args.allow_large_masks)


LARGE_MASK_HINT = ("If your masks mark what to remove in black, pass --invert-masks; to "
                   "remove that much anyway, pass --allow-large-masks.")


def settings_from_args(args: argparse.Namespace) -> RemovalSettings:
    """The RemovalSettings the parsed options describe (SettingsError if they are wrong)."""
    numbers = {name: getattr(args, name) for name in NUMBER_HELP}
    return RemovalSettings(engine=EngineKind(args.engine), variant=args.variant,
                           device=args.device, quality=args.quality,
                           colour_match=args.colour_match, **numbers)


def report_failure(event: Failed) -> None:
    """One clear line on stderr, plus the way out when a model is not installed."""
    print(f"error: {event.message}", file=sys.stderr)
    if event.is_a(WeightsMissing):
        print("(or use --engine quick, which needs no download)", file=sys.stderr)
