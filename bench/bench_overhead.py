"""The cost of a removal outside the model, on a 24 MP photo: region planning, cutting
and resizing context windows, compositing at full resolution, and file I/O.

    python -m bench.bench_overhead [--regions 3]

The model is replaced by an engine that returns its input at once, so what is timed is
everything Moebius Studio adds around the network.

JPEG saves are timed both ways on the same photo and removal: keeping the untouched
blocks (the default, `engine.imageio.jpeg_blocks`) and re-encoding the whole picture, for
a baseline and a progressive source, with the block path's stages timed apart.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import machine, write_result
from engine.removal.engines import FillStep


class NullEngine:
    """Engine interface, no work: isolates the overhead around the model."""

    name = "null"
    generative = True  # composited like Moebius: scaled back, edge band inside the mask
    max_batch = 1

    def working_size(self, window_size: int) -> int:
        return 512

    def fill(self, image, hole, seed, cancel, target=None):
        yield FillStep("filling", 0, 1)
        return image

    def fill_batch(self, images, holes, seeds, cancel, targets=None):
        yield FillStep("filling", 0, 1)
        return list(images)

    def describe(self) -> str:
        return "null"


class NullHost:
    def is_loaded(self, job) -> bool:
        return True

    def get(self, job, cancel=None):
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
    loads, saves, whole = [], [], []
    for i in range(args.repeats):
        t0 = time.perf_counter()
        loaded = load_image(src)
        loads.append(time.perf_counter() - t0)
        edited = result.apply_to(loaded.pixels)
        t0 = time.perf_counter()
        saved = save_image(tmp / f"out{i}.jpg", loaded, edited)
        saves.append(time.perf_counter() - t0)
        assert saved.blocks_kept, saved.note
        t0 = time.perf_counter()
        save_image(tmp / f"whole{i}.jpg", loaded, edited, keep_jpeg_blocks=False)
        whole.append(time.perf_counter() - t0)

    row = {
        "photo": "6000x4000 RGB", "regions": result.regions,
        "plan_resize_composite_s": statistics.median(removal),
        "jpeg_load_s": statistics.median(loads),
        "jpeg_save_s": statistics.median(saves),  # blocks kept (the default)
        "jpeg_save_whole_s": statistics.median(whole),  # the whole picture re-encoded
        "jpeg_note": saved.note,
        "jpeg_size_change": (tmp / "out0.jpg").stat().st_size / src.stat().st_size - 1,
        **block_stages(src, edited, tmp, args.repeats),
        **progressive(img, edited, tmp),
    }
    print(f"{machine()}\n24 MP, {result.regions} regions: planning + windows + compositing "
          f"{row['plan_resize_composite_s']:.3f} s; JPEG load {row['jpeg_load_s']:.3f} s")
    print(f"JPEG save keeping blocks {row['jpeg_save_s']:.3f} s ({saved.note}; size "
          f"{100 * row['jpeg_size_change']:+.2f} %), whole re-encode "
          f"{row['jpeg_save_whole_s']:.3f} s")
    print("  block path stages: " + ", ".join(
        f"{k[6:-2]} {v:.3f} s" for k, v in row.items() if k.startswith("stage_")))
    print(f"progressive source: keeping blocks {row['progressive_save_s']:.3f} s, whole "
          f"re-encode {row['progressive_save_whole_s']:.3f} s, size "
          f"{100 * row['progressive_size_change']:+.2f} %")
    write_result("overhead", {"machine": machine(), **row})


def block_stages(src: Path, edited, tmp: Path, repeats: int) -> dict:
    """Where the block path's time goes: finding the change, reading the coefficients
    (jpeglib), writing them (libjpeg-turbo), against Pillow encoding the whole picture."""
    import io

    import jpeglib
    from PIL import Image

    from engine.imageio import jpeg_blocks
    from engine.imageio.files import load_image

    loaded = load_image(src)
    stages: dict[str, list[float]] = {}

    def timed_stage(name, fn):
        t0 = time.perf_counter()
        out = fn()
        stages.setdefault(name, []).append(time.perf_counter() - t0)
        return out

    jpeglib.version.set("turbo210")
    for _ in range(repeats):
        timed_stage("stage_find_change_s", lambda: jpeg_blocks.changed_pixels(loaded.pixels,
                                                                              edited))
        coefs = timed_stage("stage_read_coefficients_s", lambda: _read(jpeglib, src))
        timed_stage("stage_write_coefficients_s", lambda c=coefs: _write(c, tmp))
        timed_stage("stage_pillow_encode_whole_s", lambda: Image.fromarray(edited).save(
            io.BytesIO(), "JPEG", quality=90))
    return {k: statistics.median(v) for k, v in stages.items()}


def _read(jpeglib, src: Path):
    coefs = jpeglib.read_dct(str(src))
    coefs.load()
    return coefs


def _write(coefs, tmp: Path) -> None:
    coefs.markers, coefs.content = [], None  # as engine.imageio.jpeg_blocks writes baseline
    coefs.write_dct(str(tmp / "coefs.jpg"), flags=["-OPTIMIZE_CODING"])


def progressive(img, edited, tmp: Path) -> dict:
    """A progressive source: written back by mozjpeg, which searches for good scans."""
    from PIL import Image

    from engine.imageio.files import load_image, save_image

    src = tmp / "progressive.jpg"
    Image.fromarray(img).save(src, quality=90, progressive=True)
    loaded = load_image(src)
    t0 = time.perf_counter()
    save_image(tmp / "p-out.jpg", loaded, edited)
    kept = time.perf_counter() - t0
    t0 = time.perf_counter()
    save_image(tmp / "p-whole.jpg", loaded, edited, keep_jpeg_blocks=False)
    whole = time.perf_counter() - t0
    return {"progressive_save_s": kept, "progressive_save_whole_s": whole,
            "progressive_size_change": (tmp / "p-out.jpg").stat().st_size
            / src.stat().st_size - 1}


if __name__ == "__main__":
    main()
