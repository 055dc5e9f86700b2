"""Moebius inpainting at the network's own size (512x512 for the real model).

`MoebiusInpainter` owns the loaded UNet and VAE and turns square uint8 images plus
binary masks of exactly `image_size` pixels into inpainted uint8 images. Making real
photos fit that size (and putting the result back) is the job of `engine.removal.run`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast, overload

import numpy as np

from engine.events import CancelToken
from engine.sampling.device import Placement
from engine.sampling.sampler import SamplerSettings, StepOutput, denoise, draw_noise

if TYPE_CHECKING:
    import torch

    from engine.net.model import RemovalModel
    from engine.net.vae import Vae

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase:
    """A part of `inpaint` starts: "encoding", "denoising" or "decoding"."""

    name: str


@dataclass(frozen=True)
class Prepared:
    """The tensors the reference pipeline builds before sampling (kept for tests)."""

    image: torch.Tensor  # [B, 3, S, S] in [-1, 1]
    mask: torch.Tensor  # [B, 1, S, S], 1 = hole
    masked_image: torch.Tensor  # image with the hole set to 0 (mid-grey)
    latents: torch.Tensor  # [B, 4, S/8, S/8] posterior samples x scale
    masked_latents: torch.Tensor
    mask_latent: torch.Tensor  # [B, 1, S/8, S/8]
    noise: torch.Tensor


class MoebiusInpainter:
    def __init__(self, model: RemovalModel, vae: Vae, placement: Placement,
                 cuda_graphs: bool = True):
        self.model, self.vae, self.placement = model, vae, placement
        self.forward: Callable[..., torch.Tensor] = model
        if placement.device.startswith("cuda") and cuda_graphs:
            from engine.sampling.cuda_graphs import CudaGraphForward, tune_cuda_runtime

            tune_cuda_runtime(placement.torch_dtype)
            self.forward = CudaGraphForward(model)

    @classmethod
    def load(
        cls, unet_path: str | Path, vae_dir: str | Path, placement: Placement,
        cache: bool = True, cuda_graphs: bool = True, cancel: CancelToken | None = None,
    ) -> MoebiusInpainter:
        """Read both networks and place them. A set `cancel` stops the load between its
        parts (reading the network, preparing it, moving it to the device, the
        autoencoder) with Cancelled; what was read so far is dropped."""
        import torch

        from engine.net.checkpoint import load_model
        from engine.net.fold import fold_batch_norms
        from engine.net.vae import Vae
        from engine.sampling.device import tune_cpu_runtime

        def check() -> None:
            if cancel is not None:
                cancel.raise_if_cancelled()

        check()
        if placement.device == "cpu":
            tune_cpu_runtime()
        model = load_model(unet_path, cache=cache)
        check()
        model = cast("RemovalModel", fold_batch_norms(model))
        check()
        model = model.to(placement.torch_device, placement.torch_dtype)
        check()
        # The VAE stays in fp32 on GPUs: its decoder overflows in fp16.
        vae_dtype = placement.torch_dtype if placement.device == "cpu" else torch.float32
        vae = Vae.load(vae_dir, placement.torch_device, vae_dtype)
        check()
        return cls(model, vae, placement, cuda_graphs=cuda_graphs)

    @property
    def image_size(self) -> int:
        return self.model.config.image_size

    def prepare(
        self, images: np.ndarray, masks: np.ndarray, generator: torch.Generator,
        noise_offset: float, cancel: CancelToken | None = None,
    ) -> Prepared:
        """uint8 [B, S, S, 3] images and bool/uint8 [B, S, S] masks -> sampler inputs."""
        import torch
        import torch.nn.functional as F

        images, masks = _check_batch(images, masks, self.image_size)
        image = torch.from_numpy(images.astype(np.float64) / 255.0 * 2.0 - 1.0)
        image = image.float().permute(0, 3, 1, 2).contiguous()  # [B, 3, S, S]
        mask = torch.from_numpy(masks).float()[:, None]  # [B, 1, S, S]
        masked_image = image * (1.0 - mask)
        # Image and masked image go through the encoder as one batch; the posterior draws
        # come out in the reference's order (all image rows, then all masked rows).
        both = self.vae.encode(torch.cat([image, masked_image]), generator, cancel)
        latents, masked_latents = both.chunk(2)
        h = self.image_size // 8
        mask_latent = F.interpolate(mask, size=(h, h))  # nearest: pixel (8i, 8j)
        noise = draw_noise(tuple(latents.shape), generator, noise_offset)
        return Prepared(image, mask, masked_image, latents, masked_latents, mask_latent, noise)

    @overload
    def inpaint(self, images: np.ndarray, masks: np.ndarray, settings: SamplerSettings,
                seed: int, cancel: CancelToken | None = None, *,
                phases: Literal[False] = False) -> Generator[StepOutput, None, np.ndarray]: ...

    @overload
    def inpaint(self, images: np.ndarray, masks: np.ndarray, settings: SamplerSettings,
                seed: int, cancel: CancelToken | None = None, *,
                phases: Literal[True]) -> Generator[StepOutput | Phase, None, np.ndarray]: ...

    def inpaint(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        settings: SamplerSettings,
        seed: int,
        cancel: CancelToken | None = None,
        *,
        phases: bool = False,
    ) -> Generator[StepOutput | Phase, None, np.ndarray]:
        """Yields one StepOutput per network call; returns uint8 [B, S, S, 3].

        With `phases=True` it also yields a `Phase` as the encoder, the network steps and
        the decoder start, so a caller can report (and time) them. `cancel` stops between
        steps and inside the network and autoencoder passes, between their blocks."""
        import torch

        generator = torch.Generator().manual_seed(int(seed))
        if phases:
            yield Phase("encoding")
        prep = self.prepare(images, masks, generator, settings.noise_offset, cancel)
        if phases:
            yield Phase("denoising")
        latents = yield from denoise(
            self.model,
            prep.latents,
            prep.masked_latents,
            prep.mask_latent,
            settings,
            noise=prep.noise,
            cancel=cancel,
        )
        if cancel is not None:
            cancel.raise_if_cancelled()
        if phases:
            yield Phase("decoding")
        return to_uint8(self.vae.decode(latents, cancel))


def to_uint8(decoded: torch.Tensor) -> np.ndarray:
    """VAE output in about [-1, 1], NCHW -> uint8 NHWC, truncating like the reference."""
    x = ((decoded.float().cpu() + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0
    return x.permute(0, 2, 3, 1).numpy().astype(np.uint8)


def _check_batch(images: np.ndarray, masks: np.ndarray, size: int):
    images, masks = np.asarray(images), np.asarray(masks)
    if images.ndim == 3:
        images, masks = images[None], masks[None]
    if images.dtype != np.uint8 or images.shape[1:] != (size, size, 3):
        raise ValueError(
            f"images must be uint8 [B, {size}, {size}, 3], got {images.dtype} {images.shape}"
        )
    if masks.shape != images.shape[:3]:
        raise ValueError(f"masks must be [B, {size}, {size}], got {masks.shape}")
    binary = masks >= 128 if masks.dtype == np.uint8 else masks.astype(bool)
    return images, binary
