"""Region planning on a 12 MP mask: labelling the mask's parts and merging their windows.

    python -m bench.bench_regions [--repeats 5] [--baseline REV]

Planning runs before the first progress event, so its time is the delay a person sees
after pressing Remove. The hard case is many small specks (a noisy brush, a dusty scan):
thousands of components whose windows all overlap their neighbours. `--baseline REV`
also times `engine/removal/regions.py` as it was at git revision REV, once, on the
3,000-dot case (a before/after; the old version is loaded from a temporary file).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, machine, timed, write_result

WIDTH, HEIGHT = 4000, 3000  # 12 MP


def dots(count: int, side: int = 3, seed: int = 0) -> np.ndarray:
    """`count` isolated side x side dots at seeded random positions."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((HEIGHT, WIDTH), bool)
    xs = rng.integers(0, WIDTH - side, count)
    ys = rng.integers(0, HEIGHT - side, count)
    for x, y in zip(xs, ys, strict=True):
        mask[y : y + side, x : x + side] = True
    return mask


def blobs() -> np.ndarray:
    """A few large objects (discs of 150-400 px radius) far apart: the usual removal."""
    mask = np.zeros((HEIGHT, WIDTH), bool)
    y, x = np.ogrid[:HEIGHT, :WIDTH]
    for cx, cy, r in ((700, 600, 300), (3200, 700, 150), (2000, 2300, 400), (3500, 2600, 200)):
        mask |= (x - cx) ** 2 + (y - cy) ** 2 < r * r
    return mask


# name: (mask, min_size). At the default 512 px the dots' windows chain into one region; at
# 8 px most stay apart, so the sweep and the per-region loop see thousands of windows.
CASES = {
    "3000 dots": (lambda: dots(3000), 512),
    "300 dots": (lambda: dots(300), 512),
    "4 blobs": (blobs, 512),
    "3000 dots, 8 px windows": (lambda: dots(3000), 8),
}


def module_at(rev: str):
    """engine/removal/regions.py as it was at git revision `rev`, imported from a temp file."""
    source = subprocess.run(["git", "show", f"{rev}:engine/removal/regions.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "regions_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("regions_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def main() -> None:
    from engine.removal.regions import component_boxes, plan_regions

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline", metavar="REV", help="also time regions.py at this revision")
    args = ap.parse_args()

    desc = machine()
    print(f"{desc}\n{WIDTH}x{HEIGHT} mask, plan_regions, median of {args.repeats}:")
    rows = {}
    for name, (make, min_size) in CASES.items():
        mask = make()
        t = timed(lambda m=mask, s=min_size: plan_regions(m, s), args.repeats)
        parts = len(component_boxes(mask))
        regions = len(plan_regions(mask, min_size))
        rows[name] = {"min_size": min_size, "components": parts, "regions": regions, **t}
        print(f"  {name:>24}: {t['median_s']:.3f} s ({parts} components -> {regions} regions)")

    if args.baseline:
        old = module_at(args.baseline)
        mask = CASES["3000 dots"][0]()
        t0 = time.perf_counter()
        regions = len(old.plan_regions(mask))
        seconds = time.perf_counter() - t0
        commit = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=ROOT,
                                check=True, capture_output=True, text=True).stdout.strip()
        rows["3000 dots, baseline"] = {"revision": commit, "regions": regions,
                                       "median_s": seconds, "runs_s": [seconds]}
        label = f"3000 dots at {args.baseline}"
        print(f"  {label:>24}: {seconds:.3f} s (one run, {regions} regions)")

    write_result("regions", {"machine": desc, "mask": f"{WIDTH}x{HEIGHT}", "cases": rows})


if __name__ == "__main__":
    main()
