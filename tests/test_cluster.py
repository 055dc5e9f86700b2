"""Batch cleaning on a Ray cluster (engine/removal/cluster.py), on a local Ray instance
with 2 CPUs started inside the test run: the same outputs and report as the local batch,
workers killed in the middle of a photo, Ctrl+C and the rerun that resumes."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

from engine.cli.main import main
from engine.events import Done, Failed, Item
from engine.removal.batch import REPORT_NAME, BatchJob, run_batch
from engine.removal.batch_plan import BOOKKEEPING, OUTPUT_RECORD
from engine.removal.cluster import ClusterOptions, plan_actors, run_cluster_batch
from engine.removal.settings import RemovalSettings
from tests.cluster_faults import KillingHost
from tests.photos import red_fraction, scene, with_object

ROOT = Path(__file__).resolve().parent.parent
EXTENSIONS = (".jpg", ".png", ".webp", ".tif", ".bmp")
BLUE = np.array([20, 20, 230], np.uint8)


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for the module: 2 CPUs, as on CI."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


def _photo(src: Path, masks: Path | None, name: str, seed: int, w=64, h=48, blue=False):
    box = (int(w * 0.4), int(h * 0.4), int(w * 0.6), int(h * 0.6))
    img, mask = with_object(scene(w, h, seed=seed), box)
    if blue:
        img[box[1]:box[3], box[0]:box[2]] = BLUE
    path = src / name
    kw = {"lossless": True} if path.suffix == ".webp" else {}
    kw |= {"quality": 92} if path.suffix == ".jpg" else {}
    Image.fromarray(img).save(path, **kw)
    if masks is not None:
        Image.fromarray(mask.astype(np.uint8) * 255).save(masks / f"{path.stem}.png")


def _folder(root: Path, count: int, bad_every: int = 0, orphans=(), large=(), blue=()) -> dict:
    """`count` photos of five formats with masks; every `bad_every`-th file is corrupt,
    `orphans` have no mask, `large` have an all-white mask, `blue` a blue object."""
    src, masks = root / "in", root / "masks"
    src.mkdir(parents=True), masks.mkdir()
    good = b""
    for i in range(count):
        name = f"p{i:03d}{EXTENSIONS[i % 5]}"
        if bad_every and i % bad_every == bad_every - 1:
            kinds = [good[: len(good) // 2], b"not a picture", b""]
            (src / name).write_bytes(kinds[i % 3] if good else b"not a picture")
            Image.fromarray(np.full((48, 64), 255, np.uint8)).save(masks / f"p{i:03d}.png")
            continue
        _photo(src, None if i in orphans else masks, name, i, blue=i in blue)
        if name.endswith(".jpg"):
            good = (src / name).read_bytes()
        if i in large:
            Image.fromarray(np.full((48, 64), 255, np.uint8)).save(masks / f"p{i:03d}.png")
    return {"src": src, "masks": masks}


def _hashes(*folders: Path) -> dict:
    return {str(p.relative_to(f)): hashlib.sha256(p.read_bytes()).hexdigest()
            for f in folders for p in sorted(f.rglob("*")) if p.is_file()}


def _outputs(out: Path) -> dict:
    """The photos of an output folder (not the report or the bookkeeping)."""
    return {k: v for k, v in _hashes(out).items()
            if k != REPORT_NAME and not k.startswith(BOOKKEEPING)}


def _report(out: Path) -> dict:
    return json.loads((out / REPORT_NAME).read_text())


def _comparable(out: Path) -> dict:
    """The report with timings and workers left out, paths relative to the output."""
    data = _report(out)
    files = [{k: (v.replace(str(out), "OUT") if isinstance(v, str) else v)
              for k, v in f.items() if k not in ("seconds", "worker")} for f in data["files"]]
    return {"counts": data["counts"], "settings": data["settings"], "files": files}


def _no_temporaries(*folders: Path) -> None:
    for f in folders:
        assert not [p for p in f.rglob("*") if p.name.endswith(".tmp")]


def _cli(f: dict, out: Path, *extra: str) -> int:
    return main(["batch", str(f["src"]), "-o", str(out), "--masks", str(f["masks"]), *extra])


def test_the_actor_plan_follows_the_cluster():
    moebius, quick = RemovalSettings(), RemovalSettings(engine="quick")
    gpus = {"CPU": 64.0, "GPU": 4.0}
    assert plan_actors(moebius, gpus, None).count == 4
    assert plan_actors(moebius, gpus, None).num_gpus == 1.0
    shared = plan_actors(moebius, gpus, 8)
    assert (shared.count, shared.num_gpus) == (8, 0.5)  # two actors per GPU
    on_cpu = plan_actors(quick, gpus, None)  # Quick never asks for a GPU
    assert (on_cpu.count, on_cpu.num_gpus, on_cpu.num_cpus) == (32, 0.0, 1.0)
    assert plan_actors(RemovalSettings(device="cpu"), gpus, None).num_gpus == 0.0
    two = plan_actors(quick, {"CPU": 2.0}, None)  # half the CPUs, the rest reads and writes
    assert (two.count, two.num_cpus, two.threads) == (1, 1.0, 1)
    four = plan_actors(quick, {"CPU": 2.0}, 4)
    assert (four.count, four.num_cpus, four.threads) == (4, 0.25, 1)


def test_without_cluster_nothing_imports_ray(tmp_path):
    f = _folder(tmp_path, 3)
    code = ("import sys; from engine.cli.main import main; "
            f"rc = main(['batch', {str(f['src'])!r}, '-o', {str(tmp_path / 'out')!r}, "
            f"'--masks', {str(f['masks'])!r}, '--engine', 'quick']); "
            "import app.windows.batch_dialog; "
            "print(rc, sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[-2] == "0 []"


def test_without_ray_the_cluster_option_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    f = _folder(tmp_path, 2)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as where not installed
    assert _cli(f, tmp_path / "out", "--engine", "quick", "--cluster", "local") == 1
    err = capsys.readouterr().err
    assert "needs Ray" in err and "pip install 'moebius-studio[cluster]'" in err
    assert not (tmp_path / "out" / REPORT_NAME).exists()


def test_cluster_options_need_a_cluster(tmp_path, capsys):
    f = _folder(tmp_path, 1)
    assert _cli(f, tmp_path / "out", "--engine", "quick", "--actors", "2") == 2
    assert "--actors and --retries are for --cluster runs" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["input", "-o", "--masks"])
def test_object_storage_urls_are_refused_with_the_way_to_use_them(tmp_path, capsys, flag):
    f = _folder(tmp_path, 1)
    args = {"input": str(f["src"]), "-o": str(tmp_path / "out"), "--masks": str(f["masks"])}
    args[flag] = "s3://archive/scans"
    with pytest.raises(SystemExit) as info:
        main(["batch", args["input"], "-o", args["-o"], "--masks", args["--masks"],
              "--engine", "quick", "--cluster", "local"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "s3://archive/scans is a URL" in err and "mount the bucket" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_200_photos_give_the_local_batch_s_outputs_and_report(tmp_path, ray_local, capsys):
    # 5 % corrupt (truncated, text, empty), photos without a mask, masks that cover all.
    f = _folder(tmp_path, 200, bad_every=20, orphans={3, 77, 150}, large={11, 12})
    before = _hashes(f["src"], f["masks"])
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    assert _cli(f, local, "--engine", "quick") == 1
    t0 = time.perf_counter()
    assert _cli(f, cluster, "--engine", "quick", "--cluster", "local", "--actors", "2") == 1
    seconds = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert err.count("no mask: ") == 6 and err.count("mask too large: ") == 4  # both runs
    assert _comparable(cluster) == _comparable(local)
    counts = _report(cluster)["counts"]
    assert (counts["done"], counts["failed"], counts["no mask"], counts["mask too large"]) \
        == (185, 10, 3, 2)
    assert _outputs(cluster) == _outputs(local) and len(_outputs(cluster)) == 185
    workers = {r["worker"] for r in _report(cluster)["files"] if r["status"] == "done"}
    assert workers and f"{os.uname().nodename}:{os.getpid()}" not in workers  # on Ray
    assert all(r["seed"] == 0 for r in _report(cluster)["files"] if r["status"] == "done")
    record = (cluster / BOOKKEEPING / OUTPUT_RECORD).read_text().split()
    assert sorted(record) == sorted(_outputs(cluster))  # the writers' records, merged
    assert not list((cluster / BOOKKEEPING).glob("outputs.*.txt"))
    for name in ("p000.jpg", "p001.png"):
        with Image.open(cluster / name) as im:
            got = np.asarray(im.convert("RGB"))
        mask = np.asarray(Image.open(f["masks"] / f"{Path(name).stem}.png")) > 0
        assert red_fraction(got, mask) < 0.05
    assert _hashes(f["src"], f["masks"]) == before  # originals never modified
    _no_temporaries(cluster)
    # A rerun skips everything it finished and writes nothing.
    stamps = {p: p.stat().st_mtime_ns for p in cluster.glob("p*")}
    assert _cli(f, cluster, "--engine", "quick", "--cluster", "local") == 1
    assert _report(cluster)["counts"]["skipped"] == 185
    assert {p: p.stat().st_mtime_ns for p in cluster.glob("p*")} == stamps
    print(f"200 Quick photos on the cluster: {seconds:.1f} s")


def _tiny_job(f: dict, out: Path, **kw) -> BatchJob:
    settings = RemovalSettings(engine="moebius", steps=2, device="cpu", seed=3)
    return BatchJob(f["src"], out, masks_dir=f["masks"], settings=settings, **kw)


@pytest.fixture
def one_thread():
    """torch on one thread, as each of two actors on 2 CPUs runs: float sums over another
    number of threads differ in their last bits, which can move a pixel by a level."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tiny_model_gives_the_local_batch_s_outputs(tmp_path, ray_local, tiny_models_dir,
                                                    one_thread):
    f = _folder(tmp_path, 6, orphans={4})
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    assert isinstance(list(run_batch(_tiny_job(f, local)))[-1], Done)
    events = list(run_cluster_batch(_tiny_job(f, cluster), ClusterOptions(actors=2)))
    assert isinstance(events[-1], Done) and events[-1].result.count("done") == 5
    assert _comparable(cluster) == _comparable(local)
    assert _outputs(cluster) == _outputs(local)
    items = [e.outcome for e in events if isinstance(e, Item)]
    assert sorted(Path(o.source).name for o in items) == sorted(p.name for p in f["src"].iterdir())


