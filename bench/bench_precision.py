"""How far "Fast" quality (bf16/fp16) is from "Exact" (fp32): on the golden full-size
UNet inputs, and on whole removals (same seed) of several 512 px photos and masks: three
crops of resources/sample.jpg (sky and clouds, hills, lake shore) with a round hole, a
box and a thin stroke, and a noise image with a round hole.

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
    from engine.net.fold import prepare_for_inference

    unet, _ = full_weights()
    g = load_file(str(ROOT / "tests" / "fixtures" / "moebius" / "golden_unet_full.safetensors"))
    model = prepare_for_inference(load_model(unet)).to(device, getattr(torch, dtype))
    with torch.inference_mode():
        out = model(g["sample"].to(device, getattr(torch, dtype)), g["timestep"].to(device),
                    g["input_ids"].to(device)).float().cpu()
    ref = g["noise_pred"]
    diff = (out - ref).abs()
    return {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()),
            "ref_std": float(ref.std()), "max_rel": float(diff.max() / ref.abs().max())}


def cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, uint8 [512, 512, 3] photo, bool [512, 512] mask) to remove."""
    from PIL import Image

    from bench.common import ROOT

    sample = np.asarray(Image.open(ROOT / "resources" / "sample.jpg").convert("RGB"))
    yy, xx = np.mgrid[:512, :512]
    round_hole = (yy - 256) ** 2 + (xx - 256) ** 2 < 100**2
    box = (yy > 180) & (yy < 330) & (xx > 150) & (xx < 380)
    stroke = np.abs((yy - 120) - 0.6 * (xx - 60)) < 6  # a 12 px wire across the picture
    noise = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    return [
        ("sample sky, round hole", sample[0:512, 300:812], round_hole),
        ("sample hills, box", sample[400:912, 0:512], box),
        ("sample shore, wire", sample[555:1067, 1000:1512], stroke),
        ("noise, round hole", noise, round_hole),
    ]


def removals(device: str, dtype: str, steps: int, seeds=(0,)) -> list[list[np.ndarray]]:
    """For each seed, the removals of all cases."""
    from engine.sampling.device import Placement
    from engine.sampling.inpainter import MoebiusInpainter
    from engine.sampling.sampler import SamplerSettings

    unet, vae = full_weights()
    inp = MoebiusInpainter.load(unet, vae, Placement(device, dtype))
    settings = SamplerSettings(steps=steps)
    return [[drain(inp.inpaint(image[None], mask[None], settings, seed=seed))[1][0]
             for _, image, mask in cases()] for seed in seeds]


def compare(fast: np.ndarray, exact: np.ndarray, mask: np.ndarray) -> dict:
    d = np.abs(fast.astype(np.int16) - exact.astype(np.int16))
    mse = float((d.astype(np.float64) ** 2).mean())
    hole = d[mask]
    return {"mean_abs_px": float(d.mean()), "max_abs_px": int(d.max()),
            "psnr_db": 10 * np.log10(255**2 / mse) if mse else None,
            "hole_mean_abs_px": float(hole.mean()), "hole_max_abs_px": int(hole.max())}


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", nargs="*", default=["cpu"] + (["cuda"] if
                    torch.cuda.is_available() else []))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--skip-removal", action="store_true")
    ap.add_argument("--seed-spread", action="store_true",
                    help="also compare exact removals with seeds 0 and 1, for scale")
    args = ap.parse_args()
    results = []
    for device in args.devices:
        halves = ["bfloat16"] + (["float16"] if device == "cuda" else [])
        seeds = (0, 1) if args.seed_spread else (0,)
        runs = None if args.skip_removal else removals(device, "float32", args.steps, seeds)
        exact = None if runs is None else runs[0]
        if runs is not None and args.seed_spread:  # for scale: another seed, both exact
            spread = {name: compare(b, a, mask) for (name, _, mask), a, b in
                      zip(cases(), runs[0], runs[1], strict=True)}
            results.append({"device": device, "dtype": "float32, seed 0 vs seed 1",
                            "removals": spread, "removal": _overall(list(spread.values()))})
            print(device, "seed 0 vs 1", results[-1]["removal"], flush=True)
        for dtype in halves:
            row: dict = {"device": device, "dtype": dtype, "unet": unet_deviation(device, dtype)}
            if exact is not None:
                fast = removals(device, dtype, args.steps)[0]
                row["removals"] = {name: compare(f, e, mask) for (name, _, mask), f, e in
                                   zip(cases(), fast, exact, strict=True)}
                row["removal"] = _overall(list(row["removals"].values()))
                row["removal"]["steps"] = args.steps
            results.append(row)
            print(device, dtype, row, flush=True)
    path = write_result("precision", {"machine": machine(), "results": results})
    print(f"written: {path}")


def _overall(rows: list[dict]) -> dict:
    """Over all cases: the worst PSNR and max difference, the mean of the means."""
    psnrs = [r["psnr_db"] for r in rows if r["psnr_db"] is not None]
    return {"psnr_db_min": min(psnrs) if psnrs else None,
            "mean_abs_px": float(np.mean([r["mean_abs_px"] for r in rows])),
            "max_abs_px": max(r["max_abs_px"] for r in rows)}


if __name__ == "__main__":
    main()
