"""Regenerate resources/sample.jpg: a synthetic landscape with things to remove.

    python resources/make_sample.py

A made-up scene (no third-party photo rights): sky with clouds, hills, a lake, and
objects a person would want gone: a power pole with wires, a sign, a dark blob of litter.
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

W, H = 1600, 1067
rng = np.random.default_rng(2026)


def smooth_noise(scale: int, octaves: int = 4) -> np.ndarray:
    total = np.zeros((H, W), np.float32)
    for o in range(octaves):
        s = max(2, scale >> o)
        small = rng.random((H // s + 2, W // s + 2)).astype(np.float32)
        big = np.asarray(Image.fromarray(small).resize((W + 2 * s, H + 2 * s), Image.BICUBIC))
        total += big[s : s + H, s : s + W] / (2**o)
    return total / total.max()


y, x = np.mgrid[0:H, 0:W].astype(np.float32)
sky = np.stack([90 + 80 * y / H, 150 + 60 * y / H, 230 - 20 * y / H], -1)
clouds = np.clip(smooth_noise(220) * 1.6 - 0.8, 0, 1)[..., None]
img = sky * (1 - clouds) + 245 * clouds

ridge = 520 + 60 * np.sin(x[0] / 260) + 35 * np.sin(x[0] / 90 + 1) + 40 * smooth_noise(120)[0]
hills = y > ridge[None, :]
texture = smooth_noise(40)[..., None]
t = texture[..., 0]
green = np.stack([55 + 40 * t, 105 + 50 * t, 50 + 20 * t], -1)
img = np.where(hills[..., None], green, img)

lake = (y > 780) & (y < 900 + 30 * np.sin(x / 200))
water = np.stack([60 + 30 * t, 110 + 30 * t, 160 + 40 * t], -1)
img = np.where(lake[..., None], water, img)
img += rng.normal(0, 3.0, img.shape)
photo = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))

d = ImageDraw.Draw(photo)
d.rectangle([1120, 300, 1134, 905], fill=(70, 55, 45))  # power pole
d.rectangle([1085, 330, 1170, 342], fill=(70, 55, 45))  # cross arm
for y0, y1 in ((338, 410), (334, 395)):
    d.line([(0, y1 + 40), (1090, y0)], fill=(30, 30, 30), width=3)  # wires
    d.line([(1165, y0), (W, y1 + 10)], fill=(30, 30, 30), width=3)
d.rectangle([330, 640, 470, 720], fill=(230, 200, 40), outline=(60, 60, 60), width=4)  # sign
d.rectangle([396, 720, 404, 820], fill=(90, 90, 90))
d.ellipse([760, 930, 860, 980], fill=(35, 30, 28))  # litter on the shore
photo = photo.filter(ImageFilter.GaussianBlur(0.6))
out = Path(__file__).with_name("sample.jpg")
photo.save(out, quality=88, dpi=(240, 240))
print(out, out.stat().st_size)  # noqa: T201 - a script
