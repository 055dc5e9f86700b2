"""The one-image command line: `python main.py remove IMAGE --mask MASK -o OUT ...`."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from engine.cli.main import main
from engine.removal.composite import dilate
from tests.photos import red_fraction, scene, with_object

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


@pytest.fixture
def photo_and_mask(tmp_path):
    img, mask = with_object(scene(640, 480), (300, 200, 380, 260))
    src = tmp_path / "photo.png"
    Image.fromarray(img).save(src)
    mpath = tmp_path / "mask.png"
    Image.fromarray(mask.astype(np.uint8) * 255).save(mpath)
    return src, mpath, img, mask


def _check_output(out_path, img, mask):
    out = np.asarray(Image.open(out_path))
    assert out.shape == img.shape
    outside = ~dilate(mask, 33)
    assert np.array_equal(out[outside], img[outside])
    return out


def test_quick_removal_writes_the_photo(photo_and_mask, tmp_path, capsys):
    src, mpath, img, mask = photo_and_mask
    out_path = tmp_path / "out.png"
    assert main(["remove", str(src), "--mask", str(mpath), "-o", str(out_path),
                 "--engine", "quick"]) == 0
    out = _check_output(out_path, img, mask)
    assert red_fraction(out, mask) < 0.02
    assert "1 region" in capsys.readouterr().out


def test_moebius_removal_through_the_real_entry_point(photo_and_mask, tmp_path,
                                                      tiny_models_dir):
    src, mpath, img, mask = photo_and_mask
    out_path = tmp_path / "out.png"
    proc = subprocess.run(
        [sys.executable, "main.py", "remove", str(src), "--mask", str(mpath), "-o",
         str(out_path), "--model", "places2", "--steps", "3", "--seed", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[" in proc.stderr and "100%" in proc.stderr  # the progress bar
    _check_output(out_path, img, mask)
    assert (np.asarray(Image.open(out_path)) != img)[mask].any()


def test_missing_weights_fail_with_instructions(photo_and_mask, tmp_path, monkeypatch, capsys):
    src, mpath, _, _ = photo_and_mask
    monkeypatch.setenv("MOEBIUS_MODELS_DIR", str(tmp_path / "empty"))
    code = main(["remove", str(src), "--mask", str(mpath), "-o", str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert code == 1
    assert "models download" in err and "--engine quick" in err
    assert not (tmp_path / "o.png").exists()


def test_wrong_mask_size_is_refused(photo_and_mask, tmp_path, capsys):
    src, _, _, _ = photo_and_mask
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(small)
    code = main(["remove", str(src), "--mask", str(small), "-o", str(tmp_path / "o.png"),
                 "--engine", "quick"])
    assert code == 1
    err = capsys.readouterr().err.strip()
    h, w = np.asarray(Image.open(src)).shape[:2]
    assert "\n" not in err and err.startswith("error: The mask 'small.png' is 10 × 10 pixels "
                                               f"but the image is {w} × {h} pixels")
    assert not (tmp_path / "o.png").exists()


def test_output_is_never_the_input_unless_asked(photo_and_mask, capsys):
    src, mpath, _, _ = photo_and_mask
    before = src.read_bytes()
    code = main(["remove", str(src), "--mask", str(mpath), "-o", str(src), "--engine", "quick"])
    assert code == 1 and "--overwrite" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_existing_output_needs_overwrite(photo_and_mask, tmp_path):
    src, mpath, _, _ = photo_and_mask
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    assert main(["remove", str(src), "--mask", str(mpath), "-o", str(out),
                 "--engine", "quick"]) == 1
    assert out.read_bytes() == b"keep me"
    assert main(["remove", str(src), "--mask", str(mpath), "-o", str(out),
                 "--engine", "quick", "--overwrite"]) == 0
    assert out.read_bytes() != b"keep me"


def test_corrupt_image_gives_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    mask = tmp_path / "m.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(mask)
    assert main(["remove", str(bad), "--mask", str(mask), "-o", str(tmp_path / "o.jpg")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err  # one line, no traceback
    assert err.startswith(f"error: Cannot open '{bad}': the JPEG file is damaged or incomplete")
    assert not (tmp_path / "o.jpg").exists()


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("remove", "batch", "models"):
        assert command in out
