"""The inpainting engines behind one interface.

* `QuickEngine`: a classical fill at full resolution (`engine.removal.quick_fill`). No
  download, deterministic; good for dust spots, wires, poles and signs.
* `MoebiusEngine`: the diffusion model at 512x512, kept loaded between jobs.

`fill(image, hole, seed, cancel)` is a generator: it yields (step, total) while it works
and returns the filled uint8 RGB image of the same size.

What changes in the photo, per engine (`engine.removal.run` composites by these rules):
nothing outside the mask, ever. `generative` engines repaint a grown hole at their own
resolution; their fill is scaled back and shifted so that it meets the photo at the mask's
edge, the shift fading out over a band *inside* the mask (`composite.edge_correction`).
A fill at full resolution (Quick) replaces exactly the mask's pixels.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol

import numpy as np

from engine.events import CancelToken, Returning
from engine.removal.settings import EngineKind
from engine.sampling.sampler import SamplerSettings

FillSteps = Generator[tuple[int, int], None, np.ndarray]


class Engine(Protocol):
    name: str
    generative: bool  # repaints a grown hole at its own size (True) or only the hole (False)

    def working_size(self, window_size: int) -> int:
        """The square size (px) the engine wants a context window of `window_size` at."""

    def fill(self, image: np.ndarray, hole: np.ndarray, seed: int,
             cancel: CancelToken | None, target: np.ndarray | None = None) -> FillSteps:
        """uint8 [S, S, 3] image and bool [S, S] hole -> filled uint8 [S, S, 3]. `target`
        (within the hole) is what will be used of the fill; an engine may fill only that,
        but must treat the whole hole as unknown."""

    def describe(self) -> str:
        """Short human description, e.g. 'Moebius Places2 · CPU fp32'."""


class QuickEngine:
    name = str(EngineKind.QUICK)
    generative = False

    def working_size(self, window_size: int) -> int:
        # Full resolution: its cost follows the hole, and any shrinking blurs the fill.
        return window_size

    def fill(self, image, hole, seed, cancel, target=None) -> FillSteps:
        from engine.removal import quick_fill

        out = quick_fill.fill(image, hole, target)
        yield (1, 1)
        return out

    def describe(self) -> str:
        return "Quick (classical fill)"


class MoebiusEngine:
    name = str(EngineKind.MOEBIUS)
    generative = True

    def __init__(self, inpainter, variant: str, settings: SamplerSettings):
        self.inpainter, self.variant, self.settings = inpainter, variant, settings

    def working_size(self, window_size: int) -> int:
        return self.inpainter.image_size

    def fill(self, image, hole, seed, cancel, target=None) -> FillSteps:
        total = self.settings.network_calls  # the network fills the whole hole at once
        run = Returning(self.inpainter.inpaint(image[None], hole[None], self.settings, seed,
                                               cancel))
        for step in run:
            yield (step.index + 1, total)
        return run.value[0]

    def describe(self) -> str:
        return f"Moebius {self.variant} · {self.inpainter.placement.describe()}"
