"""Object removal on real photos at full resolution: the one job runner.

`run_removal(job, cancel, host)` is a generator of `JobEvent`s (Progress ..., then Done
or Failed); the GUI worker, the CLI and batch cleaning all drive it. The photo passed in
is never modified: the result is a patch (bounding box + new pixels) to apply, so callers
decide what to keep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from engine.document.box import union_box
from engine.errors import Cancelled, MaskError, MoebiusError
from engine.events import CancelToken, Done, Failed, JobEvent, Progress, Returning
from engine.imageio.pixels import to_rgb8
from engine.removal import composite
from engine.removal.engines import Engine, MoebiusEngine, QuickEngine
from engine.removal.job import RemovalJob, RemovalResult
from engine.removal.regions import Region, plan_regions
from engine.removal.settings import EngineKind, RemovalSettings
from engine.sampling.device import Placement, choose

log = logging.getLogger(__name__)

MoebiusLoader = Callable[[str, Placement], object]  # (variant, placement) -> MoebiusInpainter


@dataclass
class EngineHost:
    """Keeps engines (and the loaded network) alive between jobs.

    `loader` turns a variant and placement into a MoebiusInpainter; the default reads the
    installed weights. Only one Moebius network is kept: switching fine-tunes or devices
    replaces it, so memory holds one model at a time.
    """

    loader: MoebiusLoader | None = None
    _key: tuple | None = field(default=None, init=False)
    _inpainter: object = field(default=None, init=False)

    def get(self, settings: RemovalSettings) -> Engine:
        if settings.engine is EngineKind.QUICK:
            return QuickEngine()
        placement = choose(settings.device, settings.quality)
        key = (settings.variant, placement)
        if self._key != key:
            self._inpainter = None  # free the old network before loading the next
            self._inpainter = (self.loader or default_loader)(settings.variant, placement)
            self._key = key
        return MoebiusEngine(self._inpainter, settings.variant, settings.sampler())

    def is_loaded(self, settings: RemovalSettings) -> bool:
        if settings.engine is EngineKind.QUICK:
            return True
        return self._key == (settings.variant, choose(settings.device, settings.quality))


def default_loader(variant: str, placement: Placement):
    from engine.sampling.inpainter import MoebiusInpainter
    from engine.weights.store import WeightStore

    unet, vae = WeightStore().paths(variant)  # raises WeightsMissing with instructions
    return MoebiusInpainter.load(unet, vae, placement)


def validate(job: RemovalJob) -> None:
    """Everything that can be checked before any work: pixels, mask and device."""
    img, mask = job.image, job.mask
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype not in (np.uint8, np.uint16):
        raise MoebiusError(f"unsupported pixel array {img.dtype} {img.shape}")
    if mask.shape != img.shape[:2]:
        raise MaskError(
            f"the mask is {mask.shape[1]}×{mask.shape[0]} but the photo is "
            f"{img.shape[1]}×{img.shape[0]}; they must be the same size"
        )
    if mask.dtype != bool:
        raise MaskError("the mask must be a bool array (True = remove)")
    if not mask.any():
        raise MaskError("nothing to remove: the mask is empty")
    if job.settings.engine is EngineKind.MOEBIUS:
        choose(job.settings.device, job.settings.quality)  # DeviceUnavailable before loading


def run_removal(
    job: RemovalJob, cancel: CancelToken | None = None, host: EngineHost | None = None
) -> Iterator[JobEvent]:
    """Run a removal, yielding Progress events and finally Done(RemovalResult) or Failed."""
    cancel = cancel or CancelToken()
    t0 = time.perf_counter()
    try:
        validate(job)
        host = host or EngineHost()
        settings = job.settings
        if not host.is_loaded(settings):
            yield Progress("loading", 0, 1, 0.0, "Loading the model…")
        engine = host.get(settings)
        cancel.raise_if_cancelled()
        regions = plan_regions(job.mask, context=settings.context, cancel=cancel)
        work = job.image.copy()
        box = None
        for first, group in batches(regions, engine.max_batch):
            for touched in (yield from _remove_regions(work, job, engine, group, first,
                                                       len(regions), cancel)):
                box = union_box(box, touched)
        box = box or (0, 0, 0, 0)
        yield Progress("compositing", 1, 1, 1.0, "Done")
        x0, y0, x1, y1 = box
        result = RemovalResult(box, work[y0:y1, x0:x1].copy(), len(regions),
                               time.perf_counter() - t0, engine.describe(), settings.seed)
        yield Done(result)
    except Cancelled:
        yield Failed("Cancelled; the photo was not changed.", cancelled=True)
    except MoebiusError as exc:
        yield Failed(str(exc), error=exc)
    except Exception as exc:  # noqa: BLE001 - reported to the user, logged with traceback
        log.exception("removal failed")
        yield Failed(f"Unexpected error: {exc}")


def batches(regions: list[Region], size: int) -> list[tuple[int, list[Region]]]:
    """Consecutive regions in groups of at most `size` whose windows do not overlap, each
    with the index of its first region.

    Regions of one group are cut out before any of them is put back, so a region may only
    join a group when no other window of it could have been changed by it: with disjoint
    windows the result is that of one region after another. (The planner merges regions
    whose windows overlap; pieces of one long region can still overlap.)
    """
    groups: list[tuple[int, list[Region]]] = []
    for i, region in enumerate(regions):
        if groups and len(groups[-1][1]) < size and not any(
            _overlap(region.window.box, other.window.box) for other in groups[-1][1]
        ):
            groups[-1][1].append(region)
        else:
            groups.append((i, [region]))
    return groups


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@dataclass(frozen=True)
class _ModelInput:
    region: Region
    image: np.ndarray  # uint8 [S, S, 3]: the window at the engine's size
    hole: np.ndarray  # bool [S, S]
    scale: float  # window pixels per model pixel
    feather: int


def _model_input(work, job, engine, region: Region) -> _ModelInput:
    """What the model sees: the window (reflected where it leaves the photo), all mask
    pixels in it grown by the feather band plus ~2 model pixels for edge halos (grown at
    model resolution, where it is cheap)."""
    win = region.window
    size = engine.working_size(win.size)
    scale = win.size / size
    feather = composite.feather_width(region.bbox, scale)
    crop = to_rgb8(composite.crop_window(work, win))
    mask_crop = composite.crop_window(job.mask, win)
    hole = composite.model_mask(mask_crop, size, int(np.ceil(feather / scale)) + 2)
    return _ModelInput(region, composite.resize(crop, size), hole, scale, feather)


def _remove_regions(work, job, engine, group: list[Region], first: int, count: int,
                    cancel: CancelToken):
    """Fill the regions `first`.. of `work` in place, as one batch; returns the boxes of
    the pixels each wrote."""
    inputs = [_model_input(work, job, engine, region) for region in group]
    n = len(group)

    def fraction(step, total):
        return 0.05 + 0.9 * (first + n * (step / total if total else 1.0)) / count

    text = _region_text(first, n, count)
    yield Progress("denoising", 0, 1, fraction(0, 1), text)
    # A region's seed is the job's plus its index, however the regions are batched.
    seeds = [job.settings.seed + first + k for k in range(n)]
    fill = Returning(engine.fill_batch([m.image for m in inputs], [m.hole for m in inputs],
                                       seeds, cancel))
    for step, total in fill:
        yield Progress("denoising", step, total, fraction(step, total), text)
    cancel.raise_if_cancelled()
    return [_put_back(work, job, m, filled) for m, filled in zip(inputs, fill.value,
                                                                 strict=True)]


def _put_back(work, job, m: _ModelInput, filled: np.ndarray):
    """Blend one region's fill into `work`; returns the box of the pixels it wrote."""
    h, w = job.mask.shape
    win, scale, feather = m.region.window, m.scale, m.feather
    # Put the fill back around this region only: its box grown by the feather band (where
    # alpha > 0) and the colour-match ring beyond the hole, clipped to window and photo.
    ring = max(4, feather)
    margin = feather + int(np.ceil(3 * scale)) + ring + 2
    bx0, by0, bx1, by1 = m.region.bbox
    x0, y0 = max(bx0 - margin, win.x, 0), max(by0 - margin, win.y, 0)
    x1, y1 = min(bx1 + margin, win.x + win.size, w), min(by1 + margin, win.y + win.size, h)
    sub = (slice(y0 - win.y, y1 - win.y), slice(x0 - win.x, x1 - win.x))
    generated = composite.resize(filled, win.size)[sub].astype(np.float32)
    hole_photo = composite.resize_mask(m.hole, win.size)[sub]
    if job.settings.colour_match:
        original = to_rgb8(work[y0:y1, x0:x1])
        around = composite.dilate(hole_photo, ring) & ~hole_photo
        generated += composite.colour_offset(generated, original, around)

    # This region's own mask pixels (inside its box) get alpha 1, fading out over the band.
    own = np.zeros((y1 - y0, x1 - x0), bool)
    own[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0] = job.mask[by0:by1, bx0:bx1]
    alpha = composite.feather_alpha(own, feather) * hole_photo  # never outside the fill
    return composite.blend_into(work, generated, alpha, (x0, y0, x1, y1))


def _region_text(first: int, n: int, count: int) -> str:
    if count == 1:
        return "Removing…"
    if n == 1:
        return f"Removing region {first + 1} of {count}…"
    return f"Removing regions {first + 1}–{first + n} of {count}…"
