"""The batch on a Ray cluster (engine/removal/cluster.py) against the local batch: photos
per minute for 1, 2 and 4 removal actors, and the per-photo cost Ray adds. Not a test.

    python -m bench.bench_cluster                          # Quick and the tiny model
    python -m bench.bench_cluster --quick 400 --tiny 60 --actors 1 2 4 8

Runs on a local Ray instance with every CPU of this machine (`ray.init(num_cpus=...)`),
the same folder (512×384 JPEGs, a mask per photo, an object covering ~3 %) through
`run_batch` (local, one process, the model loaded before timing, with the threads of one
actor) and through `run_cluster_batch` (reading, removal actors, writing). Two figures per
cluster run:

- wall: from the call to the report, so actor start-up and model loads included;
- steady: photos per minute between the first and the last photo to come back, what a
  long run settles to; the time to the first photo is the fixed start-up cost;
- CPU s / photo: the CPU time of every process of the run (this one, and the local Ray
  instance's servers and workers, read when the last photo comes back) per photo;
  against the local batch's it is the work Ray adds per photo (three tasks, pickling
  through the object store, scheduling), which the steady wall time can hide when the
  stages overlap on several cores. A lower bound: a worker that exited is not counted.

The tiny model is the real file format (a models folder with the tiny network and VAE of
tests/fixtures), so actors load it as they load a real one. Results: a table on stdout
and bench/results/cluster.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, machine, write_result

SIZE = (512, 384)
FIXTURES = ROOT / "tests" / "fixtures" / "moebius"


def make_folder(root: Path, count: int) -> tuple[Path, Path]:
    """`count` JPEGs (smooth scene, noise, a red object) with a mask each."""
    from PIL import Image

    w, h = SIZE
    src, masks = root / "in", root / "masks"
    src.mkdir(parents=True)
    masks.mkdir()
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([60 + 80 * x / w, 120 + 60 * y / h, 160 - 40 * x / w], axis=-1)
    for i in range(count):
        rng = np.random.default_rng(i)
        img = np.clip(base + rng.normal(0, 4, base.shape).astype(np.float32), 0, 255)
        img = img.astype(np.uint8)
        x0, y0 = int(rng.integers(40, w - 120)), int(rng.integers(40, h - 100))
        img[y0 : y0 + 60, x0 : x0 + 80] = (230, 20, 20)
        Image.fromarray(img).save(src / f"photo_{i:04d}.jpg", quality=92)
        mask = np.zeros((h, w), np.uint8)
        mask[y0 - 3 : y0 + 63, x0 - 3 : x0 + 83] = 255
        Image.fromarray(mask).save(masks / f"photo_{i:04d}.png")
    return src, masks


def tiny_models(root: Path) -> Path:
    """A models folder holding the tiny network as Places2 and the tiny VAE."""
    from engine.net.checkpoint import save_bin
    from engine.net.config import MoebiusConfig
    from engine.net.model import RemovalModel
    from engine.net.weight_fill import fill_module_
    from engine.weights.store import WeightStore

    unet = root / "tiny_unet" / "diffusion_pytorch_model.bin"
    unet.parent.mkdir(parents=True)
    save_bin(fill_module_(RemovalModel(MoebiusConfig.tiny())), unet)
    store = WeightStore(root / "models", config=MoebiusConfig.tiny(),
                        vae_config=FIXTURES / "tiny_vae" / "config.json")
    store.import_weights("vae", FIXTURES / "tiny_vae")
    store.import_weights("ft_places2", unet)
    return store.root


def cpu_times(tree: bool) -> dict[int, float]:
    """CPU time (user + system) per process: this one, and with `tree` every process it
    started (the local Ray instance: its servers and workers)."""
    import psutil

    me = psutil.Process()
    times = {}
    for proc in [me, *(me.children(recursive=True) if tree else [])]:
        try:
            t = proc.cpu_times()
            times[proc.pid] = t.user + t.system
        except psutil.Error:
            pass
    return times


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two `cpu_times`, by the processes alive at the second
    (a process that exited in between is missed: the figure is a lower bound)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def settings_for(engine: str, steps: int):
    from engine.removal.settings import RemovalSettings

    if engine == "quick":
        return RemovalSettings(engine="quick")
    return RemovalSettings(engine="moebius", steps=steps, device="cpu", seed=0)


def local_run(src: Path, masks: Path, out: Path, settings, threads: int) -> dict:
    """The local batch in this process, with the threads one actor gets: torch and OpenCV
    on all cores of a shared, loaded machine can be many times slower than on one (spinning
    threads wait for a busy core), which would show up as a gain from Ray."""
    import cv2
    import torch

    from engine.events import Done
    from engine.removal.batch import BatchJob, run_batch
    from engine.removal.run import EngineHost

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    host = EngineHost()
    host.get(settings)  # the model loads before timing, as bench_batch does
    t0, cpu0 = time.perf_counter(), cpu_times(tree=False)
    events = list(run_batch(BatchJob(src, out, masks_dir=masks, settings=settings), None,
                            host))
    seconds, cpu = time.perf_counter() - t0, cpu_spent(cpu0, cpu_times(tree=False))
    assert isinstance(events[-1], Done), events[-1]
    count = events[-1].result.count("done")
    return {"mode": "local", "actors": None, "photos": count, "wall_s": seconds,
            "per_min": 60 * count / seconds, "s_per_photo": seconds / count,
            "cpu_s_per_photo": cpu / count}


def cluster_run(src: Path, masks: Path, out: Path, settings, actors: int, photos: int) -> dict:
    from engine.events import Done, Item
    from engine.removal.batch import BatchJob
    from engine.removal.cluster import ClusterOptions, run_cluster_batch

    job = BatchJob(src, out, masks_dir=masks, settings=settings)
    arrivals = []
    t0, cpu0 = time.perf_counter(), cpu_times(tree=True)
    last, cpu = None, 0.0
    for event in run_cluster_batch(job, ClusterOptions(actors=actors)):
        if isinstance(event, Item):
            arrivals.append(time.perf_counter() - t0)
            if len(arrivals) == photos:  # before the run ends and its actors are gone
                cpu = cpu_spent(cpu0, cpu_times(tree=True))
        last = event
    wall = time.perf_counter() - t0
    assert isinstance(last, Done), last
    count = last.result.count("done")
    steady = (arrivals[-1] - arrivals[0]) / max(1, len(arrivals) - 1)
    workers = {o.worker for o in last.result.outcomes if o.status == "done"}
    return {"mode": "cluster", "actors": actors, "photos": count, "wall_s": wall,
            "per_min": 60 * count / wall, "first_s": arrivals[0],
            "steady_per_min": 60 / steady, "s_per_photo": steady,
            "cpu_s_per_photo": cpu / count, "removal_workers": len(workers)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", type=int, default=200, help="photos for the Quick engine")
    ap.add_argument("--tiny", type=int, default=40, help="photos for the tiny model")
    ap.add_argument("--steps", type=int, default=4, help="tiny-model sampling steps")
    ap.add_argument("--actors", type=int, nargs="*", default=[1, 2, 4])
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1,
                    help="CPUs of the local Ray instance")
    args = ap.parse_args()

    import ray

    rows = []
    with tempfile.TemporaryDirectory(prefix="moebius-bench-cluster-") as tmp:
        root = Path(tmp)
        os.environ["MOEBIUS_MODELS_DIR"] = str(tiny_models(root))  # the actors read it too
        ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level=logging.WARNING)
        for engine, count in (("quick", args.quick), ("tiny", args.tiny)):
            if count <= 0:
                continue
            src, masks = make_folder(root / engine, count)
            settings = settings_for(engine, args.steps)
            from engine.removal.cluster import plan_actors

            threads = plan_actors(settings, {"CPU": args.cpus}, 1).threads
            runs = [local_run(src, masks, root / engine / "local", settings, threads)]
            for actors in args.actors:
                runs.append(cluster_run(src, masks, root / engine / f"ray{actors}", settings,
                                        actors, count))
            for r in runs:
                r["engine"] = engine if engine == "quick" else f"tiny model, {args.steps} steps"
                r["local_threads"] = threads if r["mode"] == "local" else None
                print(_line(r), flush=True)
            rows += runs
        ray.shutdown()

    print(f"\n{machine()}; Ray {ray.__version__}, {args.cpus} CPUs")
    print("| engine | run | photos / min (wall) | steady photos / min | s / photo (steady) "
          "| CPU s / photo | first photo after |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        run = "local batch" if r["mode"] == "local" else f"Ray, {r['actors']} actor(s)"
        steady = f"{r['steady_per_min']:.0f}" if "steady_per_min" in r else "–"
        first = f"{r['first_s']:.1f} s" if "first_s" in r else "–"
        print(f"| {r['engine']} | {run} | {r['per_min']:.0f} | {steady} | "
              f"{r['s_per_photo']:.3f} | {r['cpu_s_per_photo']:.3f} | {first} |")
    overhead = {}
    for engine in dict.fromkeys(r["engine"] for r in rows):
        local = next(r for r in rows if r["engine"] == engine and r["mode"] == "local")
        one = next((r for r in rows if r["engine"] == engine and r["actors"] == 1), None)
        if one is not None:
            overhead[engine] = {
                "wall_s": one["s_per_photo"] - local["s_per_photo"],
                "cpu_s": one["cpu_s_per_photo"] - local["cpu_s_per_photo"],
                "start_s": one["first_s"]}
            o = overhead[engine]
            print(f"{engine}: at 1 actor Ray adds {1000 * o['wall_s']:+.0f} ms of wall time "
                  f"per photo (steady) and {1000 * o['cpu_s']:+.0f} ms of CPU time per photo, "
                  f"and {o['start_s']:.1f} s before the first photo")
    path = write_result("cluster", {"machine": machine(), "ray": ray.__version__,
                                    "cpus": args.cpus, "args": vars(args), "rows": rows,
                                    "overhead_s_per_photo": overhead})
    print(f"wrote {path}")


def _line(r: dict) -> str:
    what = "local" if r["mode"] == "local" else f"ray x{r['actors']}"
    return (f"{r['engine']:22} {what:8} {r['photos']:4} photos  {r['per_min']:7.1f} /min wall  "
            f"{r['s_per_photo']:.3f} s/photo")


if __name__ == "__main__":
    main()
