"""Faults and stand-ins for the cluster tests: removal workers that die in the middle of a
photo, and one that serves the tiny network for any fine-tune (--model auto).

Ray runs these in its worker processes (they import this module from the repository root),
so they are plain, picklable classes and no pytest fixture.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.removal.run import EngineHost, default_loader


def _die(marker: Path | None = None) -> None:
    """SIGKILL this process, as the kernel's OOM killer or `kill -9` would."""
    if marker is not None:
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")
    os.kill(os.getpid(), signal.SIGKILL)


def is_blue(image: np.ndarray) -> bool:
    """The poison photos carry a blue object instead of a red one."""
    rgb = image[..., :3].astype(np.int32)
    return bool(((rgb[..., 2] > 200) & (rgb[..., 0] < 60) & (rgb[..., 1] < 60)).any())


@dataclass
class KillingHost(EngineHost):
    """An EngineHost whose engine kills its process in the middle of a photo.

    `once`: the first process to reach its second photo dies while removing it (the
    marker file, created exclusively, makes it one process in the whole cluster).
    `poison`: every process dies on every photo with a blue object.
    """

    once: Path | None = None
    poison: Path | None = None  # a file that lists the pids killed by poison photos
    _photos: int = field(default=0, init=False)

    def get(self, settings, cancel=None):
        engine = super().get(settings, cancel)
        self._photos += 1  # one get() per photo (and one when the actor loads the model)
        return _Killing(engine, self)

    def doomed(self, image: np.ndarray) -> bool:
        if self.poison is not None and is_blue(image):
            _die(self.poison)
        if self.once is not None and self._photos >= 3:  # the model load, then photo 1
            try:
                with open(self.once, "x") as f:
                    f.write(f"{os.getpid()}\n")
            except FileExistsError:
                return False
            _die()
        return False


class _Killing:
    def __init__(self, engine, host: KillingHost):
        self._engine, self._host = engine, host
        self.generative = engine.generative
        self.max_batch = 1  # regions one by one, through `fill`, where the process dies

    def fill_batch(self, images, holes, seeds, cancel, targets=None):
        filled = []
        for k, (image, hole, seed) in enumerate(zip(images, holes, seeds, strict=True)):
            target = None if targets is None else targets[k]
            filled.append((yield from self.fill(image, hole, seed, cancel, target)))
        return filled

    def working_size(self, window_size: int) -> int:
        return self._engine.working_size(window_size)

    def describe(self) -> str:
        return self._engine.describe()

    def fill(self, image, hole, seed, cancel, target=None):
        steps = self._engine.fill(image, hole, seed, cancel, target)
        try:
            first = next(steps)  # the removal has started: the process dies in its middle
        except StopIteration as end:
            self._host.doomed(image)
            return end.value
        self._host.doomed(image)
        yield first
        return (yield from steps)


@dataclass
class AnyVariantHost(EngineHost):
    """An EngineHost that loads the installed Places2 (the tiny test network) for whatever
    fine-tune is asked, and appends each asked fine-tune to the file `asked`."""

    asked: Path | None = None

    def __post_init__(self):
        self.loader = self._load

    def _load(self, variant: str, placement):
        if self.asked is not None:
            with open(self.asked, "a") as f:
                f.write(f"{variant}\n")
        return default_loader("ft_places2", placement)
