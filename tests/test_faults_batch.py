"""Fault suite, batch cleaning: originals out of reach whatever the options, the request
checked before any photo, special files reported (never hanging), masks that make no
sense skipped, leftovers of killed runs cleaned, one writer per output folder.

Each case asserts the exit code, one line per problem, the inputs' hashes and the absence
of temporary or unwanted files (tests/faults.py). The kill -9 test is test_faults_kill.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import engine.removal.run
import engine.sampling.device
from engine.cli.main import main
from engine.events import CancelToken, Failed
from engine.removal.batch import REPORT_NAME, BatchJob, BatchProgress, run_batch
from engine.removal.batch_plan import FolderLock, OutputRecord
from engine.removal.settings import RemovalSettings
from tests.faults import ROOT, Snapshot, one_line, photo_with_mask, save_mask, stale_temp

POSIX = pytest.mark.skipif(os.name != "posix", reason="FIFOs and symlink loops are POSIX")


def _photos(folder, masks, names=("a.png", "b.jpg", "c.png"), size=(64, 48)):
    for i, name in enumerate(names):
        stem = name.rsplit(".", 1)[0]
        src, _, _, mask = photo_with_mask(folder, name, size=size, seed=i, mask_name=None)
        save_mask(masks / f"{stem}.png", mask)


def _report(out) -> dict[str, dict]:
    data = json.loads((out / REPORT_NAME).read_text())
    return {os.path.relpath(f["source"], data["input"]): f for f in data["files"]}


def _batch(src, out, *extra, masks=None):
    args = ["batch", str(src), "-o", str(out), "--engine", "quick"]
    if masks is not None:
        args += ["--masks", str(masks)]
    return main(args + list(extra))


def _err_lines(capsys) -> list[str]:
    """stderr without progress bar lines."""
    return [line for line in capsys.readouterr().err.splitlines()
            if line.strip() and not line.lstrip().startswith("[")]


@pytest.fixture
def no_work(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the work started before the request was checked")

    monkeypatch.setattr("engine.removal.batch.load_image", refuse)
    monkeypatch.setattr(engine.removal.run, "default_loader", refuse)


# --- originals out of reach (item 1) ----------------------------------------------------

@pytest.mark.parametrize("recursive", [True, False])
def test_the_issues_nested_case_cannot_replace_an_original(tmp_path, capsys, no_work, recursive):
    # in/d.jpg and in/sub/d.jpg; output in/sub: in/d.jpg's output would be in/sub/d.jpg.
    src, masks = tmp_path / "in", tmp_path / "masks"
    _photos(src, masks, names=("d.jpg",))
    photo_with_mask(src / "sub", "d.jpg", size=(64, 48), seed=7, mask_name=None)
    snap = Snapshot(tmp_path)
    extra = ["--overwrite"] + (["--recursive"] if recursive else [])
    assert _batch(src, src / "sub", *extra, masks=masks) == 1
    assert _err_lines(capsys) == [
        f"error: the output folder {src / 'sub'} is inside the photos folder and holds photos "
        f"a batch run did not write (d.jpg); choose an output folder outside {src}, or an "
        "empty one"]
    snap.unchanged()


def test_an_output_folder_inside_the_input_works_when_it_holds_only_our_outputs(tmp_path,
                                                                               capsys):
    src, masks = tmp_path / "in", tmp_path / "masks"
    _photos(src, masks)
    out = src / "cleaned"
    snap = Snapshot(tmp_path)
    for _ in range(2):  # the rerun recognises its own outputs and skips them
        assert _batch(src, out, "--recursive", masks=masks) == 0
    assert {k: v["status"] for k, v in _report(out).items()} == dict.fromkeys(
        ["a.png", "b.jpg", "c.png"], "skipped")
    assert _batch(src, out, "--recursive", "--overwrite", masks=masks) == 0  # ours: replaced
    assert {v["status"] for v in _report(out).values()} == {"done"}
    snap.unchanged(allow_new=tuple(out / n for n in ("a.png", "b.jpg", "c.png")))


def test_overwrite_never_replaces_a_file_a_batch_run_did_not_write(tmp_path, capsys):
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _photos(src, masks)
    photo_with_mask(out, "b.jpg", seed=9, mask_name=None)  # someone's own photo, same name
    snap = Snapshot(tmp_path)
    assert _batch(src, out, "--overwrite", masks=masks) == 1
    lines = _err_lines(capsys)
    assert lines[0] == (f"failed: {src / 'b.jpg'}: {out / 'b.jpg'} exists and was not written "
                        "by a batch run, so it is kept; move it away or choose another output "
                        "folder")
    assert {k: v["status"] for k, v in _report(out).items()} == {
        "a.png": "done", "b.jpg": "failed", "c.png": "done"}
    snap.unchanged(allow_new=(out / "a.png", out / "c.png"))


@pytest.mark.parametrize(("case", "says"), [
    ("same", "error: the output folder may not be the input folder: originals are never "
             "overwritten"),
    ("masks", "error: the output folder may not be the masks folder"),
    ("file", "error: the output {out} is a file, not a folder"),
    ("no input", "error: input folder not found: {src}"),
    ("no masks", "error: masks folder not found: {masks}"),
    ("fifo mask", "error: Cannot open '{masks}': it is a pipe (FIFO), not a photo file; "
                  "choose the photo file itself."),
])
def test_bad_folders_are_one_line_before_any_work(tmp_path, capsys, no_work, case, says):
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _photos(src, masks)
    if case == "file":
        out.write_bytes(b"a file")
    target = {"same": src, "masks": masks}.get(case, out)
    snap = Snapshot(tmp_path)
    given_src = tmp_path / "nope" if case == "no input" else src
    given_masks = tmp_path / "nomasks" if case == "no masks" else masks
    if case == "fifo mask":
        if os.name != "posix":
            pytest.skip("FIFOs are POSIX")
        given_masks = tmp_path / "stamp.png"
        os.mkfifo(given_masks)
        snap = Snapshot(tmp_path)
        assert main(["batch", str(src), "-o", str(out), "--engine", "quick", "--mask",
                     str(given_masks)]) == 1
    else:
        assert _batch(given_src, target, "--overwrite", masks=given_masks) == 1
    assert _err_lines(capsys) == [says.format(out=out, src=given_src, masks=given_masks)]
    snap.unchanged()


def test_an_unavailable_device_stops_the_batch_before_any_photo(tmp_path, capsys, no_work,
                                                                monkeypatch):
    monkeypatch.setattr(engine.sampling.device, "available_devices", lambda: ["cpu"])
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _photos(src, masks)
    snap = Snapshot(tmp_path)
    assert main(["batch", str(src), "-o", str(out), "--masks", str(masks), "--device",
                 "mps"]) == 1
    assert _err_lines(capsys) == ["error: --device mps: this machine has no Apple Metal (MPS) "
                                  "device that PyTorch can use; use --device auto or cpu"]
    snap.unchanged()
    assert not out.exists()


@pytest.mark.parametrize(("option", "value"), [("--guidance", "nan"), ("--steps", "0"),
                                               ("--seed", str(2**64))])
def test_bad_numbers_stop_the_batch_in_the_parser(tmp_path, capsys, no_work, option, value):
    src, masks = tmp_path / "in", tmp_path / "masks"
    _photos(src, masks)
    snap = Snapshot(tmp_path)
    with pytest.raises(SystemExit) as info:
        _batch(src, tmp_path / "out", option, value, masks=masks)
    assert info.value.code == 2
    assert f"argument {option}: must be between" in one_line(capsys.readouterr().err)
    snap.unchanged()


# --- special files among the photos (item 5) --------------------------------------------

@POSIX
def test_special_files_among_the_photos_are_reported_and_the_run_goes_on(tmp_path, capsys):
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _photos(src, masks)
    os.mkfifo(src / "pipe.png")
    (src / "loop.png").symlink_to("loop.png")
    with open(src / "huge.png", "wb") as f:
        f.truncate(20 * 1000**3)
    for name in ("pipe", "loop", "huge"):
        save_mask(masks / f"{name}.png", np.ones((4, 4), bool))
    snap = Snapshot(tmp_path)
    assert _batch(src, out, masks=masks) == 1  # three failed, quickly: nothing hangs
    report = _report(out)
    assert {k: v["status"] for k, v in report.items()} == {
        "a.png": "done", "b.jpg": "done", "c.png": "done", "huge.png": "failed",
        "loop.png": "failed", "pipe.png": "failed"}
    assert report["pipe.png"]["message"].endswith("it is a pipe (FIFO), not a photo file; "
                                                  "choose the photo file itself.")
    assert "symbolic link that leads back to itself" in report["loop.png"]["message"]
    assert "the file is 20.0 GB" in report["huge.png"]["message"]
    failed = [line for line in _err_lines(capsys) if line.startswith("failed: ")]
    assert len(failed) == 3  # one line each
    snap.unchanged(allow_new=tuple(out / n for n in ("a.png", "b.jpg", "c.png")))


# --- masks that make no sense (item 9; issue 19, item 6) -----------------------------------

def test_masks_covering_most_of_the_photo_are_skipped_unless_inverted_or_confirmed(tmp_path,
                                                                                  capsys):
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _photos(src, masks, names=("a.png", "b.png"))
    b_mask = np.asarray(Image.open(masks / "b.png")) > 127
    save_mask(masks / "b.png", ~b_mask)  # the other convention: black marks the object
    snap = Snapshot(tmp_path)
    assert _batch(src, out, masks=masks) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if not line.startswith("[")]
    assert lines[0].startswith(f"mask too large: {src / 'b.png'}: The mask 'b.png' covers ")
    assert lines[1] == ("1 photo(s) were not cleaned because their mask covers most of the "
                        "photo. If your masks mark what to remove in black, pass "
                        "--invert-masks; to remove that much anyway, pass --allow-large-masks.")
    assert captured.out.startswith("1 done, 1 mask too large")
    assert not (out / "b.png").exists()
    # Inverted: only b runs now (a has its output), and it is cleaned where the object is.
    assert _batch(src, out, "--invert-masks", masks=masks) == 0
    assert {k: v["status"] for k, v in _report(out).items()} == {"a.png": "skipped",
                                                                  "b.png": "done"}
    got = np.asarray(Image.open(out / "b.png")).astype(int)
    orig = np.asarray(Image.open(src / "b.png")).astype(int)
    assert np.abs(got - orig)[b_mask].mean() > 20 and np.array_equal(got[:4], orig[:4])
    (out / "b.png").unlink()
    capsys.readouterr()
    assert _batch(src, out, "--allow-large-masks", masks=masks) == 0  # confirmed as it is
    assert _report(out)["b.png"]["status"] == "done"
    snap.unchanged(allow_new=(out / "a.png", out / "b.png"))


# --- leftovers and races (item 7) --------------------------------------------------------------

def test_stale_temporary_files_in_the_output_are_removed_by_the_next_run(tmp_path, capsys):
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _photos(src, masks, names=("a.png", "sub/b.png"))
    (out / "sub").mkdir(parents=True)
    dead = [stale_temp(out, "a.png"), stale_temp(out / "sub", "b.png"),
            stale_temp(out, REPORT_NAME)]
    alive = stale_temp(out, "c.png", pid=os.getppid())  # its writer is still running
    assert _batch(src, out, "--recursive", masks=masks) == 0
    assert not any(p.exists() for p in dead) and alive.exists()


def test_a_run_waiting_for_the_output_folder_can_be_cancelled(tmp_path):
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _photos(src, masks)
    held = FolderLock(out)
    assert held.acquire(1)
    cancel = CancelToken()
    events = []
    job = BatchJob(src, out, masks_dir=masks, settings=RemovalSettings(engine="quick"))
    snap = Snapshot(tmp_path)
    try:
        for e in run_batch(job, cancel):
            events.append(e)
            if isinstance(e, BatchProgress) and e.stage == "waiting":
                cancel.cancel()
    finally:
        held.release()
    assert isinstance(events[-1], Failed) and events[-1].cancelled
    assert events[-1].message == ("Cancelled while waiting for the output folder; nothing "
                                  "was written.")
    assert any(e.stage == "waiting" and str(out) in e.message for e in events
               if isinstance(e, BatchProgress))
    snap.unchanged()


def test_a_second_run_waits_and_then_skips_what_the_first_did(tmp_path):
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _photos(src, masks)
    job = BatchJob(src, out, masks_dir=masks, settings=RemovalSettings(engine="quick"))
    first = FolderLock(out)  # this test plays the first run
    assert first.acquire(1)
    events: list = []
    second = threading.Thread(target=lambda: events.extend(run_batch(job)))
    second.start()
    time.sleep(0.8)
    assert second.is_alive() and not list(out.glob("*.png"))  # waiting, touching nothing
    assert any(isinstance(e, BatchProgress) and e.stage == "waiting" for e in events)
    record = OutputRecord(out)
    for name in ("a.png", "b.jpg"):  # what the first run finished meanwhile
        record.add(out / name)
        (out / name).write_bytes((src / name).read_bytes())
    first.release()
    second.join(30)
    summary = events[-1].result
    assert {Path(o.source).name: o.status for o in summary.outcomes} == {
        "a.png": "skipped", "b.jpg": "skipped", "c.png": "done"}


def test_two_runs_on_one_output_folder_do_each_photo_once(tmp_path):
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    names = tuple(f"p{i:02d}.png" for i in range(12))
    _photos(src, masks, names=names, size=(48, 36))
    snap = Snapshot(tmp_path)
    cmd = [sys.executable, "main.py", "batch", str(src), "-o", str(out), "--masks", str(masks),
           "--engine", "quick"]
    runs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    results = [(p.wait(120), *p.communicate()) for p in runs]
    assert [code for code, _, _ in results] == [0, 0], results
    summaries = sorted(out_text.strip().splitlines()[-1] for _, out_text, _ in results)
    # One run did every photo; the other waited for it, then found them done: true reports.
    assert summaries[0].startswith("12 done in") and summaries[1].startswith("12 skipped in")
    waited = [err for _, _, err in results if "Waiting for another batch run" in err]
    assert len(waited) <= 1
    assert {v["status"] for v in _report(out).values()} <= {"done", "skipped"}
    snap.unchanged(allow_new=tuple(out / n for n in names))


def test_an_output_folder_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch):
    real_mkdir = Path.mkdir

    def read_only(self, *a, **k):  # (tests may run as root, whom chmod does not stop)
        if self.name == ".moebius-batch":
            raise PermissionError(13, "Permission denied")
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", read_only)
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    _photos(src, masks)
    snap = Snapshot(tmp_path)
    assert _batch(src, out, masks=masks) == 1
    assert _err_lines(capsys) == [f"error: cannot write to the output folder {out}: "
                                  "Permission denied"]
    snap.unchanged()
