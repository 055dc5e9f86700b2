"""Where a region's preview goes on the photo, and how a step's colours get there cheaply.

At each network step the engine gives the predicted clean picture of the whole context
window at the latents' size (64x64 for a 512 px model; engine/sampling/preview.py). The
preview shows it the way the final result is composited: only on the region's own mask
pixels. One affine warp takes the latents' picture straight to a patch over the region's
box, at most `PREVIEW_SIDE` pixels on its long side (the canvas stretches it: the latents
hold at most 64 pixels of detail across the whole window), and the region's mask, reduced
once per job, is its alpha. A few milliseconds per step on a CPU (bench/bench_preview.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.document.box import Box
from engine.events import PreviewPatch
from engine.removal.regions import Region

PREVIEW_SIDE = 256  # longest side of a preview patch: 4x the latents' detail over a window


@dataclass(frozen=True, eq=False)
class PreviewFrame:
    """One region's preview geometry, worked out once per job."""

    box: Box  # the region's box in the photo
    window: tuple[int, int, int]  # x, y, side of its context window in the photo
    alpha: np.ndarray  # uint8 [h, w]: the region's own mask pixels at the patch's size

    @classmethod
    def of(cls, region: Region, mask: np.ndarray) -> PreviewFrame:
        import cv2

        bx0, by0, bx1, by1 = region.bbox
        bw, bh = bx1 - bx0, by1 - by0
        f = min(1.0, PREVIEW_SIDE / max(bw, bh))
        size = (max(1, round(bw * f)), max(1, round(bh * f)))
        own = mask[by0:by1, bx0:bx1].astype(np.uint8) * 255
        alpha = own if size == (bw, bh) else cv2.resize(own, size, interpolation=cv2.INTER_AREA)
        win = region.window
        return cls(region.bbox, (win.x, win.y, win.size), alpha)

    def patch(self, colours: np.ndarray) -> PreviewPatch:
        """The preview of a step from the window's colours (uint8 [n, n, 3])."""
        import cv2

        bx0, by0, bx1, by1 = self.box
        wx, wy, side = self.window
        h, w = self.alpha.shape
        per = side / colours.shape[0]  # photo pixels per colour pixel
        sx, sy = (bx1 - bx0) / w, (by1 - by0) / h  # photo pixels per patch pixel
        # Patch pixel centre -> photo -> window -> colour pixel centre.
        to_source = np.array([[sx / per, 0.0, (bx0 - wx + 0.5 * sx) / per - 0.5],
                              [0.0, sy / per, (by0 - wy + 0.5 * sy) / per - 0.5]])
        rgb = cv2.warpAffine(np.ascontiguousarray(colours), to_source, (w, h),
                             flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REPLICATE)
        rgba = np.empty((h, w, 4), np.uint8)
        rgba[..., :3] = rgb
        rgba[..., 3] = self.alpha
        return PreviewPatch(self.box, rgba)
