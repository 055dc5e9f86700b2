"""Fill quality against the truth: our engines beside OpenCV's fills, in one run.

    python -m bench.bench_quality [--baseline REV] [--moebius-tiny] [--xphoto] [--no-sheet]

Scenes whose clean background is known (`bench/quality_scenes.py`: generated scenes and
scikit-image's public-domain/CC0 photographs with objects and wires pasted on, each
masked tight, snug and generous). Per engine: the error inside the mask against the truth
(mean absolute, PSNR), the halo (change of the ring 1-3 px outside the mask / its natural
gradient), the seam (step across the mask edge / the truth's) and the time per megapixel
of photo, plus the time on a 12 MP photo. `bench/quality_metrics.py` defines them.

Baselines: OpenCV's Telea and Navier-Stokes on the whole photo at full resolution, radius
1, 3 and 5. `--baseline REV` adds the Quick engine as it was at git revision REV (run from
`git archive` in a subprocess), `--moebius-tiny` the Moebius pipeline with the tests' tiny
untrained network (its error means nothing; its halo and seam are the compositing's),
`--xphoto` OpenCV contrib's FSR fill when `cv2.xphoto` exists (opencv-contrib-python).
Writes bench/results/quality.json and docs/quality-contact-sheet.jpg.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench import quality_metrics as qm
from bench.common import ROOT, machine, write_result
from bench.quality_scenes import MARGINS, Scene, generated_scenes, photo_scenes, timing_scene

Fill = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (photo, mask) -> result


def opencv(flag_name: str, radius: int) -> Fill:
    def fill(image, mask):
        import cv2

        return cv2.inpaint(image, mask.view(np.uint8), radius, getattr(cv2, flag_name))

    return fill


def xphoto_fsr(image, mask):
    import cv2

    out = np.zeros_like(image)
    bgr = np.ascontiguousarray(image[..., ::-1])
    cv2.xphoto.inpaint(bgr, (~mask).astype(np.uint8) * 255, out, cv2.xphoto.INPAINT_FSR_FAST)
    return np.ascontiguousarray(out[..., ::-1])


def pipeline(engine: str, host=None) -> Fill:
    """Our whole removal (planning, windows, fill, compositing) with `engine`."""

    def fill(image, mask):
        from engine.events import Done
        from engine.removal.job import RemovalJob
        from engine.removal.run import run_removal
        from engine.removal.settings import RemovalSettings

        settings = RemovalSettings(engine=engine, steps=2)
        events = list(run_removal(RemovalJob(image, mask, settings), None, host))
        assert isinstance(events[-1], Done), events[-1]
        return events[-1].result.apply_to(image)

    return fill


def tiny_moebius_host():
    from engine.net.config import MoebiusConfig
    from engine.net.model import RemovalModel
    from engine.net.vae import Vae
    from engine.net.weight_fill import fill_module_
    from engine.removal.run import EngineHost
    from engine.sampling.device import choose
    from engine.sampling.inpainter import MoebiusInpainter

    model = fill_module_(RemovalModel(MoebiusConfig.tiny()))
    vae = Vae.load(ROOT / "tests" / "fixtures" / "moebius" / "tiny_vae")
    inpainter = MoebiusInpainter(model, vae, choose("cpu"))
    return EngineHost(loader=lambda variant, placement: inpainter)


_OLD_RUNNER = """
import sys, numpy as np
from engine.removal.job import RemovalJob
from engine.removal.run import run_removal
from engine.removal.settings import RemovalSettings
data = np.load(sys.argv[1])
out = {}
for key in data.files:
    if key.startswith("image"):
        i = key[5:]
        image, mask = data[key], data["mask" + i]
        events = list(run_removal(RemovalJob(image, mask, RemovalSettings(engine="quick"))))
        out["out" + i] = events[-1].result.apply_to(image)
