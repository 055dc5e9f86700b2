"""The inpainting engines behind one interface.

* `QuickEngine`: OpenCV's classical inpainting. No download, instant on small holes;
  good for dust spots, thin wires and date stamps on plain backgrounds.
* `MoebiusEngine`: the diffusion model at 512x512, kept loaded between jobs.

`fill(image, hole, seed, cancel)` is a generator: it yields a `FillStep` as each part of
its work starts or a network step ends, and returns the filled uint8 RGB image of the same
size. `fill_stages(settings)` says in advance which stages a fill goes through.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import NamedTuple, Protocol

import numpy as np

from engine.events import CancelToken, Returning
from engine.removal.settings import EngineKind, RemovalSettings
from engine.sampling.inpainter import Phase
from engine.sampling.sampler import SamplerSettings
from engine.weights import zoo


class FillStep(NamedTuple):
    stage: str  # "encoding", "denoising", "decoding" (Moebius); "filling" (Quick)
    step: int  # units of the stage done; network steps in the person's terms
    total: int


FillSteps = Generator[FillStep, None, np.ndarray]


def fill_stages(settings: RemovalSettings) -> list[tuple[str, int]]:
    """The stages of one fill with their units of work (for progress and time left)."""
    if settings.engine is EngineKind.QUICK:
        return [("filling", 1)]
    return [("encoding", 1), ("denoising", settings.sampler().network_calls), ("decoding", 1)]


class Engine(Protocol):
    name: str

    def working_size(self, window_size: int) -> int:
        """The square size (px) the engine wants a context window of `window_size` at."""

    def fill(self, image: np.ndarray, hole: np.ndarray, seed: int,
             cancel: CancelToken | None) -> FillSteps:
        """uint8 [S, S, 3] image and bool [S, S] hole -> filled uint8 [S, S, 3]."""

    def describe(self) -> str:
        """Short human description, e.g. 'Moebius Places (scenes) · CPU fp32'."""


class QuickEngine:
    name = str(EngineKind.QUICK)
    max_size = 1024  # larger windows are shrunk: Telea's cost grows with the hole's area

    def working_size(self, window_size: int) -> int:
        return min(window_size, self.max_size)

    def fill(self, image, hole, seed, cancel) -> FillSteps:
        import cv2

        yield FillStep("filling", 0, 1)
        radius = max(3, image.shape[0] // 128)
        return cv2.inpaint(np.ascontiguousarray(image), hole.view(np.uint8), radius,
                           cv2.INPAINT_TELEA)

    def describe(self) -> str:
        return "Quick (OpenCV)"


class MoebiusEngine:
    name = str(EngineKind.MOEBIUS)

    def __init__(self, inpainter, variant: str, settings: SamplerSettings):
        self.inpainter, self.variant, self.settings = inpainter, variant, settings

    def working_size(self, window_size: int) -> int:
        return self.inpainter.image_size

    def fill(self, image, hole, seed, cancel) -> FillSteps:
        s = self.settings
        # Steps are reported in the person's terms: at strength 0.99 the schedule's first
        # step is skipped, so 20 steps run 19 network calls, shown as steps 2..20 of 20.
        skipped = s.steps - s.network_calls
        run = Returning(self.inpainter.inpaint(image[None], hole[None], s, seed, cancel,
                                               phases=True))
        for item in run:
            if isinstance(item, Phase):
                yield FillStep(item.name, skipped if item.name == "denoising" else 0,
                               s.steps if item.name == "denoising" else 1)
            else:
                yield FillStep("denoising", skipped + item.index + 1, s.steps)
        return run.value[0]

    def describe(self) -> str:
        return f"Moebius {zoo.resolve(self.variant).name} · {self.inpainter.placement.describe()}"
