"""The cost of a removal outside the model, on a 24 MP photo: region planning, cutting
and resizing context windows, compositing at full resolution, and file I/O.

    python -m bench.bench_overhead [--regions 3]

The model is replaced by an engine that returns its input at once, so what is timed is
everything Moebius Studio adds around the network.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import machine, write_result


class NullEngine:
    """Engine interface, no work: isolates the overhead around the model."""

    name = "null"
    generative = True  # composited like Moebius: scaled back, edge band inside the mask

    def working_size(self, window_size: int) -> int:
        return 512

    def fill(self, image, hole, seed, cancel, target=None):
        yield (1, 1)
        return image

    def describe(self) -> str:
        return "null"


class NullHost:
    def is_loaded(self, job) -> bool:
        return True

    def get(self, job):
        return NullEngine()


def photo(width: int, height: int, regions: int):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([(x * 255 // width), (y * 255 // height), ((x + y) * 255 // (width + height))],
                   -1).astype(np.uint8)
    img = np.clip(img.astype(np.int16) + rng.integers(-6, 7, img.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((height, width), bool)
    for i in range(regions):  # objects of 400-800 px spread over the photo
        cx, cy = width * (i + 1) // (regions + 1), height // 2 + (i % 2) * height // 5
        r = 200 + 100 * (i % 3)
        mask[cy - r : cy + r, cx - r // 2 : cx + r // 2] = True
    return img, mask


def main() -> None:
    from engine.imageio.files import load_image, save_image
    from engine.removal.job import RemovalJob
    from engine.removal.run import run_removal
    from engine.removal.settings import RemovalSettings

    ap = argparse.ArgumentParser()
    ap.add_argument("--regions", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    img, mask = photo(6000, 4000, args.regions)

    removal = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        job = RemovalJob(img, mask, RemovalSettings(engine="moebius"))
        events = list(run_removal(job, None, NullHost()))
        removal.append(time.perf_counter() - t0)
        assert type(events[-1]).__name__ == "Done", events[-1]
    result = events[-1].result

    tmp = Path(tempfile.mkdtemp())
    from PIL import Image

    src = tmp / "photo.jpg"
    Image.fromarray(img).save(src, quality=90)
    loads, saves = [], []
    for i in range(args.repeats):
        t0 = time.perf_counter()
        loaded = load_image(src)
        loads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        save_image(tmp / f"out{i}.jpg", loaded, result.apply_to(loaded.pixels))
        saves.append(time.perf_counter() - t0)

    row = {
        "photo": "6000x4000 RGB", "regions": result.regions,
        "plan_resize_composite_s": statistics.median(removal),
        "jpeg_load_s": statistics.median(loads), "jpeg_save_s": statistics.median(saves),
    }
    print(f"{machine()}\n24 MP, {result.regions} regions: planning + windows + compositing "
          f"{row['plan_resize_composite_s']:.3f} s; JPEG load {row['jpeg_load_s']:.3f} s, "
          f"save {row['jpeg_save_s']:.3f} s")
    write_result("overhead", {"machine": machine(), **row})


if __name__ == "__main__":
    main()
