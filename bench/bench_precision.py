"""How far "Fast" quality (bf16/fp16) is from "Exact" (fp32): on the golden full-size
UNet inputs, and on whole removals of a 512 image with the same seed.

    python -m bench.bench_precision [--devices cpu cuda] [--steps 20]

Prints a table and writes bench/results/precision.json.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.common import full_weights, machine, write_result
from engine.events import drain


def unet_deviation(device: str, dtype: str) -> dict:
    import torch
    from safetensors.torch import load_file

    from bench.common import ROOT
    from engine.net.checkpoint import load_model
    from engine.net.fold import fold_batch_norms

    unet, _ = full_weights()
    g = load_file(str(ROOT / "tests" / "fixtures" / "moebius" / "golden_unet_full.safetensors"))
    model = fold_batch_norms(load_model(unet)).to(device, getattr(torch, dtype))
    with torch.inference_mode():
        out = model(g["sample"].to(device, getattr(torch, dtype)), g["timestep"].to(device),
                    g["input_ids"].to(device)).float().cpu()
    ref = g["noise_pred"]
    diff = (out - ref).abs()
    return {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()),
            "ref_std": float(ref.std()), "max_rel": float(diff.max() / ref.abs().max())}


def removal(device: str, dtype: str, steps: int) -> np.ndarray:
    from engine.sampling.device import Placement
    from engine.sampling.inpainter import MoebiusInpainter
    from engine.sampling.sampler import SamplerSettings

    unet, vae = full_weights()
    inp = MoebiusInpainter.load(unet, vae, Placement(device, dtype))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, 512, 512, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:512, :512]
    mask = ((yy - 256) ** 2 + (xx - 256) ** 2 < 100**2)[None]
    return drain(inp.inpaint(image, mask, SamplerSettings(steps=steps), seed=0))[1][0]


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", nargs="*", default=["cpu"] + (["cuda"] if
                    torch.cuda.is_available() else []))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--skip-removal", action="store_true")
    args = ap.parse_args()
    results = []
    for device in args.devices:
        halves = ["bfloat16"] + (["float16"] if device == "cuda" else [])
        exact = None if args.skip_removal else removal(device, "float32", args.steps)
        for dtype in halves:
            row = {"device": device, "dtype": dtype, "unet": unet_deviation(device, dtype)}
            if exact is not None:
                fast = removal(device, dtype, args.steps)
                d = np.abs(fast.astype(np.int16) - exact.astype(np.int16))
                mse = float((d.astype(np.float64) ** 2).mean())
                row["removal"] = {"steps": args.steps, "mean_abs_px": float(d.mean()),
                                  "max_abs_px": int(d.max()),
                                  "psnr_db": 10 * np.log10(255**2 / mse) if mse else None}
            results.append(row)
            print(device, dtype, row, flush=True)
    path = write_result("precision", {"machine": machine(), "results": results})
    print(f"written: {path}")


if __name__ == "__main__":
    main()
