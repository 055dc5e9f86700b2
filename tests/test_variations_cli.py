"""`--variations N` on the command line: N files, each with its seed."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from engine.cli.main import main
from engine.removal.batch import REPORT_NAME
from tests.photos import scene, with_object


def _photo(folder, name="photo.png"):
    img, mask = with_object(scene(320, 240), (140, 100, 180, 140))
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(folder / name)
    return img, mask


def test_remove_writes_one_file_per_variation_and_prints_its_seed(tmp_path, tiny_models_dir,
                                                                    capsys):
    img, mask = _photo(tmp_path)
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    assert main(["remove", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "mask.png"),
                 "-o", str(out), "--steps", "2", "--seed", "4", "--variations", "2"]) == 0
    assert not out.exists()
    first, second = (np.asarray(Image.open(tmp_path / f"out-{k}.png")) for k in (1, 2))
    assert not np.array_equal(first, second)
    for got in (first, second):
        assert np.array_equal(got[~mask], img[~mask])
    printed = capsys.readouterr().out
    assert "out-1.png" in printed and "seed 4" in printed
    assert "out-2.png" in printed and "seed 5" in printed


def test_batch_writes_variations_into_a_folder_per_photo_with_seeds_in_the_report(
        tmp_path, tiny_models_dir):
    _, mask = _photo(tmp_path / "in", "a.png")
    (tmp_path / "masks").mkdir()
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "masks" / "a.png")
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "in"), "-o", str(out), "--masks",
                 str(tmp_path / "masks"), "--steps", "2", "--seed", "7",
                 "--variations", "3"]) == 0
    assert sorted(p.name for p in (out / "a").iterdir()) == ["a-1.png", "a-2.png", "a-3.png"]
    (entry,) = json.loads((out / REPORT_NAME).read_text())["files"]
    assert entry["status"] == "done" and entry["seed"] == 7
    assert [(v["output"].split("/")[-1], v["seed"]) for v in entry["variations"]] == [
        ("a-1.png", 7), ("a-2.png", 8), ("a-3.png", 9)]


def test_a_rerun_skips_photos_whose_variations_all_exist(tmp_path, tiny_models_dir):
    for name in ("a.png", "b.png"):
        _, mask = _photo(tmp_path / "in", name)
    (tmp_path / "masks").mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "masks" / name)
    out = tmp_path / "out"
    args = ["batch", str(tmp_path / "in"), "-o", str(out), "--masks", str(tmp_path / "masks"),
            "--steps", "2", "--seed", "7", "--variations", "2"]
    assert main(args) == 0
    kept = (out / "a" / "a-1.png").stat().st_mtime_ns
    (out / "b" / "b-2.png").unlink()  # b was stopped half-way: it is cleaned again
    assert main(args) == 0
    report = json.loads((out / REPORT_NAME).read_text())
    files = {Path(e["source"]).name: e for e in report["files"]}
    assert files["a.png"]["status"] == "skipped" and files["b.png"]["status"] == "done"
    assert (out / "a" / "a-1.png").stat().st_mtime_ns == kept
    assert sorted(p.name for p in (out / "b").iterdir()) == ["b-1.png", "b-2.png"]