def test_variations_on_the_cluster_give_the_local_batch_s_files_and_seeds(
        tmp_path, ray_local, tiny_models_dir, one_thread):
    f = _folder(tmp_path, 2)
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    settings = RemovalSettings(engine="moebius", steps=2, device="cpu", seed=3, variations=2)
    for out, run in ((local, lambda job: run_batch(job)),
                     (cluster, lambda job: run_cluster_batch(job, ClusterOptions(actors=1)))):
        job = BatchJob(f["src"], out, masks_dir=f["masks"], settings=settings)
        assert isinstance(list(run(job))[-1], Done)
    assert _outputs(cluster) == _outputs(local) and len(_outputs(local)) == 4

    def seeds(out):
        return {Path(e["source"]).name: [(Path(v["output"]).relative_to(out).as_posix(),
                                           v["seed"]) for v in e["variations"]]
                for e in _report(out)["files"]}

    assert seeds(cluster) == seeds(local)
    assert all(len(files) == 2 for files in seeds(local).values())


def test_model_auto_chooses_each_photo_s_fine_tune_as_the_local_batch_does(
        tmp_path, ray_local, tiny_models_dir, one_thread):
    from skimage import data

    from engine.removal.run import EngineHost
    from engine.removal.suggest import AUTO
    from tests.cluster_faults import AnyVariantHost

    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir(), masks.mkdir()
    photos = {"astronaut.png": data.astronaut(), "close.png": data.astronaut()[40:280, 105:345],
              "street.jpg": scene(160, 120, seed=2)}
    for name, pixels in photos.items():
        Image.fromarray(pixels).save(src / name)
        mask = np.zeros(pixels.shape[:2], np.uint8)
        mask[5:25, 5:25] = 255  # a corner, away from the faces
        Image.fromarray(mask).save(masks / f"{Path(name).stem}.png")
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    settings = RemovalSettings(engine="moebius", variant=AUTO, steps=2, device="cpu", seed=3)
    job = functools.partial(BatchJob, src, masks_dir=masks, settings=settings)
    local_host = AnyVariantHost(asked=tmp_path / "local-asked.txt")
    assert isinstance(list(run_batch(job(local), None, local_host))[-1], Done)
    host: functools.partial[EngineHost] = functools.partial(
        AnyVariantHost, asked=tmp_path / "cluster-asked.txt")
    events = list(run_cluster_batch(job(cluster), ClusterOptions(actors=2, host_factory=host)))
    assert isinstance(events[-1], Done) and events[-1].result.ok
    assert _comparable(cluster) == _comparable(local)
    assert _outputs(cluster) == _outputs(local)
    models = {Path(o["source"]).name: o["model"] for o in _report(cluster)["files"]}
    assert models == {"astronaut.png": "ft_ffhq", "close.png": "ft_celebahq",
                      "street.jpg": "ft_places2"}
    assert "head-and-shoulders" in _report(cluster)["files"][0]["model_reason"]
    # Loaded by the photos that needed them (no actor loads "auto" at its start).
    asked = (tmp_path / "cluster-asked.txt").read_text().split()
    assert set(asked) == set(models.values()) and AUTO not in asked
    _no_temporaries(cluster)


