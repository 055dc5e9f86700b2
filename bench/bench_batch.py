"""Batch cleaning throughput: images per minute over a folder of 512×512 photos and one of
12 MP photos (4000×3000), with the quick engine and with Moebius at full size
(deterministic full-size weights from bench.common), per device. Not a test.

    python -m bench.bench_batch                                   # CPU (+ CUDA if present)
    python -m bench.bench_batch --moebius-images 1 --steps 4      # a quick look on a CPU
    python -m bench.bench_batch --devices cuda --images 8 --moebius-images 8

Each run goes through `engine.removal.batch.run_batch` exactly as the CLI does (JPEG in, JPEG out
with metadata, one shared mask scaled to each photo, one EngineHost per device so the
network loads once). Model loading is timed separately and left out of images/minute.
Results: a table on stdout and bench/results/batch.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, full_weights, machine, peak_rss_gib, write_result

RESULTS = ROOT / "bench" / "results"
SIZES = {"512": (512, 512), "12mp": (4000, 3000)}


def make_folder(root: Path, size: tuple[int, int], count: int) -> tuple[Path, Path]:
    """`count` JPEG photos (smooth scene + noise + a red object) and one shared mask."""
    from PIL import Image

    w, h = size
    src = root / "in"
    src.mkdir(parents=True)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([60 + 80 * x / w, 120 + 60 * y / h, 160 - 40 * x / w], axis=-1)
    box = (int(w * 0.45), int(h * 0.42), int(w * 0.55), int(h * 0.58))  # ~1.6% of the area
    for i in range(count):
        rng = np.random.default_rng(i)
        img = np.clip(base + rng.normal(0, 4, base.shape).astype(np.float32), 0, 255)
        img = img.astype(np.uint8)
        img[box[1] : box[3], box[0] : box[2]] = (230, 20, 20)
        Image.fromarray(img).save(src / f"photo_{i:03d}.jpg", quality=92)
    mask = np.zeros((h, w), np.uint8)
    mask[box[1] - 4 : box[3] + 4, box[0] - 4 : box[2] + 4] = 255
    mask_path = root / "mask.png"
    Image.fromarray(mask).save(mask_path)
    return src, mask_path


def make_host():
    """One host per device; its loader builds the full-size network from bench weights."""
    from engine.removal.run import EngineHost
    from engine.sampling.inpainter import MoebiusInpainter

    def loader(variant, placement):
        unet, vae_dir = full_weights()  # made once into .cache/bench/, only when needed
        return MoebiusInpainter.load(unet, vae_dir, placement)

    return EngineHost(loader=loader)


def load_seconds(host, settings) -> float:
    t0 = time.perf_counter()
    host.get(settings)
    return time.perf_counter() - t0


def run_one(host, device: str, engine: str, size_name: str, count: int, args) -> dict:
    from engine.events import Done, Failed
    from engine.removal.batch import BatchJob, run_batch
    from engine.removal.settings import RemovalSettings
    from engine.sampling.device import choose

    settings = RemovalSettings(engine=engine, steps=args.steps, device=device,
                               quality=args.quality, seed=0)
    with tempfile.TemporaryDirectory(prefix="moebius-bench-batch-") as tmp:
        src, mask = make_folder(Path(tmp), SIZES[size_name], count)
        job = BatchJob(src, Path(tmp) / "out", shared_mask=mask, settings=settings)
        t0 = time.perf_counter()
        events = list(run_batch(job, None, host))
        seconds = time.perf_counter() - t0
    last = events[-1]
    if isinstance(last, Failed) or not isinstance(last, Done):
        raise SystemExit(f"batch failed: {getattr(last, 'message', last)}")
    summary = last.result
    if summary.count("done") != count:
        raise SystemExit(f"batch incomplete: {summary.text()}")
    per_image = [o.seconds for o in summary.outcomes]
    return {
        "device": device, "engine": engine, "size": size_name, "images": count,
        "steps": args.steps if engine == "moebius" else None, "quality": args.quality,
        "placement": choose(device, args.quality).describe() if engine == "moebius" else None,
        "seconds": seconds, "s_per_image": seconds / count,
        "per_image_s": per_image, "images_per_min": 60 * count / seconds,
    }  # fmt: skip


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=4, help="quick-engine photos per size")
    ap.add_argument("--moebius-images", type=int, default=1, help="Moebius photos per size")
    ap.add_argument("--steps", type=int, default=20, help="Moebius sampling steps")
    ap.add_argument("--quality", default="exact", choices=("exact", "fast"))
    ap.add_argument("--devices", nargs="*", help="default: cpu, and cuda when available")
    ap.add_argument("--engines", nargs="*", default=["quick", "moebius"])
    ap.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    args = ap.parse_args()
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    args.devices = devices

    rows, loads = [], {}
    for device in devices:
        host = make_host()
        for engine in args.engines:
            count = args.images if engine == "quick" else args.moebius_images
            if count <= 0:
                continue
            if engine == "moebius":
                from engine.removal.settings import RemovalSettings

                loads[device] = load_seconds(host, RemovalSettings(device=device,
                                                                   quality=args.quality))
            for size_name in args.sizes:
                row = run_one(host, device, engine, size_name, count, args)
                rows.append(row)
                print(f"{device:5} {engine:7} {size_name:5} {count:3} images  "
                      f"{row['s_per_image']:8.2f} s/image  {row['images_per_min']:8.2f} /min",
                      flush=True)
        host = None  # free this device's network before the next

    print(f"\n{machine()}")
    print("| device | engine | photos | images | s / image | images / min |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        what = r["engine"] + (f" ({r['steps']} steps, {r['placement']})" if r["steps"] else "")
        print(f"| {r['device']} | {what} | {r['size']} | {r['images']} | "
              f"{r['s_per_image']:.2f} | {r['images_per_min']:.2f} |")
    for device, s in loads.items():
        print(f"model load on {device}: {s:.1f} s (once per run, not in the table)")
    print(f"peak RSS {peak_rss_gib():.2f} GiB")
    run = {"machine": machine(), "args": vars(args), "rows": rows, "load_s": loads,
           "peak_rss_gib": peak_rss_gib()}
    print(f"wrote {write_result('batch', {'runs': merged_runs(run)})}")


def merged_runs(run: dict) -> list[dict]:
    """Earlier runs from other machines stay in the file (CPU and GPU side by side); a
    run on the same machine and devices replaces its predecessor."""
    try:
        old = json.loads((RESULTS / "batch.json").read_text()).get("runs", [])
    except (OSError, ValueError, AttributeError):
        old = []
    def key(r):
        a = r.get("args", {})
        return r.get("machine"), a.get("devices"), a.get("quality"), a.get("engines")

    return [r for r in old if key(r) != key(run)] + [run]


if __name__ == "__main__":
    main()
