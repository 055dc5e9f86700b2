"""A cheap look at a fill while it denoises: latents turned into colour without the decoder.

The VAE decoder costs as much as four network steps on a CPU, so it cannot run at every
step. This VAE's latents are close to an affine function of the colour of the 8x8 block
each stands for, so per job a 5x3 map (four latent channels and a constant -> RGB) is
fitted by least squares between the photo's own latents (the encoder runs anyway) and
its pixels reduced 8x. Applied to the scheduler's predicted clean latents at a step, it
gives a colour picture of the fill at the latents' size (64x64 for a 512 px window) in
well under a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatentColour:
    """An affine map from latents (in UNet space) to 8-bit RGB."""

    matrix: np.ndarray  # float32 [5, 3]: rows for the 4 channels, then the constant

    @classmethod
    def fit(cls, latents: np.ndarray, pixels: np.ndarray) -> LatentColour:
        """Least squares between latents [4, h, w] and the uint8 [H, W, 3] picture they
        encode (H, W multiples of h, w): each latent against the mean of its block."""
        c, h, w = latents.shape
        bh, bw = pixels.shape[0] // h, pixels.shape[1] // w
        small = pixels[: h * bh, : w * bw].reshape(h, bh, w, bw, 3).mean(axis=(1, 3))
        x = np.empty((h * w, c + 1), np.float64)
        x[:, :c] = latents.reshape(c, -1).T
        x[:, c] = 1.0
        # A tiny ridge keeps the map finite on a flat picture (all latents alike).
        ridge = 1e-6 * np.eye(c + 1)
        matrix = np.linalg.solve(x.T @ x + ridge, x.T @ small.reshape(-1, 3))
        return cls(matrix.astype(np.float32))

    def rgb(self, latents: np.ndarray) -> np.ndarray:
        """Latents [4, h, w] -> uint8 [h, w, 3]."""
        c, h, w = latents.shape
        flat = latents.reshape(c, -1).T.astype(np.float32, copy=False) @ self.matrix[:c]
        flat += self.matrix[c]
        return np.clip(flat, 0.0, 255.0).astype(np.uint8).reshape(h, w, 3)
