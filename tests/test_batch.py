"""Batch cleaning of a folder: formats, masks, failures, resuming, safety, one model load."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import engine.removal.run
from engine.cli.main import main
from engine.events import CancelToken, Done, Failed, Item
from engine.removal.batch import REPORT_NAME, BatchJob, BatchProgress, MaskFinder, run_batch
from engine.removal.batch_plan import BOOKKEEPING
from engine.removal.composite import dilate
from engine.removal.run import EngineHost
from engine.removal.settings import RemovalSettings
from tests.photos import red_fraction, scene, with_object

ROOT = Path(__file__).resolve().parent.parent
# name -> (size, mask file name in masks/); all 4:3 but "tall", so one shared mask fits.
PHOTOS = {
    "a.jpg": ((160, 120), "a.png"),
    "b.png": ((200, 150), "b_mask.png"),
    "c.webp": ((120, 90), "c.mask.png"),
    "d.tif": ((96, 72), "d_mask.png"),
    "e.bmp": ((80, 60), "e.png"),
    "tall.png": ((60, 120), "tall.mask.png"),
}
CORRUPT = {"trunc.jpg": "trunc.png", "notes.png": "notes_mask.png"}
FORMATS = {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".bmp": "BMP"}
LOSSLESS = {"b.png", "c.webp", "d.tif", "e.bmp", "tall.png"}


def _box(w, h):
    return (int(w * 0.4), int(h * 0.4), int(w * 0.6), int(h * 0.6))


def _save(img, path: Path):
    kw = {"lossless": True} if path.suffix == ".webp" else {}
    kw |= {"quality": 92} if path.suffix == ".jpg" else {}
    Image.fromarray(img).save(path, **kw)


def _save_mask(mask, path: Path):
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)


@pytest.fixture
def folder(tmp_path):
    """in/ (good photos of every format, two corrupt files, one without a mask), masks/
    (all three naming styles) and one shared 4:3 mask."""
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir(), masks.mkdir()
    truth = {}
    for i, (name, ((w, h), mask_name)) in enumerate(PHOTOS.items()):
        img, mask = with_object(scene(w, h, seed=i), _box(w, h))
        _save(img, src / name)
        _save_mask(mask, masks / mask_name)
        truth[name] = (np.asarray(Image.open(src / name).convert("RGB")), mask)
    good_jpeg = (src / "a.jpg").read_bytes()
    (src / "trunc.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    (src / "notes.png").write_text("not a picture")
    for name in CORRUPT.values():
        _save_mask(np.ones((120, 160), bool), masks / name)
    _save(scene(64, 48, seed=9), src / "orphan.png")  # no mask: listed, not guessed
    shared = np.zeros((30, 40), bool)
    x0, y0, x1, y1 = _box(40, 30)
    shared[y0 - 1 : y1 + 1, x0 - 1 : x1 + 1] = True
    _save_mask(shared, tmp_path / "shared.png")
    return dict(src=src, masks=masks, out=tmp_path / "out", shared=tmp_path / "shared.png",
                truth=truth)


def _hashes(*folders) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest()
            for f in folders for p in sorted(Path(f).rglob("*")) if p.is_file()}


def _report(out: Path) -> dict:
    data = json.loads((out / REPORT_NAME).read_text())
    return {Path(f["source"]).name: f for f in data["files"]}


def _statuses(out: Path) -> dict:
    return {name: f["status"] for name, f in _report(out).items()}


def _batch(f, *extra, engine="quick"):
    return main(["batch", str(f["src"]), "-o", str(f["out"]), "--engine", engine, *extra])


def _check_outputs(f, names, mask_for=None, quick=True):
    for name in names:
        out = f["out"] / name
        img, mask = f["truth"][name]
        if mask_for is not None:
            mask = mask_for(name)
        with Image.open(out) as im:
            assert im.format == FORMATS[Path(name).suffix]
            assert im.size == (img.shape[1], img.shape[0])
            got = np.asarray(im.convert("RGB"))
        far = ~dilate(mask, 33)  # the feather band never reaches this far
        if name in LOSSLESS:
            assert np.array_equal(got[far], img[far]), name
        else:  # JPEG: a re-encode of the same pixels at the source's quality
            diff = np.abs(got.astype(int) - img.astype(int))[far]
            assert diff.mean() < 2.0 and np.percentile(diff, 99) < 16, name
        if quick:
            assert red_fraction(got, mask) < 0.05, name
        else:
            assert (got != img)[mask].any(), name


def test_quick_batch_with_per_photo_masks(folder, capsys):
    f = folder
    before = _hashes(f["src"], f["masks"])
    assert _batch(f, "--masks", str(f["masks"])) == 1  # corrupt files failed
    statuses = _statuses(f["out"])
    assert statuses == {**{n: "done" for n in PHOTOS}, "trunc.jpg": "failed",
                        "notes.png": "failed", "orphan.png": "no mask"}
    report = _report(f["out"])
    assert all(r["seconds"] >= 0 for r in report.values())
    assert "damaged" in report["trunc.jpg"]["message"]
    assert "not an image" in report["notes.png"]["message"]
    assert Path(report["c.webp"]["mask"]).name == "c.mask.png"
    err = capsys.readouterr().err
    assert "failed:" in err and "notes.png" in err and "orphan.png" in err
    _check_outputs(f, PHOTOS)
    # Only complete outputs and the report: no temporary or partial files.
    assert sorted(p.name for p in f["out"].iterdir()) == sorted([*PHOTOS, REPORT_NAME,
                                                                 BOOKKEEPING])
    assert _hashes(f["src"], f["masks"]) == before  # inputs are never modified


def test_second_run_skips_and_overwrite_redoes(folder):
    f = folder
    _batch(f, "--masks", str(f["masks"]))
    old = 946_684_800  # 2000-01-01: any rewrite would move the mtime
    for name in PHOTOS:
        os.utime(f["out"] / name, (old, old))
    _batch(f, "--masks", str(f["masks"]))
    report = _report(f["out"])
    assert {n: report[n]["status"] for n in PHOTOS} == {n: "skipped" for n in PHOTOS}
    assert all(report[n]["seconds"] == 0 for n in PHOTOS)
    assert json.loads((f["out"] / REPORT_NAME).read_text())["seconds"] < 5
    assert all((f["out"] / n).stat().st_mtime == old for n in PHOTOS)

    _batch(f, "--masks", str(f["masks"]), "--overwrite")
    assert {n: _statuses(f["out"])[n] for n in PHOTOS} == {n: "done" for n in PHOTOS}
    assert all((f["out"] / n).stat().st_mtime > old for n in PHOTOS)
    _check_outputs(f, PHOTOS)


def test_shared_mask_is_scaled_and_a_wrong_aspect_fails(folder):
    f = folder
    assert _batch(f, "--mask", str(f["shared"])) == 1
    statuses = _statuses(f["out"])
    good = [n for n in PHOTOS if n != "tall.png"] + ["orphan.png"]
    assert statuses == {**{n: "done" for n in good}, "tall.png": "failed",
                        "trunc.jpg": "failed", "notes.png": "failed"}
    assert "aspect" in _report(f["out"])["tall.png"]["message"] or \
        "shapes differ" in _report(f["out"])["tall.png"]["message"]
    assert not (f["out"] / "tall.png").exists()

    def scaled(name):  # the shared mask at this photo's size, grown like with_object's
        w, h = Image.open(f["src"] / name).size
        return dilate(np.asarray(Image.open(f["shared"]).resize((w, h), Image.NEAREST)) > 0, 2)

    _check_outputs(f, [n for n in PHOTOS if n != "tall.png"], mask_for=scaled, quick=False)


def test_output_may_not_be_the_input_or_masks_folder(folder, capsys):
    f = folder
    before = _hashes(f["src"], f["masks"])
    assert main(["batch", str(f["src"]), "-o", str(f["src"]), "--masks", str(f["masks"]),
                 "--engine", "quick", "--overwrite"]) == 1
    assert "may not be the input folder" in capsys.readouterr().err
    assert main(["batch", str(f["src"]), "-o", str(f["masks"]), "--masks", str(f["masks"]),
                 "--engine", "quick"]) == 1
    assert "masks folder" in capsys.readouterr().err
    assert _hashes(f["src"], f["masks"]) == before


def _photo(path: Path, w=64, h=48, seed=0, mask_path: Path | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    img, mask = with_object(scene(w, h, seed=seed), _box(w, h))
    _save(img, path)
    if mask_path is not None:
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        _save_mask(mask, mask_path)


def test_recursive_keeps_structure_and_never_reads_its_own_outputs(tmp_path):
    src = tmp_path / "photos"
    masks, out = src / "masks", src / "cleaned"  # both inside the input folder
    _photo(src / "x.png", mask_path=masks / "x_mask.png")
    _photo(src / "sub" / "y.tif", seed=1, mask_path=masks / "sub" / "y.png")
    _photo(src / "sub" / "deeper" / "z.bmp", seed=2, mask_path=masks / "z.mask.png")
    args = ["batch", str(src), "-o", str(out), "--masks", str(masks), "--recursive",
            "--engine", "quick"]
    assert main(args) == 0
    expected = {"x.png", "sub/y.tif", "sub/deeper/z.bmp"}
    assert {str(p.relative_to(out)) for p in out.rglob("*.*")
            if p.name != REPORT_NAME and BOOKKEEPING not in p.parts} \
        == expected
    for _ in range(2):  # reruns see the same three photos: no outputs, no masks
        assert main(args) == 0
        assert set(_statuses(out).values()) == {"skipped"} and len(_statuses(out)) == 3
    assert main(args + ["--overwrite"]) == 0
    assert set(_statuses(out).values()) == {"done"} and len(_statuses(out)) == 3


def test_masks_beside_the_photos(tmp_path):
    src = tmp_path / "in"
    _photo(src / "p.png", mask_path=src / "p_mask.png")
    _photo(src / "q.jpg", seed=1, mask_path=src / "q.mask.png")
    assert main(["batch", str(src), "-o", str(tmp_path / "out"), "--masks", str(src),
                 "--engine", "quick"]) == 0
    assert _statuses(tmp_path / "out") == {"p.png": "done", "q.jpg": "done"}


def test_masks_match_the_whole_stem(tmp_path):
    (tmp_path / "m").mkdir()
    _save_mask(np.ones((4, 4), bool), tmp_path / "m" / "a.v2.png")
    _save_mask(np.ones((4, 4), bool), tmp_path / "m" / "B_MASK.png")
    finder = MaskFinder(BatchJob(tmp_path, tmp_path / "o", masks_dir=tmp_path / "m"))
    assert finder.find(tmp_path / "a.png") is None
    assert finder.find(tmp_path / "a.v2.jpg").name == "a.v2.png"
    assert finder.find(tmp_path / "b.png").name == "B_MASK.png"


def test_an_output_never_replaces_an_input(tmp_path):
    # Input nested in the output: photos/in/in/a.png would be written to photos/in/a.png.
    top = tmp_path / "photos"
    _photo(top / "in" / "a.png", mask_path=tmp_path / "m" / "a.png")
    _photo(top / "in" / "in" / "a.png", seed=1)
    before = _hashes(top / "in")
    code = main(["batch", str(top / "in"), "-o", str(top), "--masks", str(tmp_path / "m"),
                 "--recursive", "--overwrite", "--engine", "quick"])
    assert code == 1
    report = json.loads((top / REPORT_NAME).read_text())["files"]
    nested = next(r for r in report if r["source"].endswith("in/in/a.png"))
    assert nested["status"] == "failed" and "would replace an input" in nested["message"]
    assert _hashes(top / "in") == before


@pytest.fixture
def tiny_host(tiny_inpainter):
    calls = []

    def loader(variant, placement):
        calls.append((variant, placement))
        return tiny_inpainter

    host = EngineHost(loader=loader)
    host.calls = calls
    return host


def _job(f, **kw):
    settings = RemovalSettings(engine="moebius", steps=3, device="cpu", seed=3)  # 2 calls
    return BatchJob(f["src"], f["out"], masks_dir=f["masks"], settings=settings, **kw)


def test_tiny_model_loads_once_per_run(folder, tiny_host):
    f = folder
    events = list(run_batch(_job(f), None, tiny_host))
    assert len(tiny_host.calls) == 1
    assert isinstance(events[-1], Done) and not events[-1].result.ok
    planned = events[0]
    assert planned.stage == "planned" and len(planned.files) == len(PHOTOS) + 2
    progress = [e for e in events if isinstance(e, BatchProgress)]
    fractions = [e.fraction for e in progress]
    assert fractions == sorted(fractions) and max(fractions) <= 1.0
    assert any(e.stage == "denoising" and e.total == 3 for e in progress)  # the person's steps
    _check_outputs(f, PHOTOS, quick=False)
    # The same host later (the app's worker): everything is skipped, nothing reloads.
    events = list(run_batch(_job(f), None, tiny_host))
    assert events[-1].result.count("skipped") == len(PHOTOS)
    assert len(tiny_host.calls) == 1


def test_cli_with_the_tiny_model_loads_it_once(folder, tiny_models_dir, monkeypatch, capsys):
    loads = []
    real = engine.removal.run.default_loader
    monkeypatch.setattr(engine.removal.run, "default_loader",
                        lambda v, p: loads.append(v) or real(v, p))
    f = folder
    assert _batch(f, "--masks", str(f["masks"]), "--model", "places2", "--steps", "2",
                  "--device", "cpu", engine="moebius") == 1
    assert loads == ["ft_places2"]
    assert "6 done, 2 failed, 1 no mask" in capsys.readouterr().out
    _check_outputs(f, PHOTOS, quick=False)


def test_missing_weights_stop_the_run_with_instructions(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOEBIUS_MODELS_DIR", str(tmp_path / "empty"))
    f = folder
    assert _batch(f, "--masks", str(f["masks"]), engine="moebius") == 1
    err = capsys.readouterr().err
    assert "models download" in err and "--engine quick" in err
    statuses = _statuses(f["out"])  # the report still lists every file
    assert statuses["a.jpg"] == "failed" and statuses["orphan.png"] == "no mask"
    assert not list(f["out"].glob("*.png"))


def test_cancel_abandons_the_current_file_and_a_rerun_resumes(folder, tiny_host):
    f = folder
    cancel = CancelToken()
    events = []
    for e in run_batch(_job(f), cancel, tiny_host):
        events.append(e)
        done = [x for x in events if isinstance(x, Item) and x.outcome.status == "done"]
        if len(done) == 2 and isinstance(e, BatchProgress) and e.stage == "denoising":
            cancel.cancel()  # mid-file: the third photo is being denoised
    summary = events[-1].result
    statuses = {Path(o.source).name: o.status for o in summary.outcomes}
    working = next(Path(e.source).name for e in reversed(events)
                   if isinstance(e, BatchProgress) and e.stage == "denoising")
    assert statuses[working] == "cancelled"
    assert summary.count("done") == 2 and summary.count("cancelled") == len(PHOTOS) + 2 - 2
    assert sorted(p.name for p in f["out"].iterdir()
                  if p.name not in (REPORT_NAME, BOOKKEEPING)) == \
        sorted(n for n, s in statuses.items() if s == "done")
    # The rerun resumes: the two finished photos are skipped, the others are done now.
    summary = list(run_batch(_job(f), None, tiny_host))[-1].result
    assert summary.count("skipped") == 2 and summary.count("done") == len(PHOTOS) - 2


def test_interrupt_writes_the_report_and_says_how_to_resume(folder, monkeypatch, capsys):
    import engine.removal.batch

    real = engine.removal.batch.run_batch

    def interrupted(job, *a):
        for e in real(job, *a):
            yield e
            if isinstance(e, Item) and e.outcome.status == "done":
                raise KeyboardInterrupt

    monkeypatch.setattr(engine.removal.batch, "run_batch", interrupted)
    f = folder
    assert _batch(f, "--masks", str(f["masks"])) == 130
    assert "run the same command again" in capsys.readouterr().err
    assert list(_statuses(f["out"]).values()).count("done") == 1


def test_bad_folders_fail_cleanly(tmp_path):
    events = list(run_batch(BatchJob(tmp_path / "nope", tmp_path / "o",
                                     shared_mask=tmp_path / "m.png")))
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert "input folder not found" in events[0].message


def test_the_real_entry_point(folder):
    f = folder
    proc = subprocess.run(
        [sys.executable, "main.py", "batch", str(f["src"]), "-o", str(f["out"]), "--mask",
         str(f["shared"]), "--engine", "quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "100%" in proc.stderr and "ETA" in proc.stderr  # the progress bar
    assert "failed: " in proc.stderr and "tall.png" in proc.stderr
    assert "6 done, 3 failed" in proc.stdout and REPORT_NAME in proc.stdout