np.savez(sys.argv[2], **out)
"""


def at_revision(rev: str, scenes: list[Scene]) -> list[np.ndarray]:
    """Quick removals of `scenes` by the engine at git revision `rev` (one subprocess)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        archive = subprocess.run(["git", "archive", rev, "engine"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, **{f"image{i}": s.image for i, s in enumerate(scenes)},
                 **{f"mask{i}": s.mask for i, s in enumerate(scenes)})
        subprocess.run([sys.executable, "-c", _OLD_RUNNER, str(src), str(dst)], cwd=tree,
                       check=True)
        out = np.load(dst)
        return [out[f"out{i}"] for i in range(len(scenes))]


def measure(name: str, fill: Fill | None, scenes: list[Scene],
            outputs: list[np.ndarray] | None = None) -> dict:
    """Every metric of `fill` on every scene, and the aggregates."""
    rows, results = {}, []
    for i, s in enumerate(scenes):
        if outputs is None:
            assert fill is not None
            t0 = time.perf_counter()
            out = fill(s.image, s.mask)
            seconds = time.perf_counter() - t0
        else:
            out, seconds = outputs[i], float("nan")
        results.append(out)
        mae, psnr = qm.inside_error(out, s.truth, s.mask)
        rows[s.name] = {"mae": mae, "psnr": psnr, "halo": qm.halo(out, s.image, s.mask),
                        "seam": qm.seam(out, s.truth, s.mask),
                        "s_per_mp": seconds / (s.mask.size / 1e6)}
    summary = _summary(rows, scenes)
    print(f"{name:28s} error {summary['mae']:6.2f} ({summary['mae_generated']:5.2f} generated, "
          f"{summary['mae_photo']:5.2f} photos)  PSNR {summary['psnr']:5.2f} dB  "
          f"halo {summary['halo']:.2f} (max {summary['halo_max']:.2f})  "
          f"seam {summary['seam']:.2f}  {summary['s_per_mp']:.3f} s/MP", flush=True)
    return {"summary": summary, "scenes": rows, "_outputs": results}


def _summary(rows: dict, scenes: list[Scene]) -> dict:
    def mean(key, pick=lambda s: True):
        vals = [rows[s.name][key] for s in scenes if pick(s)]
        return float(np.mean(vals)) if vals else float("nan")

    out = {k: mean(k) for k in ("mae", "psnr", "halo", "seam")}
    out["halo_max"] = float(max(r["halo"] for r in rows.values()))
    out["mae_generated"] = mean("mae", lambda s: s.kind == "generated")
    out["mae_photo"] = mean("mae", lambda s: s.kind == "photo")
    for margin in MARGINS:
        out[f"mae_{margin}"] = mean("mae", lambda s, m=margin: s.name.endswith("/" + m))
    mp = sum(s.mask.size for s in scenes) / 1e6
    out["s_per_mp"] = float(sum(r["s_per_mp"] * s.mask.size / 1e6
                                for r, s in zip(rows.values(), scenes, strict=True)) / mp)
    return out


def contact_sheet(path: Path, scenes: list[Scene], columns: dict[str, list[np.ndarray]],
                  picks: list[tuple[str, float, float]], cell: int = 180) -> None:
    """One row per (scene name, centre x, centre y as fractions): the photo with its mask,
    the truth, then each engine's result, cropped around the centre at 100 %."""
    import cv2

    index = {s.name: i for i, s in enumerate(scenes)}
    label_h = 22
    rows = []
    for name, fx, fy in picks:
        if name not in index:
            continue
        s = scenes[index[name]]
        h, w = s.mask.shape
        cx, cy = int(fx * w), int(fy * h)
        x0, y0 = min(max(cx - cell // 2, 0), w - cell), min(max(cy - cell // 2, 0), h - cell)
        shown = s.image.copy()
        edge = qm.ring(s.mask, 0.5, 1.5)
        shown[edge] = (255, 0, 255)
        tiles = [shown, s.truth] + [outs[index[name]] for outs in columns.values()]
        rows.append(np.concatenate([t[y0 : y0 + cell, x0 : x0 + cell] for t in tiles], axis=1))
    header = np.full((label_h, rows[0].shape[1], 3), 255, np.uint8)
    for i, text in enumerate(["photo + mask edge", "truth", *columns]):
        cv2.putText(header, text, (i * cell + 4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
    sheet = np.concatenate([header, *rows], axis=0)
    path.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(path), sheet[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 78])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", metavar="REV", help="also the Quick engine at git revision REV")
    ap.add_argument("--moebius-tiny", action="store_true")
    ap.add_argument("--xphoto", action="store_true")
    ap.add_argument("--no-sheet", action="store_true")
    args = ap.parse_args()

    scenes = generated_scenes() + photo_scenes()
    print(f"{machine()}\n{len(scenes)} scenes "
          f"({sum(s.kind == 'photo' for s in scenes)} on real photographs)")
    engines: dict[str, dict] = {}
    for flag, label in (("INPAINT_TELEA", "Telea"), ("INPAINT_NS", "Navier-Stokes")):
        for radius in (1, 3, 5):
            name = f"OpenCV {label} r={radius}"
            engines[name] = measure(name, opencv(flag, radius), scenes)
    if args.xphoto:
        import cv2

        if hasattr(cv2, "xphoto"):
            engines["OpenCV xphoto FSR fast"] = measure("OpenCV xphoto FSR fast", xphoto_fsr,
                                                        scenes)
        else:
            print("cv2.xphoto is missing (opencv-contrib-python): FSR left out")
    if args.baseline:
        name = f"Quick at {args.baseline}"
        t0 = time.perf_counter()
        outputs = at_revision(args.baseline, scenes)
        engines[name] = measure(name, None, scenes, outputs)
        per_mp = (time.perf_counter() - t0) / (sum(s.mask.size for s in scenes) / 1e6)
        print(f"  (incl. start-up: {per_mp:.3f} s/MP)")
    engines["Quick"] = measure("Quick", pipeline("quick"), scenes)
    if args.moebius_tiny:
        engines["Moebius (tiny, untrained)"] = measure(
            "Moebius (tiny, untrained)", pipeline("moebius", tiny_moebius_host()), scenes)

    big = timing_scene()
    timing = {}
    for name, fill in (("OpenCV Telea r=3", opencv("INPAINT_TELEA", 3)),
                       ("OpenCV Navier-Stokes r=3", opencv("INPAINT_NS", 3)),
                       ("Quick", pipeline("quick"))):
        t0 = time.perf_counter()
        fill(big.image, big.mask)
        timing[name] = (time.perf_counter() - t0) / (big.mask.size / 1e6)
        print(f"12 MP photo ({big.mask.mean():.1%} masked), {name}: {timing[name]:.3f} s/MP")

    if not args.no_sheet:
        picks = [("landscape/snug", 0.8, 0.55), ("bricks/snug", 0.66, 0.52),
                 ("astronaut/snug", 0.8, 0.5), ("coffee/snug", 0.66, 0.5),
                 ("grass/snug", 0.2, 0.3)]
        shown = {"Telea r=3": "OpenCV Telea r=3", "Navier-Stokes r=3": "OpenCV Navier-Stokes r=3"}
        if args.baseline:
            shown["Quick before"] = f"Quick at {args.baseline}"
        shown["Quick"] = "Quick"
        contact_sheet(ROOT / "docs" / "quality-contact-sheet.jpg", scenes,
                      {k: engines[v]["_outputs"] for k, v in shown.items()}, picks)
    for e in engines.values():
        e.pop("_outputs")
    write_result("quality", {"machine": machine(), "scenes": [s.name for s in scenes],
                             "engines": engines, "timing_12mp_s_per_mp": timing,
                             "timing_12mp_masked": float(big.mask.mean())})


if __name__ == "__main__":
    main()
