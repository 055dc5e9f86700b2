"""The live preview's engine side: the latent-to-colour map, where its patch goes, and the
Preview events of a removal."""

import numpy as np
import pytest
import torch

from engine.events import Preview
from engine.removal.job import RemovalJob
from engine.removal.preview import PreviewFrame
from engine.removal.regions import Region, Window
from engine.removal.run import EngineHost, run_removal
from engine.removal.settings import RemovalSettings
from engine.sampling.preview import LatentColour
from tests.photos import scene, with_object


def _reduced(pixels, n):
    s = pixels.shape[0] // n
    return pixels.reshape(n, s, n, s, 3).mean(axis=(1, 3))


def test_an_affine_latent_space_is_fitted_to_within_a_level():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    small = _reduced(pixels, 8)  # [8, 8, 3]
    mix = rng.normal(size=(4, 3)) / 60
    latents = np.einsum("cj,hwj->chw", mix, small) + rng.normal(size=(4, 1, 1))
    colour = LatentColour.fit(latents, pixels)
    assert np.abs(colour.rgb(latents).astype(float) - small).max() <= 1.0


def _tiny_latents(vae, pixels):
    x = torch.from_numpy(pixels).float().permute(2, 0, 1)[None] / 127.5 - 1
    return vae.encode(x, None)[0].numpy()


def test_the_tiny_autoencoder_gives_colours_back_within_the_stated_error(tiny_vae):
    """The tiny VAE has the real format but filled, not trained, weights, so its latents
    are far less linear in colour than the real one's: here the map must give the colours
    of a photo back within 12 levels (of 255) on average, at least a quarter better than
    the photo's mean colour does, and keep that on another photo."""
    import cv2

    size = 128  # the tiny model's
    fitted_on = cv2.resize(scene(640, 640, seed=0), (size, size), interpolation=cv2.INTER_AREA)
    other = cv2.resize(scene(640, 640, seed=5), (size, size), interpolation=cv2.INTER_AREA)
    colour = LatentColour.fit(_tiny_latents(tiny_vae, fitted_on), fitted_on)
    for pixels in (fitted_on, other):
        small = _reduced(pixels, size // 8)
        error = np.abs(colour.rgb(_tiny_latents(tiny_vae, pixels)).astype(float) - small).mean()
        flat = np.abs(small - small.mean(axis=(0, 1))).mean()
        assert error < 12 and error < 0.75 * flat


def test_a_patch_lands_on_the_region_and_shows_only_its_mask():
    h, w = 300, 400
    photo = scene(w, h)
    mask = np.zeros((h, w), bool)
    mask[120:160, 200:260] = True
    mask[130:140, 210:220] = False  # a hole in the mask stays the photo's
    region = Region((200, 120, 260, 160), Window(150, 60, 160))
    frame = PreviewFrame.of(region, mask)
    # The colours of the window as the latents would give them: the window reduced 8x.
    window = photo[60:220, 150:310]
    colours = np.round(_reduced(window, 20)).astype(np.uint8)
    patch = frame.patch(colours)
    assert patch.box == (200, 120, 260, 160)
    assert patch.rgba.shape == (40, 60, 4)
    assert np.array_equal(patch.rgba[..., 3] > 0, mask[120:160, 200:260])
    # Bilinear from 8x smaller colours of a smooth photo: close to the photo there.
    error = np.abs(patch.rgba[..., :3].astype(float) - photo[120:160, 200:260]).mean()
    assert error < 6


def test_a_large_region_gets_a_patch_of_at_most_256_pixels():
    mask = np.zeros((3000, 4000), bool)
    mask[100:2100, 200:1200] = True
    frame = PreviewFrame.of(Region((200, 100, 1200, 2100), Window(0, 0, 4000)), mask)
    patch = frame.patch(np.zeros((64, 64, 3), np.uint8))
    assert patch.rgba.shape == (256, 128, 4) and patch.box == (200, 100, 1200, 2100)


@pytest.fixture(scope="module")
def tiny_host(tiny_inpainter):
    return EngineHost(loader=lambda variant, placement: tiny_inpainter)


def test_each_step_previews_the_fill_on_the_mask_only(tiny_host):
    img, mask = with_object(scene(320, 240), (140, 100, 180, 140))
    job = RemovalJob(img, mask, RemovalSettings(seed=2, steps=3))
    previews = [e for e in run_removal(job, None, tiny_host, previews=True)
                if isinstance(e, Preview)]
    assert [e.step for e in previews] == [2, 3]  # the person's steps of 3 (one skipped)
    for event in previews:
        (patch,) = event.patches
        x0, y0, x1, y1 = patch.box
        ys, xs = np.nonzero(mask)
        assert patch.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert np.array_equal(patch.rgba[..., 3] == 255, mask[y0:y1, x0:x1])
    # The picture changes as the fill forms.
    assert not np.array_equal(previews[0].patches[0].rgba, previews[-1].patches[0].rgba)
