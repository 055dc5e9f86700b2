"""The inpainting engines behind one interface.

* `QuickEngine`: a classical fill at full resolution (`engine.removal.quick_fill`). No
  download, deterministic; good for dust spots, wires, poles and signs.
* `MoebiusEngine`: the diffusion model at 512x512, kept loaded between jobs.

`fill(image, hole, seed, cancel)` is a generator: it yields a `FillStep` as each part of
its work starts or a network step ends, and returns the filled uint8 RGB image of the same
size. `fill_batch` does the same for several inputs at once (up to `max_batch`: regions
of a photo, or seeds of one region), each with its own seed. `fill_stages(settings)` says
in advance which stages a fill goes through.

What changes in the photo, per engine (`engine.removal.run` composites by these rules):
nothing outside the mask, ever. `generative` engines repaint a grown hole at their own
resolution; their fill is scaled back and shifted so that it meets the photo at the mask's
edge, the shift fading out over a band *inside* the mask (`composite.edge_correction`).
A fill at full resolution (Quick) replaces exactly the mask's pixels.
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
    # After a network step: each input's predicted clean picture at the latents' size
    # (uint8 [h, w, 3], engine/sampling/preview.py), for a preview; None otherwise.
    previews: tuple[np.ndarray, ...] | None = None


FillSteps = Generator[FillStep, None, np.ndarray]
BatchSteps = Generator[FillStep, None, list[np.ndarray]]


def fill_stages(settings: RemovalSettings) -> list[tuple[str, int]]:
    """The stages of one fill with their units of work (for progress and time left)."""
    if settings.engine is EngineKind.QUICK:
        return [("filling", 1)]
    return [("encoding", 1), ("denoising", settings.sampler().network_calls), ("decoding", 1)]


class Engine(Protocol):
    name: str
    generative: bool  # repaints a grown hole at its own size (True) or only the hole (False)
    max_batch: int  # inputs `fill_batch` takes at once

    def working_size(self, window_size: int) -> int:
        """The square size (px) the engine wants a context window of `window_size` at."""

    def fill(self, image: np.ndarray, hole: np.ndarray, seed: int,
             cancel: CancelToken | None, target: np.ndarray | None = None) -> FillSteps:
        """uint8 [S, S, 3] image and bool [S, S] hole -> filled uint8 [S, S, 3]. `target`
        (within the hole) is what will be used of the fill; an engine may fill only that,
        but must treat the whole hole as unknown."""

    def fill_batch(self, images: list[np.ndarray], holes: list[np.ndarray], seeds: list[int],
                   cancel: CancelToken | None, targets: list[np.ndarray] | None = None
                   ) -> BatchSteps:
        """`fill` for several inputs at once (at most max_batch: regions of a photo, or
        seeds of one region), each with its seed; one pass of the stages for them all."""

    def describe(self) -> str:
        """Short human description, e.g. 'Moebius Places (scenes) · CPU fp32'."""


class QuickEngine:
    name = str(EngineKind.QUICK)
    generative = False
    max_batch = 1  # nothing to share between regions

    def working_size(self, window_size: int) -> int:
        # Full resolution: its cost follows the hole, and any shrinking blurs the fill.
        return window_size

    def fill(self, image, hole, seed, cancel, target=None) -> FillSteps:
        from engine.removal import quick_fill

        yield FillStep("filling", 0, 1)
        return quick_fill.fill(image, hole, target)

    def fill_batch(self, images, holes, seeds, cancel, targets=None) -> BatchSteps:
        filled = []
        for k, (image, hole, seed) in enumerate(zip(images, holes, seeds, strict=True)):
            target = None if targets is None else targets[k]
            filled.append((yield from self.fill(image, hole, seed, cancel, target)))
        return filled

    def describe(self) -> str:
        return "Quick (classical fill)"


class MoebiusEngine:
    name = str(EngineKind.MOEBIUS)
    generative = True

    def __init__(self, inpainter, variant: str, settings: SamplerSettings):
        self.inpainter, self.variant, self.settings = inpainter, variant, settings
        self.max_batch = int(getattr(inpainter, "max_regions", 1))

    def working_size(self, window_size: int) -> int:
        return self.inpainter.image_size

    def fill(self, image, hole, seed, cancel, target=None) -> FillSteps:
        # The network fills the whole hole at once: `target` is not needed.
        return (yield from self.fill_batch([image], [hole], [seed], cancel))[0]

    def fill_batch(self, images, holes, seeds, cancel, targets=None) -> BatchSteps:
        s = self.settings
        # Steps are reported in the person's terms: at strength 0.99 the schedule's first
        # step is skipped, so 20 steps run 19 network calls, shown as steps 2..20 of 20.
        skipped = s.steps - s.network_calls
        run = Returning(self.inpainter.inpaint(np.stack(images), np.stack(holes), s,
                                               [int(x) for x in seeds], cancel, phases=True))
        colours: tuple = ()
        for item in run:
            if isinstance(item, Phase):
                colours = item.colours or colours
                yield FillStep(item.name, skipped if item.name == "denoising" else 0,
                               s.steps if item.name == "denoising" else 1)
            else:
                # A step without a prediction (a stand-in inpainter) has no preview.
                yield FillStep("denoising", skipped + item.index + 1, s.steps,
                               _previews(colours, getattr(item, "predicted_x0", None)))
        return list(run.value)

    def describe(self) -> str:
        return f"Moebius {zoo.resolve(self.variant).name} · {self.inpainter.placement.describe()}"


def _previews(colours, predicted) -> tuple[np.ndarray, ...] | None:
    if not colours or predicted is None:
        return None
    latents = predicted.float().cpu().numpy()
    return tuple(colour.rgb(z) for colour, z in zip(colours, latents, strict=True))
