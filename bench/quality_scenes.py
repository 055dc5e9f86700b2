"""Scenes whose clean background is known, for measuring fills against the truth.

Two kinds, both made here at run time (nothing is downloaded):

* generated: a landscape (sky, clouds, hills, a horizon), a textured ground, a brick wall, a
  facade with windows and a noisy gradient, with objects pasted on: signs, balls, a pole
  that crosses the horizon, wires;
* real photographs: scikit-image's bundled samples that are public domain or CC0 (their
  licence is in each loader's docstring; the `bench` extra installs scikit-image), with
  synthetic objects pasted on. Their original is the truth.

Objects are drawn at 4x and area-averaged, so their edges are anti-aliased like a real
object's; every object is masked at three margins, from tight (every pixel the object
touches) to generous.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

MARGINS = {"tight": 0, "snug": 3, "generous": 10}  # mask margin around the object, px
SUPER = 4  # objects are drawn at 4x and averaged down: soft, anti-aliased edges

# scikit-image samples that are public domain or CC0 (checked in their docstrings).
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "brick", "grass", "gravel")


@dataclass(frozen=True)
class Scene:
    name: str  # e.g. "landscape/generous"
    kind: str  # "generated" or "photo"
    truth: np.ndarray  # uint8 [H, W, 3]: the clean background
    image: np.ndarray  # uint8 [H, W, 3]: the background with objects pasted on
    mask: np.ndarray  # bool [H, W]: what to remove


def smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float,
                 octaves: int = 4) -> np.ndarray:
    """Fractal value noise in 0..1: `octaves` layers of bicubic-upscaled random grids."""
    import cv2

    total = np.zeros((h, w), np.float32)
    weight = 0.0
    for o in range(octaves):
        s = max(1.0, scale / 2**o)
        small = rng.random((int(h / s) + 3, int(w / s) + 3)).astype(np.float32)
        big = cv2.resize(small, (int(small.shape[1] * s), int(small.shape[0] * s)),
                         interpolation=cv2.INTER_CUBIC)
        total += big[:h, :w] / 2**o
        weight += 1 / 2**o
    total /= weight
    return (total - total.min()) / max(float(np.ptp(total)), 1e-6)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return y, x


def landscape(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    y, x = _grid(h, w)
    sky = np.stack([90 + 80 * y / h, 150 + 60 * y / h, 235 - 25 * y / h], -1)
    clouds = np.clip(smooth_noise(rng, h, w, w / 6) * 1.8 - 0.9, 0, 1)[..., None]
    img = sky * (1 - clouds) + 245 * clouds
    ridge = (0.55 * h + 0.06 * h * np.sin(x[0] / (w / 6)) + 0.03 * h * np.sin(x[0] / (w / 17) + 1)
             + 0.05 * h * smooth_noise(rng, 1, w, w / 8)[0])
    t = smooth_noise(rng, h, w, 24)[..., None]
    green = np.stack([50 + 45 * t[..., 0], 100 + 55 * t[..., 0], 45 + 25 * t[..., 0]], -1)
    img = np.where((y > ridge[None, :])[..., None], green, img)
    return _finish(img, rng, 2.5)


def ground(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Gravel-like texture: fine and coarse noise in earth tones."""
    fine, coarse = smooth_noise(rng, h, w, 5, 3), smooth_noise(rng, h, w, 60)
    t = 0.6 * fine + 0.4 * coarse
    img = np.stack([95 + 90 * t, 80 + 75 * t, 60 + 55 * t], -1)
    return _finish(img, rng, 4.0)


