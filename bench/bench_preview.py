"""What the live preview adds to each network step on the CPU (target: under 10 ms).

    python -m bench.bench_preview [--repeats 50] [--decode]

Per step a removal with previews turns the scheduler's predicted clean latents (the real
model's size: 4 x 64 x 64 for a 512 px window) into colour with the job's fitted map,
warps them onto a patch over the region's box and wraps that in a Preview event. Timed
here for regions from 100 px to 3000 px on a 24 MP photo, with the once-per-job parts
(fitting the map, the region's alpha) apart. `--decode` also times what the exact picture
would cost instead: one VAE decode of the same latents with the full-size autoencoder
(filled, not trained weights; the cost does not depend on them).
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.common import machine, timed, write_result
from engine.events import Preview, Progress
from engine.removal.preview import PreviewFrame
from engine.removal.regions import Region, Window
from engine.sampling.preview import LatentColour

PHOTO = (6000, 4000)  # 24 MP
REGIONS = (100, 400, 1500, 3000)  # side of the removed object, px


def _region(side: int) -> tuple[Region, np.ndarray]:
    w, h = PHOTO
    x0, y0 = (w - side) // 2, (h - side) // 2
    mask = np.zeros((h, w), bool)
    yy, xx = np.ogrid[:side, :side]
    mask[y0 : y0 + side, x0 : x0 + side] = (xx - side / 2) ** 2 + (yy - side / 2) ** 2 \
        < (side / 2) ** 2  # a disc: alpha has edges
    window = min(2 * side, h)
    return Region((x0, y0, x0 + side, y0 + side),
                  Window(x0 + side // 2 - window // 2, y0 + side // 2 - window // 2,
                         window)), mask


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--decode", action="store_true")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (512, 512, 3)).astype(np.uint8)
    latents = rng.normal(size=(4, 64, 64)).astype(np.float32)
    fit = timed(lambda: LatentColour.fit(latents, pixels), args.repeats)
    colour = LatentColour.fit(latents, pixels)
    x0 = torch.from_numpy(latents[None].copy())  # what the sampler yields, batch of one
    progress = Progress("denoising", 5, 20, 0.3, "Removing…")
    result: dict = {"machine": machine(), "photo": PHOTO,
                    "fit_map_once_per_job_ms": fit["median_s"] * 1e3, "regions": {}}
    for side in REGIONS:
        region, mask = _region(side)
        frame_once = timed(lambda r=region, m=mask: PreviewFrame.of(r, m), 5)
        frame = PreviewFrame.of(region, mask)

        def step(f=frame):
            rgb = colour.rgb(x0.float().cpu().numpy()[0])
            return Preview.of(progress, (f.patch(rgb),))

        per_step = timed(step, args.repeats)
        result["regions"][str(side)] = {
            "per_step_ms": per_step["median_s"] * 1e3,
            "patch": list(frame.alpha.shape),
            "frame_once_per_job_ms": frame_once["median_s"] * 1e3,
        }
        print(f"region {side:4d} px: {per_step['median_s'] * 1e3:6.2f} ms per step "
              f"(patch {frame.alpha.shape[1]}x{frame.alpha.shape[0]}; once per job "
              f"{frame_once['median_s'] * 1e3:.1f} ms)")
    print(f"fitting the map: {fit['median_s'] * 1e3:.2f} ms once per job")
    if args.decode:
        from engine.net.vae import CONFIG_DIR, Vae
        from engine.net.vae_decode import decode_lean
        from engine.net.weight_fill import fill_module_

        vae = Vae.from_config(CONFIG_DIR / "pixelhacker_vae.json")
        fill_module_(vae.model)
        decode = timed(lambda: decode_lean(vae, x0), 2)
        result["exact_decode_ms"] = decode["median_s"] * 1e3
        print(f"exact decode instead: {decode['median_s'] * 1e3:.0f} ms per step")
    print(result["machine"])
    print(write_result("preview", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
