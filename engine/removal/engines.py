"""The inpainting engines behind one interface.

* `QuickEngine`: OpenCV's classical inpainting. No download, instant on small holes;
  good for dust spots, thin wires and date stamps on plain backgrounds.
* `MoebiusEngine`: the diffusion model at 512x512, kept loaded between jobs.

`fill(image, hole, seed, cancel)` is a generator: it yields (step, total) while it works
and returns the filled uint8 RGB image of the same size. `fill_batch` does the same for
several regions at once (up to `max_batch`), each with its own seed.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol

import numpy as np

from engine.events import CancelToken, Returning
from engine.removal.settings import EngineKind
from engine.sampling.sampler import SamplerSettings

FillSteps = Generator[tuple[int, int], None, np.ndarray]
BatchSteps = Generator[tuple[int, int], None, list[np.ndarray]]


class Engine(Protocol):
    name: str
    max_batch: int  # regions `fill_batch` takes at once

    def fill_batch(self, images: list[np.ndarray], holes: list[np.ndarray], seeds: list[int],
                   cancel: CancelToken | None) -> BatchSteps:
        """`fill` for several regions at once (at most max_batch)."""

    def working_size(self, window_size: int) -> int:
        """The square size (px) the engine wants a context window of `window_size` at."""

    def fill(self, image: np.ndarray, hole: np.ndarray, seed: int,
             cancel: CancelToken | None) -> FillSteps:
        """uint8 [S, S, 3] image and bool [S, S] hole -> filled uint8 [S, S, 3]."""

    def describe(self) -> str:
        """Short human description, e.g. 'Moebius Places2 · CPU fp32'."""


class QuickEngine:
    name = str(EngineKind.QUICK)
    max_batch = 1  # nothing to share between regions
    max_size = 1024  # larger windows are shrunk: Telea's cost grows with the hole's area

    def working_size(self, window_size: int) -> int:
        return min(window_size, self.max_size)

    def fill(self, image, hole, seed, cancel) -> FillSteps:
        import cv2

        radius = max(3, image.shape[0] // 128)
        out = cv2.inpaint(np.ascontiguousarray(image), hole.view(np.uint8), radius,
                          cv2.INPAINT_TELEA)
        yield (1, 1)
        return out

    def fill_batch(self, images, holes, seeds, cancel) -> BatchSteps:
        filled = []
        for image, hole, seed in zip(images, holes, seeds, strict=True):
            filled.append((yield from self.fill(image, hole, seed, cancel)))
        return filled

    def describe(self) -> str:
        return "Quick (OpenCV)"


class MoebiusEngine:
    name = str(EngineKind.MOEBIUS)

    def __init__(self, inpainter, variant: str, settings: SamplerSettings):
        self.inpainter, self.variant, self.settings = inpainter, variant, settings
        self.max_batch = getattr(inpainter, "max_regions", 1)

    def working_size(self, window_size: int) -> int:
        return self.inpainter.image_size

    def fill(self, image, hole, seed, cancel) -> FillSteps:
        return (yield from self.fill_batch([image], [hole], [seed], cancel))[0]

    def fill_batch(self, images, holes, seeds, cancel) -> BatchSteps:
        total = self.settings.network_calls
        run = Returning(self.inpainter.inpaint(np.stack(images), np.stack(holes),
                                               self.settings, list(seeds), cancel))
        for step in run:
            yield (step.index + 1, total)
        return list(run.value)

    def describe(self) -> str:
        return f"Moebius {self.variant} · {self.inpainter.placement.describe()}"
