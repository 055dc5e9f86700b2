"""Moebius inpainting at the network's own size (512x512 for the real model).

`MoebiusInpainter` owns the loaded UNet and VAE and turns square uint8 images plus
binary masks of exactly `image_size` pixels into inpainted uint8 images. Making real
photos fit that size (and putting the result back) is the job of `engine.removal.run`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast, overload

import numpy as np

from engine.events import CancelToken
from engine.net.vae import encode_moments, sample_posterior
from engine.net.vae_decode import decode_lean
from engine.sampling.device import Placement, release_free_memory
from engine.sampling.encode_cache import EncodeCache, Moments, content_key
from engine.sampling.preview import LatentColour
from engine.sampling.sampler import SamplerSettings, StepOutput, denoise, draw_noise

if TYPE_CHECKING:
    import torch

    from engine.net.model import RemovalModel
    from engine.net.vae import Vae

log = logging.getLogger(__name__)


def regions_per_batch(placement: Placement) -> int:
    """Regions of one photo that may share a batch of the network. On a GPU a batch of
    several costs little more than one; on the CPU a step's time grows with the batch, so
    batching there would only add memory."""
    return 1 if placement.device == "cpu" else 4


@dataclass(frozen=True)
class Phase:
    """A part of `inpaint` starts: "encoding", "denoising" or "decoding". As denoising
    starts, `colours` holds one latent-to-colour map per image, fitted on its own
    latents, for previews of the steps (engine/sampling/preview.py)."""

    name: str
    colours: tuple[LatentColour, ...] = ()


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
        self.encodings = EncodeCache()  # Try again reuses the encoder pass
        self.max_regions = regions_per_batch(placement)
        # The VAE as engine/net/vae_decode.py runs it; False: as diffusers does (baseline).
        self.lean_vae = True
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
        from engine.net.fold import prepare_for_inference
        from engine.net.vae import Vae, use_channels_last
        from engine.sampling.device import tune_cpu_runtime

        def check() -> None:
            if cancel is not None:
                cancel.raise_if_cancelled()

        check()
        cpu = placement.device == "cpu"
        if cpu:
            tune_cpu_runtime()
        model = load_model(unet_path, cache=cache)
        check()
        # Converted layer by layer on the CPU, moved whole to a GPU.
        model = cast("RemovalModel", prepare_for_inference(model, placement.torch_dtype
                                                           if cpu else None))
        check()
        model = model.to(placement.torch_device, placement.torch_dtype)
        if cpu:
            release_free_memory()  # what the fp32 checkpoint occupied
        check()
        # The VAE stays in fp32 on GPUs: its decoder overflows in fp16.
        vae_dtype = placement.torch_dtype if cpu else torch.float32
        vae = Vae.load(vae_dir, placement.torch_device, vae_dtype)
        check()
        if cpu:
            use_channels_last(vae)
            release_free_memory(collect_cycles=True)  # its fp32 copy and mapped file
        return cls(model, vae, placement, cuda_graphs=cuda_graphs)

    @property
    def step_forward(self) -> Callable[..., torch.Tensor] | None:
        """What the sampler calls for each step when it is not the plain model (the
        CUDA-graph replayer on GPUs); None lets the sampler call the model itself."""
        return None if self.forward is self.model else self.forward

    @property
    def image_size(self) -> int:
        return self.model.config.image_size

    def prepare(
        self, images: np.ndarray, masks: np.ndarray,
        generator: torch.Generator | Sequence[torch.Generator], noise_offset: float,
        cancel: CancelToken | None = None,
    ) -> Prepared:
        """uint8 [B, S, S, 3] images and bool/uint8 [B, S, S] masks -> sampler inputs.

        One generator draws for the whole batch in the reference's order; a list of B
        generators gives each item the draws it would get alone (batched regions). The
        encoder pass of an input seen before comes from `self.encodings`. A set `cancel`
        stops the encoder between its blocks (Cancelled).
        """
        import torch
        import torch.nn.functional as F

        images, masks = _check_batch(images, masks, self.image_size)
        b = len(images)
        joint = isinstance(generator, torch.Generator)
        gens: list[torch.Generator] = (
            [generator] if isinstance(generator, torch.Generator) else list(generator))
        if not joint and len(gens) != b:
            raise ValueError(f"pass one generator or one per image ({b}), got {len(gens)}")
        image = torch.from_numpy(images.astype(np.float64) / 255.0 * 2.0 - 1.0)
        image = image.float().permute(0, 3, 1, 2).contiguous()  # [B, 3, S, S]
        mask = torch.from_numpy(masks).float()[:, None]  # [B, 1, S, S]
        masked_image = image * (1.0 - mask)
        # Each image goes through the encoder with its masked copy as one batch (as the
        # reference does for one image); the rows come out in the reference's order:
        # all image rows, then all masked rows.
        pairs = [self._moments(images[i], masks[i], image[i], masked_image[i], cancel)
                 for i in range(b)]
        mean = torch.cat([p[0][:1] for p in pairs] + [p[0][1:] for p in pairs])
        std = torch.cat([p[1][:1] for p in pairs] + [p[1][1:] for p in pairs])
        h = self.image_size // 8
        shape = (b, 4, h, h)
        if joint:
            eps = torch.randn((2 * b, *shape[1:]), generator=gens[0], dtype=torch.float32)
            noise = draw_noise(shape, gens[0], noise_offset)
        else:  # per item: its posterior draw for (image, masked), then its noise
            draws = [(torch.randn((2, *shape[1:]), generator=g, dtype=torch.float32),
                      draw_noise((1, *shape[1:]), g, noise_offset)) for g in gens]
            eps = torch.cat([e[:1] for e, _ in draws] + [e[1:] for e, _ in draws])
            noise = torch.cat([n for _, n in draws])
        latents, masked_latents = sample_posterior(self.vae, (mean, std), eps).chunk(2)
        mask_latent = F.interpolate(mask, size=(h, h))  # nearest: pixel (8i, 8j)
        return Prepared(image, mask, masked_image, latents, masked_latents, mask_latent, noise)

    def _moments(self, pixels: np.ndarray, hole: np.ndarray, image: torch.Tensor,
                 masked_image: torch.Tensor, cancel: CancelToken | None = None) -> Moments:
        """The encoder's (mean, std) of [image; masked image], from the cache if seen."""
        import torch

        key = content_key(pixels, hole)
        moments = self.encodings.get(key)
        if moments is None:
            # On the CPU one image at a time: the encoder's full-size maps set the peak
            # memory of a removal (1.3 GB in fp32 for the pair at once).
            moments = encode_moments(self.vae, torch.stack([image, masked_image]),
                                     one_at_a_time=self.lean_vae and self.placement.device == "cpu",
                                     cancel=cancel)
            self.encodings.put(key, moments)
        return moments

    @overload
    def inpaint(self, images: np.ndarray, masks: np.ndarray, settings: SamplerSettings,
                seed: int | Sequence[int], cancel: CancelToken | None = None, *,
                phases: Literal[False] = False) -> Generator[StepOutput, None, np.ndarray]: ...

    @overload
    def inpaint(self, images: np.ndarray, masks: np.ndarray, settings: SamplerSettings,
                seed: int | Sequence[int], cancel: CancelToken | None = None, *,
                phases: Literal[True]) -> Generator[StepOutput | Phase, None, np.ndarray]: ...

    def inpaint(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        settings: SamplerSettings,
        seed: int | Sequence[int],
        cancel: CancelToken | None = None,
        *,
        phases: bool = False,
    ) -> Generator[StepOutput | Phase, None, np.ndarray]:
        """Yields one StepOutput per network call; returns uint8 [B, S, S, 3].

        With one seed the batch shares one generator (the reference's behaviour); with a
        seed per image each gets what it would get alone, so batching regions (or seeds of
        one region) changes their results only by float rounding. With `phases=True` it
        also yields a `Phase` as the encoder, the network steps and the decoder start, so
        a caller can report (and time) them. `cancel` stops between steps and inside the
        network and autoencoder passes, between their blocks."""
        import torch

        if isinstance(seed, (int, np.integer)):
            generator: torch.Generator | list[torch.Generator] = torch.Generator().manual_seed(
                int(seed))
        else:
            generator = [torch.Generator().manual_seed(int(s)) for s in seed]
        if phases:
            yield Phase("encoding")
        prep = self.prepare(images, masks, generator, settings.noise_offset, cancel)
        if phases:
            b = len(prep.latents)
            pictures = np.asarray(images).reshape(b, *np.shape(images)[-3:])
            image_latents = prep.latents.float().cpu().numpy()
            yield Phase("denoising", tuple(LatentColour.fit(image_latents[i], pictures[i])
                                           for i in range(b)))
        latents = yield from denoise(
            self.model,
            prep.latents,
            prep.masked_latents,
            prep.mask_latent,
            settings,
            noise=prep.noise,
            cancel=cancel,
            forward=self.step_forward,
        )
        if cancel is not None:
            cancel.raise_if_cancelled()
        if phases:
            yield Phase("decoding")
        # One image at a time: the decoder's activations at full size are the largest
        # tensors of a removal, and a batch would multiply them.
        decode = (partial(decode_lean, self.vae, cancel=cancel) if self.lean_vae
                  else partial(self.vae.decode, cancel=cancel))
        out = np.concatenate([to_uint8(decode(z[None])) for z in latents])
        if self.placement.device == "cpu":
            release_free_memory()
        return out


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