def test_missing_weights_on_the_workers_end_the_run_like_a_local_run(
        tmp_path, ray_local, monkeypatch, capsys):
    monkeypatch.setenv("MOEBIUS_MODELS_DIR", str(tmp_path / "empty"))
    f = _folder(tmp_path, 4)
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    assert _cli(f, local, "--engine", "moebius", "--device", "cpu") == 1
    capsys.readouterr()
    assert _cli(f, cluster, "--engine", "moebius", "--device", "cpu", "--cluster", "auto") == 1
    err = capsys.readouterr().err
    assert "models download" in err and "--engine quick" in err
    assert _comparable(cluster) == _comparable(local)
    assert [r["status"] for r in _report(cluster)["files"]] == ["failed"] + ["cancelled"] * 3
    assert not _outputs(cluster)


def test_a_gpu_device_on_a_cluster_without_gpus_is_refused_first(tmp_path, ray_local):
    f = _folder(tmp_path, 2)
    job = BatchJob(f["src"], tmp_path / "out", masks_dir=f["masks"],
                   settings=RemovalSettings(device="cuda:1"))
    events = list(run_cluster_batch(job, ClusterOptions()))
    assert isinstance(events[-1], Failed) and "has no GPUs" in events[-1].message
    assert not any(isinstance(e, Item) for e in events)
    assert not (tmp_path / "out" / REPORT_NAME).exists()


