"""The denoising loop: our own loop over diffusers' DDIMScheduler, as the authors run it.

With 20 steps and strength 0.99 the schedule is [950, 900, ..., 0] minus its first entry:
19 network calls, starting from the clean latents noised to t = 900. Each call runs the
unconditional (ids 10..19) and conditional (ids 0..9) rows as one batch and mixes them
with the guidance scale.

`denoise` is a generator: it yields a `StepOutput` after every network call (so callers
can report progress, preview, or check against golden tensors), checks the job's cancel
token between steps, and returns the final latents.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.events import CancelToken
from engine.net.interrupt import stop_points

if TYPE_CHECKING:
    import torch

    from engine.net.model import RemovalModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplerSettings:
    steps: int = 20
    guidance: float = 2.5
    strength: float = 0.99
    noise_offset: float = 0.0357

    def __post_init__(self):
        if not 1 <= self.steps <= 1000:
            raise ValueError("steps must be between 1 and 1000")
        if not 0.0 < self.strength <= 1.0:
            raise ValueError("strength must be in (0, 1]")
        if self.guidance < 0:
            raise ValueError("guidance must not be negative")

    @property
    def network_calls(self) -> int:
        return min(int(self.steps * self.strength), self.steps)


@dataclass(frozen=True)
class StepOutput:
    index: int  # 0-based
    total: int
    timestep: int
    latents_in: torch.Tensor
    noise_pred: torch.Tensor  # guided epsilon, float32
    latents_out: torch.Tensor
    # The scheduler's estimate of the clean latents at this step (what a preview shows).
    predicted_x0: torch.Tensor | None = None


def make_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        clip_sample=False,
    )


def timesteps_for(scheduler, settings: SamplerSettings) -> torch.Tensor:
    """The timesteps actually run, e.g. [900, 850, ..., 0] for 20 steps at strength 0.99."""
    scheduler.set_timesteps(settings.steps)
    start = settings.steps - settings.network_calls
    return scheduler.timesteps[start * scheduler.order :]


def draw_noise(shape, generator: torch.Generator, offset: float) -> torch.Tensor:
    """Gaussian noise plus a per-(item, channel) constant (the "noise offset").

    Drawn on the CPU generator, in the reference's order (field first, then offsets).
    """
    import torch

    noise = torch.randn(shape, generator=generator)
    if offset:
        noise = noise + offset * torch.randn(shape[0], shape[1], 1, 1, generator=generator)
    return noise


def denoise(
    model: RemovalModel,
    latents: torch.Tensor,
    masked_latents: torch.Tensor,
    mask: torch.Tensor,
    settings: SamplerSettings,
    *,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    cancel: CancelToken | None = None,
    forward=None,
) -> Generator[StepOutput, None, torch.Tensor]:
    """Inpaint in latent space.

    latents [B, 4, h, w]: clean latents of the image (the start keeps a trace of them)
    masked_latents [B, 4, h, w]: latents of the image with the hole set to grey
    mask [B, 1, h, w]: 1 in the hole
    noise: the starting noise; drawn from `generator` (with the offset) when omitted.
    forward: what computes the network (default: the model; e.g. a CUDA-graph replayer).
    """
    import torch

    scheduler = make_scheduler()
    timesteps = timesteps_for(scheduler, settings)
    device = next(model.parameters()).device
    if noise is None:
        if generator is None:
            raise ValueError("pass either noise or a generator")
        noise = draw_noise(tuple(latents.shape), generator, settings.noise_offset)

    latents, masked_latents, mask, noise = (
        t.to(device, torch.float32) for t in (latents, masked_latents, mask, noise)
    )
    b = latents.shape[0]
    if settings.strength >= 1.0:
        x = noise * scheduler.init_noise_sigma
    else:
        x = scheduler.add_noise(latents, noise, timesteps[:1].to(device))
    ids = model.cfg_ids(b, device)
    cond = torch.cat([mask, masked_latents], dim=1).repeat(2, 1, 1, 1)  # [2B, 5, h, w]

    for i, t in enumerate(timesteps):
        if cancel is not None:
            cancel.raise_if_cancelled()
        # A step takes seconds on a CPU: cancel also stops it between the network's
        # blocks. Not inside a CUDA-graph replay, which is one launch (and milliseconds).
        hooked = cancel if forward is None else None
        with stop_points(model.stop_blocks() if hooked else (), hooked):
            eps = _guided_eps(model, forward or model, x, cond, t, ids, settings.guidance)
        stepped = scheduler.step(eps, int(t), x)
        x_next = stepped.prev_sample
        yield StepOutput(i, len(timesteps), int(t), x, eps, x_next, stepped.pred_original_sample)
        x = x_next
    return x


def _guided_eps(model, forward, x, cond, t, ids, guidance: float):
    """Classifier-free guidance: eps_u + g (eps_c - eps_u), run as one batch of 2B."""
    import torch

    dtype = next(model.parameters()).dtype
    sample = torch.cat([x.repeat(2, 1, 1, 1), cond], dim=1)  # [2B, 9, h, w]
    tt = t.reshape(1).to(x.device)
    with torch.inference_mode():
        out = forward(sample.to(dtype), tt, ids).float()
        if dtype != torch.float32 and not torch.isfinite(out).all():
            log.warning("non-finite output in %s; switching the network to float32", dtype)
            model.float()
            out = model(sample, tt, ids)
    eps_u, eps_c = out.chunk(2)
    return eps_u + guidance * (eps_c - eps_u)
