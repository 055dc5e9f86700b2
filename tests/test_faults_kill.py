"""Fault injection: a 40-photo Quick batch killed with SIGKILL at random points, then rerun.

Proves what the README's *Reliability* section promises for batch cleaning: whatever the
moment of the kill, every photo ends up done exactly once (an output, once written, is
never written again: its inode and time stay the same across every later run), every
output decodes and shows the removal, the originals never change, and no temporary file
survives the run that follows a kill.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from engine.imageio.files import load_image
from engine.removal.composite import dilate
from tests.faults import ROOT, Snapshot, temporaries
from tests.photos import red_fraction, scene, with_object

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is a POSIX signal")

COUNT = 40
KILLS = 3  # per seed; then one run that is left to finish
FORMATS = (".png", ".jpg", ".tif", ".bmp", ".webp")


def _folder(tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir(), masks.mkdir()
    truth = {}
    for i in range(COUNT):
        name = f"p{i:02d}{FORMATS[i % len(FORMATS)]}"
        img, mask = with_object(scene(256, 192, seed=i), (112, 84, 144, 108))
        kw = {"quality": 95} if name.endswith(".jpg") else {}
        kw |= {"lossless": True} if name.endswith(".webp") else {}
        Image.fromarray(img).save(src / name, **kw)
        Image.fromarray(mask.astype(np.uint8) * 255).save(masks / f"p{i:02d}.png")
        truth[name] = (np.asarray(Image.open(src / name).convert("RGB")), mask)
    return src, masks, truth


def _start(src, out, masks) -> tuple[subprocess.Popen, queue.Queue]:
    proc = subprocess.Popen(
        [sys.executable, "main.py", "batch", str(src), "-o", str(out), "--masks", str(masks),
         "--engine", "quick"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()

    def read():
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def _kill_at_random(proc, lines: queue.Queue, rng: random.Random) -> bool:
    """Kill the run after a random number of its progress lines (one per tenth of the work
    left) plus a random few milliseconds; False if it finished first."""
    wanted = rng.randint(1, 7)  # (each tenth takes ~20 ms here)
    seen = 0
    while seen < wanted:
        line = lines.get(timeout=120)
        if line is None:
            return False
        seen += "%" in line
    threading.Event().wait(rng.uniform(0, 0.025))
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return proc.returncode == -signal.SIGKILL


def _check_outputs(out, truth, seen: dict) -> None:
    """Every output there is complete and is the very file first seen (never rewritten)."""
    for path in sorted(out.iterdir()):
        if path.name.startswith(".") or path.suffix not in FORMATS:
            continue
        st = path.stat()
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        assert seen.setdefault(path.name, identity) == identity, f"{path.name} written twice"
        load_image(path)  # decodes whole: no truncated output


@pytest.mark.parametrize("seed", [11, 23, 47])
def test_killed_batch_runs_do_every_photo_exactly_once(tmp_path, seed):
    rng = random.Random(seed)
    src, masks, truth = _folder(tmp_path)
    out = tmp_path / "out"
    originals = Snapshot(src)
    seen: dict = {}
    kills = runs = 0
    while kills < KILLS and runs < 3 * KILLS:  # (a run may finish before its kill lands)
        proc, lines = _start(src, out, masks)
        kills += _kill_at_random(proc, lines, rng)
        runs += 1
        if proc.poll() is None:
            proc.wait(120)
        _check_outputs(out, truth, seen)
    assert kills >= 2
    proc, lines = _start(src, out, masks)
    assert proc.wait(180) == 0
    _check_outputs(out, truth, seen)

    assert not temporaries(out)  # the last run removed what the killed ones left
    assert set(seen) == set(truth) and len(seen) == COUNT
    for name, (img, mask) in truth.items():
        got = np.asarray(Image.open(out / name).convert("RGB"))
        far = ~dilate(mask, 33)
        if name.endswith(".jpg"):  # re-encoded at the source's quality
            assert np.abs(got.astype(int) - img.astype(int))[far].mean() < 2.0, name
        else:
            assert np.array_equal(got[far], img[far]), name
        assert red_fraction(got, mask) < 0.05, name
    originals.unchanged()
