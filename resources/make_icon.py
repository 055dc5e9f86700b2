"""Regenerate the app icon: resources/icon.png (512 px), icon.ico (Windows), icon.icns (macOS).

    python resources/make_icon.py

A Möbius strip (a band with one half twist) on a dark rounded square, drawn with Pillow
from its parametric surface: the band is cut into small quads, shaded by how much each
faces the light, coloured along its length, and painted back to front at 4x size, then
scaled down for smooth edges. No third-party artwork.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SIZE = 512
TILT, TURN = 60.0, 90.0  # degrees: how the ring is seen
SUPER = 4  # drawn at 4x, then downsampled: anti-aliasing without a vector library
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]

BACKGROUND_TOP = np.array([38, 44, 66], float)
BACKGROUND_BOTTOM = np.array([18, 20, 32], float)
STRIP_START = np.array([64, 214, 196], float)  # teal
STRIP_END = np.array([156, 110, 255], float)  # violet


def strip_quads(n_u: int = 360, n_v: int = 12):
    """Quads of the band: (depth, polygon in pixels, colour), unsorted."""
    u = np.linspace(0.0, 2.0 * math.pi, n_u + 1)
    v = np.linspace(-0.5, 0.5, n_v + 1)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    radius = 1.0 + vv * np.cos(uu / 2.0)
    pts = np.stack([radius * np.cos(uu), radius * np.sin(uu), vv * np.sin(uu / 2.0)], -1)
    # Tilt the ring towards the viewer so the twist is visible, then turn it a little.
    tilt, turn = math.radians(TILT), math.radians(TURN)
    rx = np.array([[1, 0, 0], [0, math.cos(tilt), -math.sin(tilt)],
                   [0, math.sin(tilt), math.cos(tilt)]])
    rz = np.array([[math.cos(turn), -math.sin(turn), 0], [math.sin(turn), math.cos(turn), 0],
                   [0, 0, 1]])
    pts = pts @ (rx @ rz).T
    flat = pts[..., :2].reshape(-1, 2)
    low, high = flat.min(0), flat.max(0)
    scale = SIZE * SUPER * 0.74 / float(max(high - low))  # the band fills 74 % of the icon
    mid = (low + high) / 2.0
    centre = SIZE * SUPER / 2.0
    xy = np.stack([centre + scale * (pts[..., 0] - mid[0]),
                   centre - scale * (pts[..., 1] - mid[1])], -1)
    light = np.array([-0.35, 0.55, 0.76])
    light /= np.linalg.norm(light)
    quads = []
    for i in range(n_u):
        t = 0.5 - 0.5 * math.cos(2.0 * math.pi * i / n_u)  # 0 -> 1 -> 0 around the band
        base = STRIP_START * (1.0 - t) + STRIP_END * t
        for j in range(n_v):
            corners = [pts[i, j], pts[i + 1, j], pts[i + 1, j + 1], pts[i, j + 1]]
            normal = np.cross(corners[1] - corners[0], corners[3] - corners[0])
            length = np.linalg.norm(normal)
            facing = abs(float(normal @ light)) / length if length else 0.0
            shade = 0.45 + 0.55 * facing
            colour = tuple(int(c) for c in np.clip(base * shade + 18 * facing**8, 0, 255))
            depth = float(np.mean([c[2] for c in corners]))
            polygon = [tuple(xy[a, b]) for a, b in ((i, j), (i + 1, j), (i + 1, j + 1),
                                                    (i, j + 1))]
            quads.append((depth, polygon, colour))
    return quads


def draw() -> Image.Image:
    big = SIZE * SUPER
    rows = np.linspace(0.0, 1.0, big)[:, None, None]
    gradient = BACKGROUND_TOP * (1.0 - rows) + BACKGROUND_BOTTOM * rows
    background = Image.fromarray(np.broadcast_to(gradient, (big, big, 3)).astype(np.uint8))
    mask = Image.new("L", (big, big), 0)
    margin = int(big * 0.04)
    ImageDraw.Draw(mask).rounded_rectangle([margin, margin, big - margin, big - margin],
                                           radius=int(big * 0.2), fill=255)
    canvas = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    canvas.paste(background, (0, 0), mask)
    pen = ImageDraw.Draw(canvas)
    for _, polygon, colour in sorted(strip_quads(), key=lambda q: q[0]):  # far ones first
        pen.polygon(polygon, fill=colour, outline=colour)
    return canvas.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def main() -> None:
    icon = draw()
    icon.save(HERE / "icon.png", optimize=True)
    icon.save(HERE / "icon.ico", sizes=ICO_SIZES)
    icon.save(HERE / "icon.icns")  # Pillow writes the sizes the icns format needs
    for name in ("icon.png", "icon.ico", "icon.icns"):
        print(HERE / name, (HERE / name).stat().st_size)  # noqa: T201 - a script


if __name__ == "__main__":
    main()
