"""The tiny end-to-end pipeline reproduces the authors' `__call__`, including its RNG use,
and the VAE and the 19-step loop match their golden tensors."""

import numpy as np
import pytest
import torch

from engine.events import drain
from engine.sampling.sampler import SamplerSettings, denoise, make_scheduler, timesteps_for
from tests.conftest import golden, max_rel
from tests.reference_pipeline import reference_call

TOL = 1e-4


run = drain  # (yielded items, return value)


def test_tiny_vae_matches_golden(tiny_vae):
    g = golden("vae_tiny")
    assert tiny_vae.scaling_factor == pytest.approx(float(g["scaling_factor"]))
    mean, logvar = tiny_vae.posterior(g["image"])
    assert max_rel(mean, g["latent_mean"]) <= TOL
    assert max_rel(logvar, g["latent_logvar"]) <= TOL
    assert max_rel(tiny_vae.encode(g["image"], None), g["latents_scaled"]) <= TOL
    assert max_rel(tiny_vae.decode(g["decode_in_latents_scaled"]), g["decode_out"]) <= TOL


def test_schedule_is_19_calls_from_900():
    g = golden("denoise_tiny")
    ts = timesteps_for(make_scheduler(), SamplerSettings(steps=20, strength=0.99))
    assert ts.tolist() == g["timesteps"].tolist() == list(range(900, -1, -50))
    assert max_rel(make_scheduler().alphas_cumprod, g["alphas_cumprod"]) == 0.0


def test_denoise_loop_replays_golden_steps(tiny_model, tiny_vae):
    g = golden("denoise_tiny")
    noise = g["noise_base"] + 0.0357 * g["noise_offset_draw"]
    assert max_rel(noise, g["noise"]) < 1e-7
    steps, final = run(
        denoise(
            tiny_model,
            g["latents"],
            g["masked_latents"],
            g["mask_latent"],
            SamplerSettings(),
            noise=g["noise"],
        )
    )
    assert len(steps) == 19
    assert max_rel(steps[0].latents_in, g["noisy_latents_init"]) <= TOL
    for k, s in enumerate(steps):
        assert s.timestep == int(g["timesteps"][k])
        assert max_rel(s.latents_in, g["step_latents_in"][k]) <= TOL, k
        assert max_rel(s.noise_pred, g["step_noise_pred_cfg"][k]) <= TOL, k
        assert max_rel(s.latents_out, g["step_latents_out"][k]) <= TOL, k
    assert max_rel(final, g["final_latents"]) <= TOL
    decoded01 = (tiny_vae.decode(final) + 1) / 2
    assert max_rel(decoded01, g["decoded_images_01"]) <= TOL


def test_tiny_pipeline_end_to_end_matches_golden(tiny_inpainter):
    g = golden("pipeline_tiny")
    image, mask = g["input_image_u8"].numpy(), g["input_mask_u8"].numpy()
    assert (mask == 128).any() and (mask == 127).any()  # the threshold is exercised

    gen = torch.Generator().manual_seed(0)
    hole = mask >= 128
    prep = tiny_inpainter.prepare(image[None], hole[None], gen, 0.0357)
    assert torch.equal(prep.mask, g["mask_tensor"])
    assert torch.equal(prep.image, g["image_tensor"])
    assert torch.equal(prep.masked_image, g["masked_image_tensor"])
    assert max_rel(prep.latents, g["latents_sampled"]) <= TOL
    assert max_rel(prep.masked_latents, g["masked_latents_sampled"]) <= TOL
    assert torch.equal(prep.mask_latent, g["mask_latent"])
    assert max_rel(prep.noise, g["noise"]) <= TOL

    _, out = run(reference_call(tiny_inpainter, image, mask, SamplerSettings(), seed=0))
    ref = g["output_image_u8"].numpy()
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert diff.max() <= 1
    assert (diff > 0).mean() <= 0.005


def test_same_seed_same_result_other_seed_differs(tiny_inpainter):
    g = golden("pipeline_tiny")
    image, hole = g["input_image_u8"].numpy()[None], (g["input_mask_u8"].numpy() >= 128)[None]
    settings = SamplerSettings(steps=4)
    _, a = run(tiny_inpainter.inpaint(image, hole, settings, seed=7))
    torch.manual_seed(1234)  # the global RNG must not matter
    torch.randn(100)
    _, b = run(tiny_inpainter.inpaint(image, hole, settings, seed=7))
    _, c = run(tiny_inpainter.inpaint(image, hole, settings, seed=8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_cancel_stops_between_steps(tiny_inpainter):
    from engine.errors import Cancelled
    from engine.events import CancelToken

    g = golden("pipeline_tiny")
    image, hole = g["input_image_u8"].numpy()[None], (g["input_mask_u8"].numpy() >= 128)[None]
    cancel = CancelToken()
    seen = []
    gen = tiny_inpainter.inpaint(image, hole, SamplerSettings(), seed=0, cancel=cancel)
    with pytest.raises(Cancelled):
        for step in gen:
            seen.append(step.index)
            if step.index == 2:
                cancel.cancel()
    assert seen == [0, 1, 2]


@pytest.mark.parametrize("steps,strength,calls", [(20, 0.99, 19), (10, 0.5, 5), (8, 1.0, 8)])
def test_steps_and_strength_options(tiny_inpainter, steps, strength, calls):
    g = golden("pipeline_tiny")
    image, hole = g["input_image_u8"].numpy()[None], (g["input_mask_u8"].numpy() >= 128)[None]
    items, out = run(tiny_inpainter.inpaint(image, hole, SamplerSettings(steps, 2.5, strength), 0))
    assert len(items) == calls
    assert out.shape == (1, 128, 128, 3) and out.dtype == np.uint8


def test_guidance_changes_the_result(tiny_inpainter):
    g = golden("pipeline_tiny")
    image, hole = g["input_image_u8"].numpy()[None], (g["input_mask_u8"].numpy() >= 128)[None]
    _, a = run(tiny_inpainter.inpaint(image, hole, SamplerSettings(4, 1.0), 0))
    _, b = run(tiny_inpainter.inpaint(image, hole, SamplerSettings(4, 4.0), 0))
    assert not np.array_equal(a, b)