@pytest.mark.slow
def test_a_worker_killed_in_the_middle_of_a_photo_loses_nothing(tmp_path, ray_local,
                                                                tiny_models_dir, one_thread):
    f = _folder(tmp_path, 8)
    marker = tmp_path / "killed"
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    assert isinstance(list(run_batch(_tiny_job(f, local)))[-1], Done)
    options = ClusterOptions(actors=2, host_factory=functools.partial(KillingHost, once=marker))
    events = list(run_cluster_batch(_tiny_job(f, cluster), options))
    killed = marker.read_text().strip()
    assert killed and not psutil.pid_exists(int(killed))  # one actor died mid-photo
    assert isinstance(events[-1], Done) and events[-1].result.count("done") == 8
    items = [e.outcome for e in events if isinstance(e, Item)]
    assert len(items) == 8 and len({o.source for o in items}) == 8  # each reported once
    assert _comparable(cluster) == _comparable(local)
    assert _outputs(cluster) == _outputs(local)
    # The killed process had finished one photo; the one it was removing was done again
    # by another process (a restarted actor), and reported once.
    assert sum(o.worker.endswith(f":{killed}") for o in items) == 1
    _no_temporaries(cluster)


@pytest.mark.slow
def test_a_photo_that_kills_every_worker_fails_alone_after_its_retries(tmp_path, ray_local):
    f = _folder(tmp_path, 10, blue={6})
    deaths = tmp_path / "deaths"
    job = BatchJob(f["src"], tmp_path / "out", masks_dir=f["masks"],
                   settings=RemovalSettings(engine="quick"))
    options = ClusterOptions(actors=1, retries=1,
                             host_factory=functools.partial(KillingHost, poison=deaths))
    events = list(run_cluster_batch(job, options))
    summary = events[-1].result
    assert summary.count("done") == 9 and summary.count("failed") == 1 and not summary.ok
    failed = next(o for o in summary.outcomes if o.status == "failed")
    assert Path(failed.source).name == "p006.png"
    assert "died on each of 2 attempts" in failed.message
    assert len(deaths.read_text().split()) == 2  # bounded: the first try and one retry
    assert not (tmp_path / "out" / "p006.png").exists()
    _no_temporaries(tmp_path / "out")


