"""Engine speed: seconds per CFG step (batch 2 at 512x512) and per 512 image at 20 steps,
with peak RSS, for every available device and dtype. Full-size deterministic weights.

    python -m bench.bench_engine                 # every device x dtype available here
    python -m bench.bench_engine --only cpu:float32 --image-runs 1

Each configuration runs in its own process so that its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench.common import full_weights, machine, peak_rss_gib, timed, write_result


def configurations() -> list[str]:
    import torch

    configs = ["cpu:float32", "cpu:bfloat16"]
    if torch.cuda.is_available():
        configs += ["cuda:float32", "cuda:bfloat16", "cuda:float16"]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        configs += ["mps:float32", "mps:float16"]
    return configs


def run_one(config: str, step_repeats: int, image_runs: int) -> dict:
    import numpy as np
    import torch

    from engine.device import Placement
    from engine.inpaint import MoebiusInpainter
    from engine.sampler import SamplerSettings

    device, dtype = config.split(":")
    unet, vae_dir = full_weights()
    t0 = time.perf_counter()
    inp = MoebiusInpainter.load(unet, vae_dir, Placement(device, dtype))
    load_s = time.perf_counter() - t0
    sync = torch.cuda.synchronize if device == "cuda" else None

    g = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 9, 64, 64, generator=g).to(device, getattr(torch, dtype))
    t = torch.tensor([500], device=device)
    ids = inp.model.cfg_ids(1, device)

    def step():
        with torch.inference_mode():
            inp.model(sample, t, ids)

    step_stats = timed(step, step_repeats, warmup=1, sync=sync)

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, 512, 512, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:512, :512]
    mask = ((yy - 256) ** 2 + (xx - 256) ** 2 < 100**2)[None]

    def whole_image():
        gen = inp.inpaint(image, mask, SamplerSettings(steps=20), seed=0)
        for _ in gen:
            pass

    image_stats = timed(whole_image, image_runs, warmup=0, sync=sync) if image_runs else None
    return {
        "config": config,
        "load_s": load_s,
        "cfg_step": step_stats,
        "image_512_20_steps": image_stats,
        "peak_rss_gib": peak_rss_gib(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", nargs="*", help="configurations like cpu:float32 cuda:bfloat16")
    ap.add_argument("--step-repeats", type=int, default=3)
    ap.add_argument("--image-runs", type=int, default=1)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.one:
        print(json.dumps(run_one(args.one, args.step_repeats, args.image_runs)))
        return

    full_weights()  # make them once, outside the timed children
    results = []
    for config in args.only or configurations():
        cmd = [
            sys.executable,
            "-m",
            "bench.bench_engine",
            "--one",
            config,
            "--step-repeats",
            str(args.step_repeats),
            "--image-runs",
            str(args.image_runs),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{config}: failed\n{out.stderr[-2000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        img = r["image_512_20_steps"]
        print(
            f"{config:16s} step {r['cfg_step']['median_s']:7.3f} s   "
            f"image {img['median_s'] if img else float('nan'):7.1f} s   "
            f"load {r['load_s']:5.1f} s   peak RSS {r['peak_rss_gib']:.2f} GiB",
            flush=True,
        )
    path = write_result("engine", {"machine": machine(), "results": results})
    print(f"machine: {machine()}\nwritten: {path}")


if __name__ == "__main__":
    main()
