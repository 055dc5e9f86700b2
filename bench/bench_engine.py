"""Engine speed: seconds per CFG step (batch 2 at 512x512) and per 512 image at 20 steps,
with peak RSS, for each device and mode. Full-size deterministic weights.

Modes:
    plain   our network computed literally (bench/plain_model.py), NCHW, no folding,
            default allocator, fp32: the baseline
    exact   what the app runs in "Exact" quality: fp32, batch norms folded,
            channels-last, tuned allocator (CPU), CUDA graphs without TF32 (GPU)
    fast    "Fast" quality: bf16 weights and activations (and VAE on the CPU), norms and
            softmax accumulated in fp32
    fast16  GPU only: fp16 instead of bf16
    eager   GPU only: bf16 without CUDA graphs (shows what the graphs buy)
    MODE-3x3  MODE without the sub-pixel upsampling (e.g. cuda:fast16-3x3)

    python -m bench.bench_engine                          # every mode available here
    python -m bench.bench_engine --only cpu:exact cpu:plain --image-runs 1

Each configuration runs in its own process so that its peak memory is its own. Peak RSS is
reported for the whole process and, on Linux, for the removals alone (network loaded).
Levers tried one by one: bench/bench_levers.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench.common import (
    current_peak_rss_gib,
    full_weights,
    machine,
    peak_rss_gib,
    restart_peak_rss,
    timed,
    write_result,
)


def configurations() -> list[str]:
    import torch

    configs = ["cpu:plain", "cpu:exact", "cpu:fast"]
    if torch.cuda.is_available():
        configs += ["cuda:plain", "cuda:exact", "cuda:fast", "cuda:fast16", "cuda:eager"]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        configs += ["mps:exact", "mps:fast"]
    return configs


def build(device: str, mode: str):
    """A MoebiusInpainter set up the way `mode` describes."""
    import torch

    from engine.net.checkpoint import load_model
    from engine.net.vae import Vae
    from engine.sampling.device import Placement
    from engine.sampling.inpainter import MoebiusInpainter

    unet, vae_dir = full_weights()
    base_mode = mode.removesuffix("-3x3")
    dtype = {"plain": "float32", "exact": "float32", "fast16": "float16"}.get(base_mode,
                                                                               "bfloat16")
    placement = Placement(device, dtype)
    if mode.endswith("-3x3"):  # without the sub-pixel upsampling, to compare on a GPU
        from engine.net.fold import fold_batch_norms

        inp = MoebiusInpainter.load(unet, vae_dir, placement)
        model = fold_batch_norms(load_model(unet)).to(device, placement.torch_dtype)
        return MoebiusInpainter(model, inp.vae, placement)
    if mode != "plain":
        return MoebiusInpainter.load(unet, vae_dir, placement, cuda_graphs=mode != "eager")
    from bench.plain_model import make_plain

    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    model = make_plain(load_model(unet)).to(device)
    vae = Vae.load(vae_dir, device, torch.float32)
    plain = MoebiusInpainter(model, vae, placement, cuda_graphs=False)
    plain.lean_vae = False  # the VAE as diffusers runs it
    return plain


def run_one(config: str, step_repeats: int, image_runs: int) -> dict:
    import numpy as np
    import torch

    from engine.sampling.sampler import SamplerSettings

    device, mode = config.split(":")
    full_weights()
    t0 = time.perf_counter()
    inp = build(device, mode)
    load_s = time.perf_counter() - t0
    sync = torch.cuda.synchronize if device == "cuda" else None
    dtype = next(inp.model.parameters()).dtype

    g = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 9, 64, 64, generator=g).to(device, dtype)
    t = torch.tensor([500], device=device)
    ids = inp.model.cfg_ids(1, device)

    def step():
        with torch.inference_mode():
            inp.forward(sample, t, ids)

    step_stats = timed(step, step_repeats, warmup=2 if device == "cuda" else 1, sync=sync)

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, 512, 512, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:512, :512]
    mask = ((yy - 256) ** 2 + (xx - 256) ** 2 < 100**2)[None]

    def whole_image():
        inp.encodings.clear()  # a new photo each time: Try again would skip the encoder
        for _ in inp.inpaint(image, mask, SamplerSettings(steps=20), seed=0):
            pass

    warm = 1 if device == "cuda" else 0
    load_peak = peak_rss_gib()
    restart_peak_rss()  # from here: what a removal itself needs, the network loaded
    image_stats = timed(whole_image, image_runs, warmup=warm, sync=sync) if image_runs else None
    gpu_peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    return {
        "config": config,
        "dtype": str(dtype).removeprefix("torch."),
        "load_s": load_s,
        "cfg_step": step_stats,
        "image_512_20_steps": image_stats,
        "peak_rss_gib": peak_rss_gib(),  # the whole process, loading included
        "load_peak_rss_gib": load_peak,  # loading and the step benchmark
        "removal_peak_rss_gib": current_peak_rss_gib() if image_runs else None,
        "gpu_peak_gib": gpu_peak,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", nargs="*", help="configurations like cpu:exact cuda:fast")
    ap.add_argument("--step-repeats", type=int, default=3)
    ap.add_argument("--image-runs", type=int, default=1)
    ap.add_argument("--name", default="engine", help="results file bench/results/NAME.json")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.one:
        print(json.dumps(run_one(args.one, args.step_repeats, args.image_runs)))
        return

    full_weights()  # make them once, outside the timed children
    results = []
    for config in args.only or configurations():
        cmd = [sys.executable, "-m", "bench.bench_engine", "--one", config,
               "--step-repeats", str(args.step_repeats), "--image-runs", str(args.image_runs)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{config}: failed\n{out.stderr[-2000:]}", flush=True)
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        img = r["image_512_20_steps"]
        gpu = f"  GPU peak {r['gpu_peak_gib']:.2f} GiB" if r["gpu_peak_gib"] else ""
        removal = r["removal_peak_rss_gib"]
        print(f"{config:14s} {r['dtype']:9s} step {r['cfg_step']['median_s'] * 1000:9.1f} ms  "
              f"image {img['median_s'] if img else float('nan'):7.2f} s  "
              f"load {r['load_s']:5.1f} s  peak RSS {r['peak_rss_gib']:.2f} GiB "
              f"(loading {r['load_peak_rss_gib']:.2f}, removal "
              f"{removal if removal is not None else float('nan'):.2f}){gpu}", flush=True)
    path = write_result(args.name, {"machine": machine(), "results": results})
    print(f"machine: {machine()}\nwritten: {path}")


if __name__ == "__main__":
    main()