def _raylets() -> set[int]:
    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "raylet"}


@pytest.mark.slow
def test_ctrl_c_stops_the_cluster_and_a_rerun_resumes(tmp_path, ray_local):
    f = _folder(tmp_path, 120)
    out, local = tmp_path / "out", tmp_path / "local"
    before = _raylets()
    cmd = [sys.executable, "main.py", "batch", str(f["src"]), "-o", str(out), "--masks",
           str(f["masks"]), "--engine", "quick", "--cluster", "local", "--actors", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("p*"))) < 10 and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)  # Ctrl+C
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    assert _raylets() <= before  # the run's own Ray instance is gone
    _no_temporaries(out)
    written = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("p*")}
    assert 10 <= len(written) < 120
    interrupted = _report(out)["counts"]["done"]
    assert 0 < interrupted <= len(written)
    # The rerun (on the test's Ray) skips what exists and does the rest.
    assert _cli(f, out, "--engine", "quick", "--cluster", "local") == 0
    counts = _report(out)["counts"]
    assert (counts["skipped"], counts["done"]) == (len(written), 120 - len(written))
    assert {n: (p.stat().st_ino, p.stat().st_mtime_ns) for n, p in
            ((p.name, p) for p in out.glob("p*")) if n in written} == written
    assert _cli(f, local, "--engine", "quick") == 0
    assert _outputs(out) == _outputs(local)


def test_a_cluster_run_waits_for_the_run_that_holds_the_output_folder(tmp_path):
    from engine.events import CancelToken
    from engine.removal.batch_plan import FolderLock

    f = _folder(tmp_path, 3)
    out = tmp_path / "out"
    holder = FolderLock(out)
    assert holder.acquire(1)  # another run is writing there
    cancel = CancelToken()
    events = []
    try:
        for event in run_cluster_batch(BatchJob(f["src"], out, masks_dir=f["masks"]),
                                       ClusterOptions(), cancel):
            events.append(event)
            if getattr(event, "stage", "") == "waiting":
                cancel.cancel()
    finally:
        holder.release()
    assert [getattr(e, "stage", None) for e in events[:2]] == ["planned", "waiting"]
    assert isinstance(events[-1], Failed) and events[-1].cancelled
    assert "starting" not in {getattr(e, "stage", "") for e in events}  # no cluster work
    assert not _outputs(out) and not (out / REPORT_NAME).exists()


def test_a_cluster_output_never_replaces_an_input(tmp_path, ray_local):
    # Input nested in the output: photos/in/in/a.png would be written to photos/in/a.png.
    top = tmp_path / "photos"
    (top / "in" / "in").mkdir(parents=True)
    (tmp_path / "m").mkdir()
    _photo(top / "in", tmp_path / "m", "a.png", 0)
    _photo(top / "in" / "in", None, "a.png", 1)
    before = _hashes(top / "in")
    assert main(["batch", str(top / "in"), "-o", str(top), "--masks", str(tmp_path / "m"),
                 "--recursive", "--overwrite", "--engine", "quick", "--cluster", "local"]) == 1
    files = _report(top)["files"]
    nested = next(r for r in files if r["source"].endswith("in/in/a.png"))
    assert nested["status"] == "failed" and "would replace an input" in nested["message"]
    assert _hashes(top / "in") == before


def test_a_writer_left_over_from_a_stopped_run_writes_nothing(tmp_path):
    import pickle

    from engine.removal.batch import open_work, plan
    from engine.removal.cluster_stages import Work, open_run, pack, write_photo
    from engine.removal.job import RemovalJob
    from engine.removal.run import run_removal

    f = _folder(tmp_path, 1)
    job = BatchJob(f["src"], tmp_path / "out", masks_dir=f["masks"],
                   settings=RemovalSettings(engine="quick"))
    item = plan(job)[0][0]
    image, mask = open_work(job, item, {})
    result = list(run_removal(RemovalJob(image.pixels, mask, job.settings)))[-1].result
    work = pack(Work(0, item, image, None, result))
    open_run(job.output_dir, "the next run")  # the driver let go; another run holds it
    outcome = pickle.loads(write_photo(work, job, "a stopped run")["outcome"])
    assert outcome.status == "cancelled" and not item.output.exists()
    outcome = pickle.loads(write_photo(work, job, "the next run")["outcome"])
    assert outcome.status == "done" and item.output.is_file()
