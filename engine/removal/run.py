"""Object removal on real photos at full resolution: the one job runner.

`run_removal(job, cancel, host)` is a generator of `JobEvent`s (Progress ..., then Done
or Failed); the GUI worker, the CLI and batch cleaning all drive it. The photo passed in
is never modified: the result is a patch (bounding box + new pixels) to apply, so callers
decide what to keep.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from engine.document.box import Box, union_box
from engine.errors import Cancelled, MaskError, MoebiusError
from engine.eta import WorkPlan
from engine.events import CancelToken, Done, Failed, JobEvent, Preview, Returning
from engine.imageio.pixels import to_rgb8
from engine.removal import composite
from engine.removal.engines import Engine, MoebiusEngine, QuickEngine, fill_stages
from engine.removal.job import RemovalJob, RemovalResult
from engine.removal.preview import PreviewFrame
from engine.removal.regions import Region, plan_regions
from engine.removal.settings import EngineKind, RemovalSettings
from engine.sampling.device import Placement, choose

log = logging.getLogger(__name__)

# (variant, placement) -> MoebiusInpainter. A loader that also takes `cancel` (a keyword
# argument) is given the job's CancelToken and may stop between the parts of a load.
MoebiusLoader = Callable[..., object]


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

    def get(self, settings: RemovalSettings, cancel: CancelToken | None = None) -> Engine:
        """The engine for `settings`, loading the network if needed (`cancel` can stop a
        load between its parts; Cancelled then leaves no network loaded)."""
        if settings.engine is EngineKind.QUICK:
            return QuickEngine()
        placement = choose(settings.device, settings.quality)
        key = (settings.variant, placement)
        if self._key != key:
            self._key, self._inpainter = None, None  # free the old network first
            self._inpainter = _load(self.loader or default_loader, settings.variant,
                                    placement, cancel)
            self._key = key
        return MoebiusEngine(self._inpainter, settings.variant, settings.sampler())

    def is_loaded(self, settings: RemovalSettings) -> bool:
        if settings.engine is EngineKind.QUICK:
            return True
        return self._key == (settings.variant, choose(settings.device, settings.quality))


def _load(loader: MoebiusLoader, variant: str, placement: Placement,
          cancel: CancelToken | None):
    try:
        takes_cancel = "cancel" in inspect.signature(loader).parameters
    except (TypeError, ValueError):  # a builtin or C callable: call it plainly
        takes_cancel = False
    if takes_cancel:
        return loader(variant, placement, cancel=cancel)
    return loader(variant, placement)


def default_loader(variant: str, placement: Placement, cancel: CancelToken | None = None):
    from engine.sampling.inpainter import MoebiusInpainter
    from engine.weights.store import WeightStore

    unet, vae = WeightStore().paths(variant)  # raises WeightsMissing with instructions
    return MoebiusInpainter.load(unet, vae, placement, cancel=cancel)


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
    job: RemovalJob, cancel: CancelToken | None = None, host: EngineHost | None = None,
    *, previews: bool = False,
) -> Iterator[JobEvent]:
    """Run a removal, yielding Progress events and finally Done(RemovalResult) or Failed.

    With `previews`, each network step's event is a `Preview` with the fill as it stands
    (engine/removal/preview.py). With `settings.variations` > 1 the result holds that many
    candidates (`RemovalResult.candidates`), one seed each; the candidates of a region run
    as one batch and share its encoder pass."""
    cancel = cancel or CancelToken()
    t0 = time.perf_counter()
    try:
        validate(job)
        host = host or EngineHost()
        settings = job.settings
        regions = plan_regions(job.mask, context=settings.context, cancel=cancel)
        loading = not host.is_loaded(settings)
        plan = WorkPlan(([("loading", 1)] if loading else [])
                        + (fill_stages(settings) + [("compositing", 1)]) * len(regions))
        if loading:
            yield plan.progress("loading", 0, 1, "Loading the model…")
        engine = host.get(settings, cancel)
        cancel.raise_if_cancelled()
        seeds = settings.candidate_seeds(len(regions))
        works = [job.image.copy() for _ in seeds]  # one picture per candidate
        boxes: list[Box | None] = [None] * len(seeds)
        # How the work shares a batch is known once the engine is: the plan again, with it.
        # A batch's pieces are blended in one compositing stage, a unit each, so the bar
        # moves on with every piece and ends at its end.
        groups = _work_groups(regions, len(seeds), engine.max_batch)
        plan = WorkPlan(([("loading", 1)] if loading else [])
                        + [st for group in groups for st in
                           fill_stages(settings) + [("compositing", len(group))]])
        for group in groups:
            pieces = [_Piece(regions[r], r, k, seeds[k] + r) for r, k in group]
            touched = yield from _remove_pieces(works, job, engine, pieces, len(regions),
                                                len(seeds), cancel, plan, previews)
            for piece, piece_box in zip(pieces, touched, strict=True):
                boxes[piece.candidate] = union_box(boxes[piece.candidate], piece_box)
        yield plan.progress("compositing", 1, 1, "Done")
        seconds = time.perf_counter() - t0
        results = [_result(work, box, len(regions), seconds, engine.describe(), seed)
                   for work, box, seed in zip(works, boxes, seeds, strict=True)]
        yield Done(replace(results[0], others=tuple(results[1:])))
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
    image: np.ndarray  # uint8: the window at the engine's size
    hole: np.ndarray  # bool: what the engine treats as unknown
    target: np.ndarray  # bool, window coordinates: this region's own mask pixels
    mask_crop: np.ndarray  # bool, window coordinates: every mask pixel in the window
    scale: float  # window pixels per engine pixel
    band: int  # the edge band inside the mask, in photo pixels


def _model_input(work, job, engine, region: Region) -> _ModelInput:
    """What the engine sees for one region. Every mask pixel in the window is hole to the
    engine, so it never copies what is being removed."""
    win = region.window
    size = engine.working_size(win.size)
    scale = win.size / size
    crop = to_rgb8(composite.crop_window(work, win))
    # Reflected like the pixels: a reflected object is hole too, never a fill's source.
    mask_crop = composite.crop_window(job.mask.view(np.uint8), win) > 0
    band = composite.feather_width(region.bbox, scale)
    if engine.generative:
        # What the model sees: the window at its size, every mask pixel in it grown by the
        # band plus ~2 model pixels (grown at model resolution, where it is cheap), so the
        # model also repaints the photo pixels the fill must meet.
        hole = composite.model_mask(mask_crop, size, int(np.ceil(band / scale)) + 2)
        image_in = composite.resize(crop, size)
    else:
        hole, image_in = mask_crop, crop
    # This region's own mask pixels, in window coordinates: the only ones written back.
    target = np.zeros(mask_crop.shape, bool)
    bx0, by0, bx1, by1 = region.bbox
    target[by0 - win.y : by1 - win.y, bx0 - win.x : bx1 - win.x] = job.mask[by0:by1, bx0:bx1]
    return _ModelInput(region, image_in, hole, target, mask_crop, scale, band)


@dataclass(frozen=True)
class _Piece:
    """One region of one candidate: a unit of a batch."""

    region: Region
    index: int  # of the region
    candidate: int
    seed: int


def _work_groups(regions: list[Region], candidates: int, size: int) -> list[list[tuple[int, int]]]:
    """(region, candidate) pairs in the order and batches they run. One candidate: regions
    in batches of `size` (`batches`). Several: the candidates of a region as one batch, so
    they share its encoder pass, region after region (a later region's window may hold an
    earlier one's fill, which differs per candidate)."""
    if candidates == 1:
        return [[(first + k, 0) for k in range(len(group))]
                for first, group in batches(regions, size)]
    return [[(r, k) for k in range(candidates)] for r in range(len(regions))]


def _result(work, box, regions: int, seconds: float, engine: str, seed: int) -> RemovalResult:
    box = box or (0, 0, 0, 0)
    x0, y0, x1, y1 = box
    return RemovalResult(box, work[y0:y1, x0:x1].copy(), regions, seconds, engine, seed)


def _remove_pieces(works, job, engine, pieces: list[_Piece], count: int, candidates: int,
                   cancel: CancelToken, plan: WorkPlan, previews: bool):
    """Fill a batch of pieces, each into its candidate's picture in `works`; returns the
    boxes of the pixels each wrote. Only each region's own mask pixels are written (see
    `engine.removal.engines` for the rule per engine)."""
    inputs = [_model_input(works[p.candidate], job, engine, p.region) for p in pieces]
    first, n = pieces[0].index, len({p.index for p in pieces})
    # The preview follows the first candidate of the batch (all its regions).
    shown = [i for i, p in enumerate(pieces) if p.candidate == pieces[0].candidate]
    frames = ([PreviewFrame.of(m.region, job.mask) for m in inputs]
              if previews and engine.generative else None)
    fill = Returning(engine.fill_batch(
        [m.image for m in inputs], [m.hole for m in inputs], [p.seed for p in pieces], cancel,
        None if engine.generative else [m.target for m in inputs]))
    text = _stage_text
    for step in fill:
        event = plan.progress(step.stage, step.step, step.total,
                              text(step.stage, first, n, count, candidates))
        if frames is not None and step.previews is not None:
            event = Preview.of(event, tuple(frames[i].patch(step.previews[i]) for i in shown))
        yield event
    cancel.raise_if_cancelled()
    boxes = []
    for k, (piece, m, filled) in enumerate(zip(pieces, inputs, fill.value, strict=True)):
        yield plan.progress("compositing", k, len(pieces),
                            text("compositing", piece.index, 1, count, candidates))
        boxes.append(_put_back(works[piece.candidate], job, engine, m, filled))
    return boxes


def _put_back(work, job, engine, m: _ModelInput, filled: np.ndarray):
    """Blend one region's fill into `work`; returns the box of the pixels it wrote."""
    h, w = job.mask.shape
    win, scale, band = m.region.window, m.scale, m.band
    # Put the fill back around this region only: its box, grown for a generated fill by
    # the model's grown hole and the colour-match ring beyond it, clipped to window and photo.
    ring = max(4, band)
    margin = band + int(np.ceil(3 * scale)) + ring + 2 if engine.generative else 0
    bx0, by0, bx1, by1 = m.region.bbox
    x0, y0 = max(bx0 - margin, win.x, 0), max(by0 - margin, win.y, 0)
    x1, y1 = min(bx1 + margin, win.x + win.size, w), min(by1 + margin, win.y + win.size, h)
    sub = (slice(y0 - win.y, y1 - win.y), slice(x0 - win.x, x1 - win.x))
    # This region's own mask pixels (inside its box) are written, nothing else.
    own = np.zeros((y1 - y0, x1 - x0), bool)
    own[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0] = job.mask[by0:by1, bx0:bx1]
    if not engine.generative:
        generated = filled[sub].astype(np.float32)
    else:
        generated = composite.resize(filled, win.size)[sub].astype(np.float32)
        original = to_rgb8(work[y0:y1, x0:x1])
        if job.settings.colour_match:
            hole_photo = composite.resize_mask(m.hole, win.size)[sub]
            around = composite.dilate(hole_photo, ring) & ~hole_photo
            generated += composite.colour_offset(generated, original, around)
        generated += composite.edge_correction(generated, original, m.mask_crop[sub], band)
    return composite.blend_into(work, generated, own.astype(np.float32), (x0, y0, x1, y1))


_STAGE_WORDS = {"encoding": "Preparing", "denoising": "Removing", "filling": "Removing",
                "decoding": "Finishing", "compositing": "Blending in"}


def _stage_text(stage: str, first: int, n: int, count: int, candidates: int = 1) -> str:
    word = _STAGE_WORDS.get(stage, "Removing")
    of = f" ({candidates} variations)" if candidates > 1 else ""
    if count == 1:
        return f"{word}{of}…"
    if n == 1:
        return f"{word} region {first + 1} of {count}{of}…"
    return f"{word} regions {first + 1}–{first + n} of {count}{of}…"
