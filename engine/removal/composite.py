"""Cutting context windows out of a photo and putting generated pixels back.

Invariant: only pixels inside the mask change; every other pixel of the photo stays
bit-identical (alpha channels are never changed). A generated fill meets the photo through
a band *inside* the mask (`edge_correction`), never by blending over the photo around it:
a feather outside the mask repaints real detail with a softer fill, a visible halo.
"""

from __future__ import annotations

import numpy as np

from engine.document.box import Box
from engine.removal.regions import Window

LATENT_CELL = 8  # the network's mask sees one pixel per 8x8 cell


def crop_window(pixels: np.ndarray, window: Window) -> np.ndarray:
    """The window's square of `pixels`, reflected where the window leaves the photo."""
    h, w = pixels.shape[:2]
    x0, y0, x1, y1 = window.box
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    crop = pixels[cy0:cy1, cx0:cx1]
    pad = ((cy0 - y0, y1 - cy1), (cx0 - x0, x1 - cx1)) + ((0, 0),) * (pixels.ndim - 2)
    if not any(p for pair in pad for p in pair):
        return crop.copy()
    if pixels.dtype == bool:
        return np.pad(crop, pad, mode="constant")
    import cv2

    # OpenCV reflects any border width (numpy's reflect needs it smaller than the image).
    (top, bottom), (left, right) = pad[:2]
    return cv2.copyMakeBorder(crop, top, bottom, left, right, cv2.BORDER_REFLECT)


def resize(a: np.ndarray, size: int) -> np.ndarray:
    """Square image resize: area-averaging when shrinking, bicubic when enlarging."""
    import cv2

    if a.shape[0] == size and a.shape[1] == size:
        return a.copy()
    shrink = size < a.shape[0]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return cv2.resize(a, (size, size), interpolation=interp)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Square bool mask resize by nearest neighbour (masks must stay binary)."""
    import cv2

    return cv2.resize(mask.view(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a bool mask by `radius` pixels (a disc), through a distance transform: linear
    in the pixel count whatever the radius, unlike a morphological kernel."""
    import cv2

    if radius <= 0 or not mask.any():
        return mask.copy()
    dist = cv2.distanceTransform((~mask).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist <= radius


def model_mask(mask_crop: np.ndarray, size: int, grow: int) -> np.ndarray:
    """The hole the model is asked to fill, at model resolution.

    Shrinking must not lose thin strokes (any hole pixel marks its target pixel), and the
    network's latent mask keeps only one pixel per 8x8 cell: every cell that contains any
    hole pixel becomes entirely hole, so no brushed pixel is left unfilled.
    """
    import cv2

    m: np.ndarray = mask_crop.astype(np.float32)
    if m.shape[0] != size:
        interp = cv2.INTER_AREA if size < m.shape[0] else cv2.INTER_NEAREST
        m = cv2.resize(m, (size, size), interpolation=interp)
    hole = dilate(m > 0, grow)
    if size % LATENT_CELL == 0:
        cells = hole.reshape(size // LATENT_CELL, LATENT_CELL, size // LATENT_CELL, LATENT_CELL)
        cell_hole = cells.any(axis=(1, 3))
        hole = np.repeat(np.repeat(cell_hole, LATENT_CELL, 0), LATENT_CELL, 1)
    return hole


def feather_width(bbox: Box, scale: float) -> int:
    """Width of the band (photo pixels, inside the mask) over which a generated fill is
    brought to meet the photo. It grows with the region (a big fill needs a long, soft
    transition) and with the upscaling factor (an upscaled fill is softer than the photo,
    and an abrupt edge between the two shows)."""
    extent = max(bbox[2] - bbox[0], bbox[3] - bbox[1])
    return int(np.clip(round(max(2.0 * scale, 0.02 * extent)), 2, 32))


def edge_correction(generated: np.ndarray, original: np.ndarray, hole: np.ndarray,
                    band: int) -> np.ndarray:
    """Float [H, W, 3] shift that makes `generated` meet `original` at the hole's edge.

    The model repainted a grown hole, so on the photo pixels touching the hole both exist:
    their difference is averaged along the edge (a Gaussian of about half the band) and
    carried into the hole, fading linearly to nothing `band` pixels deep. At the edge the
    fill then has the photo's local colour and brightness; deeper in, it is the model's
    own. Zero outside the hole.
    """
    import cv2

    edge = dilate(hole, 1) & ~hole
    if not edge.any():
        return np.zeros(generated.shape, np.float32)
    sigma = max(1.0, band / 2)
    weight = edge.astype(np.float32)
    diff = (original.astype(np.float32) - generated) * weight[..., None]
    total = cv2.GaussianBlur(diff, (0, 0), sigma)
    norm = cv2.GaussianBlur(weight, (0, 0), sigma)
    depth = cv2.distanceTransform(hole.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    fade = np.clip(1.0 - (depth - 1.0) / band, 0.0, 1.0) * hole  # 1 at the edge
    fade[norm < 1e-4] = 0.0  # too far from any edge pixel for the average to mean anything
    return total / np.maximum(norm, 1e-4)[..., None] * fade[..., None]


def colour_offset(generated: np.ndarray, original: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Per-channel shift that makes the generated pixels' colour match the original's on
    a ring just outside the hole (where the model only re-encoded the photo), removing
    the slight colour and brightness drift of the autoencoder that shows as a seam."""
    count = int(ring.sum())
    if count < 16:
        return np.zeros(generated.shape[-1], np.float32)
    step = max(1, count // 20000)  # a median of 20k samples is as good as of all
    diff = original[ring][::step].astype(np.float32) - generated[ring][::step]
    return np.median(diff, axis=0).astype(np.float32)


def blend_into(pixels: np.ndarray, generated_rgb: np.ndarray, alpha: np.ndarray,
               box: Box) -> Box | None:
    """Blend float RGB values (0..255 scale) into `pixels[box]` in place, with `alpha`.

    Pixels where alpha is 0 are not written at all, so they stay bit-identical. Alpha
    channels (RGBA photos) are left as they are. Returns the box of written pixels.
    """
    touched = alpha > 0
    rows, cols = np.flatnonzero(touched.any(axis=1)), np.flatnonzero(touched.any(axis=0))
    if len(rows) == 0:
        return None
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    x0, y0 = box[0] + c0, box[1] + r0
    target = pixels[y0 : y0 + (r1 - r0), x0 : x0 + (c1 - c0), :3]
    a = alpha[r0:r1, c0:c1, None]
    top, scale = (65535.0, 257.0) if pixels.dtype == np.uint16 else (255.0, 1.0)
    new = np.clip(generated_rgb[r0:r1, c0:c1] * scale, 0.0, top)
    mixed = np.rint(target * (1.0 - a) + new * a).astype(pixels.dtype)
    np.copyto(target, mixed, where=touched[r0:r1, c0:c1, None])
    return (int(x0), int(y0), int(x0 + (c1 - c0)), int(y0 + (r1 - r0)))
