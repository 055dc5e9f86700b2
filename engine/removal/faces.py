"""Finding faces in a photo with a detector that ships inside a dependency (no download).

OpenCV 5, which we use, no longer ships Haar or LBP cascades (nor the classifier that ran
them); its YuNet detector needs a model file that is not in the wheel. scikit-image ships
OpenCV's LBP frontal-face cascade (`lbpcascade_frontalface_opencv.xml`, 50 KB) together
with a compiled evaluator, `skimage.feature.Cascade`, so that is what we use.

Only faces large enough to matter for choosing a fine-tune are looked for, so detection
runs on a copy of the photo whose short side is `DETECT_SIDE` pixels: about 0.2 s on one
core for any photo size, and the evaluator releases the GIL while it scans, so a GUI on
another thread keeps drawing. Imports are lazy (scikit-image pulls in SciPy).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.document.box import Box
from engine.events import CancelToken

log = logging.getLogger(__name__)

DETECT_SIDE = 320  # px: the short side of the copy the detector scans
MIN_FACE = 0.12  # faces narrower than this share of the short side are not looked for
_SCALE_STEP = 1.15  # window growth between scanned scales
_NEIGHBOURS = 4  # overlapping hits needed to accept a face (fewer false positives)
_lock = threading.Lock()  # one Cascade object: scans one image at a time


@dataclass(frozen=True)
class Face:
    box: Box  # in the photo's pixels (x0, y0, x1, y1)
    size: float  # face width / the photo's short side


@lru_cache(maxsize=1)
def _cascade():
    from skimage.data import lbp_frontal_face_cascade_filename
    from skimage.feature import Cascade

    return Cascade(lbp_frontal_face_cascade_filename())


def grey_for_detection(pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """(uint8 grey copy with short side DETECT_SIDE or less, photo pixels per copy pixel)."""
    import cv2

    rgb = pixels[..., :3] if pixels.ndim == 3 else pixels
    if rgb.dtype == np.uint16:
        rgb = (rgb >> 8).astype(np.uint8)
    h, w = rgb.shape[:2]
    scale = max(1.0, min(h, w) / DETECT_SIDE)
    size = (max(1, round(w / scale)), max(1, round(h / scale)))
    # Shrink first (area averaging, on 3 channels), then make it grey: cheaper than the
    # other way round on a 24 MP photo.
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale > 1 else rgb
    grey = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2GRAY) \
        if small.ndim == 3 else np.ascontiguousarray(small)
    return grey, scale


def detect_faces(pixels: np.ndarray, cancel: CancelToken | None = None) -> list[Face]:
    """Frontal faces at least MIN_FACE of the short side wide, largest first.

    `pixels` is [H, W] or [H, W, 3|4], uint8 or uint16 (not modified)."""
    grey, scale = grey_for_detection(pixels)
    h, w = grey.shape
    short = min(h, w)
    smallest = max(24, int(MIN_FACE * short))  # the cascade's window is 24 px
    if short < smallest:
        return []
    if cancel is not None:
        cancel.raise_if_cancelled()
    with _lock:
        found = _cascade().detect_multi_scale(
            img=grey, scale_factor=_SCALE_STEP, step_ratio=1, min_size=(smallest, smallest),
            max_size=(short, short), min_neighbor_number=_NEIGHBOURS)
    photo_short = min(pixels.shape[:2])
    faces = []
    for hit in found:
        x0, y0 = hit["c"] * scale, hit["r"] * scale
        x1, y1 = x0 + hit["width"] * scale, y0 + hit["height"] * scale
        box = (int(x0), int(y0), min(round(x1), pixels.shape[1]), min(round(y1), pixels.shape[0]))
        faces.append(Face(box, (box[2] - box[0]) / photo_short))
    faces.sort(key=lambda f: f.size, reverse=True)
    log.info("found %d face(s): %s", len(faces), ", ".join(f"{f.size:.0%}" for f in faces))
    return faces
