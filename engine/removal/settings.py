"""`RemovalSettings`: every knob of a removal, in one validated, frozen value.

The app, the command line and batch cleaning all build this one type (the CLI from its
arguments, the app from Preferences), so ranges and defaults live here and nowhere else.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from engine.errors import DeviceUnavailable, SettingsError
from engine.sampling.device import DEVICE_CHOICES, QUALITY_CHOICES, choose
from engine.sampling.sampler import SamplerSettings
from engine.weights.zoo import DEFAULT_VARIANT

SEED_MAX = 2**64 - 1  # torch generators take 64-bit seeds; larger ones are refused


class EngineKind(StrEnum):
    QUICK = "quick"  # classical OpenCV fill: no download, deterministic
    MOEBIUS = "moebius"  # the diffusion model


@dataclass(frozen=True)
class Range:
    """An inclusive numeric range, stated in --help and checked in one place."""

    low: float
    high: float
    whole: bool = False  # only whole numbers (steps, seed)

    def text(self) -> str:
        if self.whole:
            return f"{int(self.low)}–{int(self.high)}"
        return f"{self.low:g}–{self.high:g}"

    def check(self, name: str, value: object) -> int | float:
        """`value` as a plain int or float if it is a finite number in range, else
        SettingsError. NaN, infinities, booleans and fractions for whole numbers are refused."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise SettingsError(f"{name} must be a number, not {value!r}")
        number: int | float
        if isinstance(value, numbers.Integral):
            number = int(value)  # exact, however large: never through float
        else:
            number = float(value)
            if self.whole and math.isfinite(number) and not number.is_integer():
                raise SettingsError(f"{name} must be a whole number, not {_shown(value)}")
        if isinstance(number, float) and not math.isfinite(number) \
                or not self.low <= number <= self.high:
            raise SettingsError(f"{name} must be between {self.text()}, not {_shown(value)}")
        return int(number) if self.whole else float(number)


def _shown(value: object, limit: int = 24) -> str:
    """A number as typed, shortened: a 400-digit seed should not fill the screen."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit - 4]}… ({len(text)} digits)"


# Every numeric setting has its range here: RemovalSettings checks them all, the command
# line turns those it offers into options with the range in --help (engine/cli/options.py),
# and tests/test_settings.py fails if a numeric field is added without a range.
RANGES = {
    "steps": Range(1, 200, whole=True),
    "guidance": Range(0.0, 30.0),
    "strength": Range(0.01, 1.0),
    "seed": Range(0, SEED_MAX, whole=True),
    "context": Range(1.0, 8.0),
    "variations": Range(1, 4, whole=True),
}


@dataclass(frozen=True)
class RemovalSettings:
    engine: EngineKind = EngineKind.MOEBIUS
    variant: str = DEFAULT_VARIANT  # Moebius fine-tune id (engine.weights.zoo)
    steps: int = 20
    guidance: float = 2.5
    strength: float = 0.99
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps
    quality: str = "auto"  # exact (fp32), fast (fp16/bf16), auto (engine.sampling.device)
    colour_match: bool = True
    context: float = 2.0  # context window side / region extent
    # Candidates to choose from, one seed each (seed, seed + regions, ...): they share the
    # encoder pass and run as one batch. default_variations() says what suits a device.
    variations: int = 1

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "engine", EngineKind(self.engine))
        except ValueError:
            raise SettingsError(
                f"unknown engine {self.engine!r}; choose quick or moebius") from None
        for name, rng in RANGES.items():  # plain numbers from here on (numpy, Qt, ...)
            object.__setattr__(self, name, rng.check(name, getattr(self, name)))
        if self.device not in DEVICE_CHOICES and not _is_cuda_index(self.device):
            raise SettingsError(f"unknown device {self.device!r}; choose one of "
                                f"{', '.join(DEVICE_CHOICES)} (or cuda:N)")
        if self.quality not in QUALITY_CHOICES:
            raise SettingsError(f"unknown quality {self.quality!r}; choose auto, exact or fast")

    def check_device(self) -> None:
        """Raise DeviceUnavailable (one line) now, before any work, if the Moebius engine
        cannot run on the chosen device. (Quick runs anywhere.) Imports torch."""
        if self.engine is EngineKind.MOEBIUS:
            choose(self.device, self.quality)

    @property
    def deterministic(self) -> bool:
        """True when the seed does not change the result (Try again would repeat it)."""
        return self.engine is EngineKind.QUICK

    def sampler(self) -> SamplerSettings:
        return SamplerSettings(steps=self.steps, guidance=self.guidance, strength=self.strength)

    def with_seed(self, seed: int) -> RemovalSettings:
        return replace(self, seed=seed)

    def candidate_seeds(self, regions: int) -> list[int]:
        """The seed of each variation. Region i of a candidate uses its seed + i (as a
        single removal with that seed does), so candidates are spaced by the number of
        regions and no two (candidate, region) pairs share noise."""
        count = 1 if self.deterministic else self.variations
        return [(self.seed + k * max(regions, 1)) % (SEED_MAX + 1) for k in range(count)]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["engine"] = str(self.engine)
        return out


def _is_cuda_index(device: str) -> bool:
    kind, _, index = device.partition(":")
    return kind == "cuda" and index.isdigit()


def variation_paths(path: Path, count: int, folder: bool = False) -> list[Path]:
    """Where `count` variations of the output `path` go: name-1.jpg ... name-N.jpg beside
    it, or in a sub-folder `name` (batch); just `path` for one."""
    if count == 1:
        return [path]
    parent = path.parent / path.stem if folder else path.parent
    return [parent / f"{path.stem}-{k}{path.suffix}" for k in range(1, count + 1)]


def default_variations(device: str = "auto") -> int:
    """Variations to offer by default: 3 where a batch of them costs little more than one
    (a GPU), 1 on a CPU, where each costs a whole removal. Imports torch."""
    try:
        return 1 if choose(device).device == "cpu" else 3
    except (DeviceUnavailable, SettingsError):  # the removal itself will say why
        return 1