def bricks(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Bricks of 48x20 px with mortar lines: straight structure a fill should continue."""
    y, x = _grid(h, w)
    row = (y // 22).astype(int)
    shifted = x + (row % 2) * 26
    mortar = ((y % 22) < 3) | ((shifted % 52) < 3)
    tone = smooth_noise(rng, h, w, 30)
    brick = np.stack([140 + 50 * tone, 70 + 25 * tone, 50 + 15 * tone], -1)
    img = np.where(mortar[..., None], np.array([185, 180, 170], np.float32), brick)
    return _finish(img, rng, 3.0)


def facade(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A plain wall with a grid of dark windows: flat areas and sharp straight edges."""
    y, x = _grid(h, w)
    wall = np.stack([200 - 20 * y / h, 190 - 25 * y / h, 170 - 30 * y / h], -1)
    win = ((x % 120) > 40) & ((x % 120) < 90) & ((y % 140) > 30) & ((y % 140) < 110)
    img = np.where(win[..., None], np.array([50, 60, 75], np.float32), wall)
    return _finish(img, rng, 2.0)


def gradient(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """The test suite's kind of scene: a colour gradient with sensor-like noise."""
    y, x = _grid(h, w)
    img = np.stack([60 + 80 * x / w, 120 + 60 * y / h, 160 - 40 * x / w], -1)
    return _finish(img, rng, 4.0)


def _finish(img: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    import cv2

    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 0.6)  # a lens is never perfect
    img += rng.normal(0, noise, img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


BACKGROUNDS = {"landscape": landscape, "ground": ground, "bricks": bricks, "facade": facade,
               "gradient": gradient}


# Objects: each draws itself at SUPER x into a float coverage canvas (0..1) and says its
# colour; a pole and wires go across, signs and balls sit somewhere.
def _disc(canvas, s, cx, cy, r):
    import cv2

    cv2.circle(canvas, (int(cx * s), int(cy * s)), int(r * s), 1.0, -1, cv2.LINE_AA)


def _box(canvas, s, x0, y0, x1, y1):
    import cv2

    cv2.rectangle(canvas, (int(x0 * s), int(y0 * s)), (int(x1 * s), int(y1 * s)), 1.0, -1)


def _wire(canvas, s, points, width):
    import cv2

    pts = (np.asarray(points, np.float32) * s).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [pts], False, 1.0, max(1, int(round(width * s))), cv2.LINE_AA)


def objects(h: int, w: int, rng: np.random.Generator,
            supersample: int = SUPER) -> list[tuple[np.ndarray, np.ndarray]]:
    """(coverage [H, W] float 0..1, colour [3]) of a few objects spread over the scene."""
    import cv2

    out = []

    def add(draw, colour, *args):
        canvas = np.zeros((h * supersample, w * supersample), np.float32)
        draw(canvas, supersample, *args)
        cover = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)
        out.append((np.clip(cover, 0, 1), np.asarray(colour, np.float32)))

    u = min(h, w)
    add(_disc, (235, 235, 230), w * 0.22, h * 0.28, u * 0.06)  # a ball or balloon
    add(_box, (220, 30, 30), w * 0.60, h * 0.48, w * 0.60 + u * 0.16, h * 0.48 + u * 0.10)  # sign
    x = w * 0.80
    add(_box, (60, 45, 35), x, h * 0.18, x + max(4, u * 0.025), h * 0.95)  # a pole, top to bottom
    y0 = h * rng.uniform(0.10, 0.25)
    curve = [(t * w, y0 + h * 0.08 * np.sin(np.pi * t) + h * 0.05 * t)
             for t in np.linspace(-0.02, 1.02, 40)]
    add(_wire, (25, 25, 25), curve, 2.0)  # a sagging wire across
    add(_wire, (30, 30, 30), [(w * 0.05, h * 0.92), (w * 0.45, h * 0.62)], 4.0)  # a cable
    return out


def paste(background: np.ndarray, items, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """Background with the objects composited (shaded a little), and each one's coverage."""
    img = background.astype(np.float32)
    h, w = img.shape[:2]
    shade = 0.85 + 0.3 * smooth_noise(rng, h, w, 40)[..., None]  # objects are not flat
    for cover, colour in items:
        a = cover[..., None]
        img = img * (1 - a) + np.clip(colour * shade, 0, 255) * a
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), [c for c, _ in items]


def masks_for(covers: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The union of the objects' masks at each margin of MARGINS."""
    import cv2

    touched = np.zeros(covers[0].shape, bool)
    for c in covers:
        touched |= c > 0.02
    out = {}
    for name, margin in MARGINS.items():
        if margin == 0:
            out[name] = touched.copy()
            continue
        dist = cv2.distanceTransform((~touched).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        out[name] = dist <= margin
    return out


def generated_scenes(width: int = 960, height: int = 640, seed: int = 0) -> list[Scene]:
    scenes = []
    for i, (name, make) in enumerate(BACKGROUNDS.items()):
        rng = np.random.default_rng(seed * 100 + i)
        truth = make(height, width, rng)
        image, covers = paste(truth, objects(height, width, rng), rng)
        for margin, mask in masks_for(covers).items():
            scenes.append(Scene(f"{name}/{margin}", "generated", truth, image, mask))
    return scenes


def photo_scenes(seed: int = 0) -> list[Scene]:
    """The scikit-image samples with objects pasted on; [] (with a warning) without it."""
    try:
        import skimage.data
    except ImportError:
        log.warning("scikit-image is not installed (pip install -e '.[bench]'): "
                    "real photographs are left out")
        return []
    scenes = []
    for i, name in enumerate(PHOTOS):
        truth = np.asarray(getattr(skimage.data, name)())
        if truth.ndim == 2:
            truth = np.repeat(truth[..., None], 3, axis=2)
        truth = np.ascontiguousarray(truth[..., :3]).astype(np.uint8)
        rng = np.random.default_rng(seed * 100 + 50 + i)
        h, w = truth.shape[:2]
        image, covers = paste(truth, objects(h, w, rng), rng)
        for margin, mask in masks_for(covers).items():
            scenes.append(Scene(f"{name}/{margin}", "photo", truth, image, mask))
    return scenes


def timing_scene(width: int = 4000, height: int = 3000, seed: int = 7) -> Scene:
    """A 12 MP landscape with the usual objects, generously masked: time per megapixel."""
    rng = np.random.default_rng(seed)
    truth = landscape(height, width, rng)
    # Drawn at 1x (OpenCV's anti-aliased lines still soften the edges): 4x would be 192 MP.
    image, covers = paste(truth, objects(height, width, rng, supersample=1), rng)
    return Scene("landscape 12 MP/snug", "generated", truth, image, masks_for(covers)["snug"])
