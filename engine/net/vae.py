"""The latent autoencoder: diffusers' AutoencoderKL in the PixelHacker folder layout.

Images cross this boundary as float tensors in [-1, 1], NCHW; latents are in "UNet
space", i.e. already multiplied by the VAE's scaling factor (0.13025 for PixelHacker).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import CheckpointError
from engine.net.interrupt import stop_points

if TYPE_CHECKING:
    import torch

    from engine.events import CancelToken

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent / "configs"


class Vae:
    def __init__(self, autoencoder, device: torch.device, dtype: torch.dtype):
        self.model = autoencoder.to(device=device, dtype=dtype).eval()
        self.device, self.dtype = device, dtype
        self.scaling_factor = float(autoencoder.config.scaling_factor)

    @classmethod
    def load(cls, folder: str | Path, device="cpu", dtype=None) -> Vae:
        import torch
        from diffusers import AutoencoderKL

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise CheckpointError(f"no VAE config.json in {folder}")
        weights = [
            folder / n
            for n in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
        ]
        found = [w for w in weights if w.is_file()]
        if not found:
            raise CheckpointError(f"no VAE weights (diffusion_pytorch_model.*) in {folder}")
        try:
            # low_cpu_mem_usage needs the accelerate package; the VAE is small enough.
            ae = AutoencoderKL.from_pretrained(folder, low_cpu_mem_usage=False)
        except Exception as exc:  # diffusers raises many kinds; all mean "bad folder"
            log.info("diffusers could not load the VAE in %s: %s", folder, exc)
            raise CheckpointError(_why_not_loaded(folder, found[0], exc)) from exc
        return cls(ae, torch.device(device), dtype or torch.float32)

    @classmethod
    def from_config(cls, config_path: str | Path, device="cpu", dtype=None) -> Vae:
        """An untrained VAE of a given shape (tests and benchmarks fill it themselves)."""
        import json

        import torch
        from diffusers import AutoencoderKL

        config = json.loads(Path(config_path).read_text())
        return cls(AutoencoderKL.from_config(config), torch.device(device), dtype or torch.float32)

    def encode(self, images: torch.Tensor, generator: torch.Generator | None,
               cancel: CancelToken | None = None) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1] -> latents [B, 4, H/8, W/8] (a posterior sample x scale).

        The sample's noise is drawn on the CPU generator so a seed gives the same result
        on every device. With `generator=None` the posterior mean is returned. A set
        `cancel` stops the pass between the encoder's blocks (raises Cancelled).
        """
        import torch

        with torch.inference_mode(), stop_points(_stop_blocks(self.model.encoder), cancel):
            dist = self.model.encode(images.to(self.device, self.dtype)).latent_dist
            if generator is None:
                z = dist.mean
            else:
                eps = torch.randn(dist.mean.shape, generator=generator, dtype=torch.float32)
                z = dist.mean + dist.std * eps.to(self.device, dist.mean.dtype)
            z = torch.nan_to_num(z.float() * self.scaling_factor, nan=0.0)
        return z

    def posterior(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, logvar) of the posterior, unscaled; for tests."""
        import torch

        with torch.inference_mode():
            dist = self.model.encode(images.to(self.device, self.dtype)).latent_dist
        return dist.mean.float(), dist.logvar.float()

    def decode(self, latents: torch.Tensor, cancel: CancelToken | None = None) -> torch.Tensor:
        """Latents in UNet space -> images [B, 3, H, W], roughly in [-1, 1], not clamped.
        A set `cancel` stops the pass between the decoder's blocks (raises Cancelled)."""
        import torch

        with torch.inference_mode(), stop_points(_stop_blocks(self.model.decoder), cancel):
            x = latents.to(self.device, self.dtype) / self.scaling_factor
            return self.model.decode(x).sample.float()


def _stop_blocks(half) -> list:
    """Where an encoder or decoder pass may stop: before each resnet, attention and
    resampling layer, and before the output convolution (a 512 px decode on a 2-core CPU
    has a dozen of these, each well under a second or two)."""
    from diffusers.models.attention_processor import Attention
    from diffusers.models.downsampling import Downsample2D
    from diffusers.models.resnet import ResnetBlock2D
    from diffusers.models.upsampling import Upsample2D

    kinds = (ResnetBlock2D, Attention, Downsample2D, Upsample2D)
    return [m for m in half.modules() if isinstance(m, kinds)] + [half.conv_out]


def _why_not_loaded(folder: Path, weights: Path, exc: Exception) -> str:
    """One sentence for a VAE folder diffusers refused (its own text is a page of shapes)."""
    import json

    import torch
    from diffusers import AutoencoderKL

    from engine.net.checkpoint import read_state_dict

    again = "download both files of the autoencoder again"
    try:
        with torch.device("meta"):
            model = AutoencoderKL.from_config(json.loads((folder / "config.json").read_text()))
    except Exception:  # noqa: BLE001 - unreadable JSON or settings diffusers rejects
        return f"{folder / 'config.json'} is not an autoencoder configuration; {again}."
    try:
        sd = read_state_dict(weights)
    except CheckpointError as bad:
        return str(bad)
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    wrong = [k for k in want if k in sd and tuple(sd[k].shape) != want[k]]
    missing = [k for k in want if k not in sd]
    if wrong:
        k = wrong[0]
        return (f"the autoencoder weights {weights} do not match {folder / 'config.json'}: "
                f"{len(wrong)} tensors have other shapes (e.g. {k} is "
                f"{tuple(sd[k].shape)} in the file, {want[k]} by the config); both files must "
                f"come from the same autoencoder, so {again}.")
    if missing:
        return (f"the autoencoder weights {weights} lack {len(missing)} of the tensors "
                f"{folder / 'config.json'} describes (e.g. {missing[0]}); {again}.")
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"the autoencoder in {folder} could not be loaded ({first}); {again}."


# ----------------------------------------------------------------------------- two-part encode
# `Vae.encode` draws a posterior sample in one go. The two functions below split it into the
# deterministic encoder pass (expensive: about 1 TFLOP per 512 px image) and the cheap
# draw, so an inpainter can keep the moments of a photo it has seen and, on *Try again*,
# only draw again. sample_posterior(encode_moments(x), eps) is encode(x) op for op.


def encode_moments(vae: Vae, images: torch.Tensor, one_at_a_time: bool = False,
                   cancel: CancelToken | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, 3, H, W] in [-1, 1] -> the posterior's (mean, std), in the VAE's dtype and
    device, unscaled. `one_at_a_time` runs the encoder per image (each image's pass is
    independent of the others; only float rounding may differ): half the peak memory
    for a pair. A set `cancel` stops the pass between the encoder's blocks."""
    import torch

    if one_at_a_time and len(images) > 1:
        parts = [encode_moments(vae, images[i : i + 1], cancel=cancel)
                 for i in range(len(images))]
        return torch.cat([m for m, _ in parts]), torch.cat([s for _, s in parts])
    x = images.to(vae.device, vae.dtype)
    if stores_channels_last(vae):
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), stop_points(_stop_blocks(vae.model.encoder), cancel):
        dist = vae.model.encode(x).latent_dist
    return dist.mean.contiguous(), dist.std.contiguous()


def use_channels_last(vae: Vae) -> None:
    """Store the VAE's weights channels-last. On the CPU its convolutions then run on
    their preferred layout without reordering each input and output: a 512 px decode
    takes about 25 % less time and 0.2 GiB (fp32) less memory (bench/bench_levers.py)."""
    import torch

    vae.model.to(memory_format=torch.channels_last)


def stores_channels_last(vae: Vae) -> bool:
    """True after use_channels_last (its inputs should then be channels-last too)."""
    import torch

    weight = vae.model.encoder.conv_in.weight
    return weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()


def sample_posterior(vae: Vae, moments: tuple[torch.Tensor, torch.Tensor],
                     eps: torch.Tensor | None) -> torch.Tensor:
    """Latents in UNet space from cached moments: mean + std * eps (eps standard normal,
    drawn by the caller on the CPU), or the mean when eps is None."""
    import torch

    mean, std = moments
    with torch.inference_mode():
        z = mean if eps is None else mean + std * eps.to(vae.device, mean.dtype)
        return torch.nan_to_num(z.float() * vae.scaling_factor, nan=0.0)
