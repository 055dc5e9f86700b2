"""The fine-tune suggestion (engine/removal/faces.py, suggest.py): a real face photograph,
scenes without faces, the rule, `models suggest` and `batch --model auto`.

The face photograph is scikit-image's `astronaut` (Eileen Collins, a NASA photograph in
the public domain), shipped inside scikit-image: nothing is downloaded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from skimage import data

from engine.cli.main import main
from engine.events import Done
from engine.removal.batch import BatchJob, run_batch
from engine.removal.faces import Face, detect_faces
from engine.removal.run import EngineHost
from engine.removal.settings import RemovalSettings
from engine.removal.suggest import AUTO, CLOSE_UP, PORTRAIT, choose_variant, suggest
from tests.photos import scene


def astronaut() -> np.ndarray:
    return data.astronaut()  # 512 x 512 RGB, a head-and-shoulders portrait


def close_up() -> np.ndarray:
    """The astronaut's face cropped tight, as CelebA-HQ's training crops are."""
    return astronaut()[40:280, 105:345]


def test_the_astronaut_portrait_calls_for_the_faces_fine_tune():
    found = suggest(astronaut())
    assert found.variant == "ft_ffhq" and found.is_portrait
    (face,) = found.faces
    x0, y0, x1, y1 = face.box
    assert 150 < (x0 + x1) / 2 < 300 and 60 < (y0 + y1) / 2 < 200  # where her face is
    assert PORTRAIT <= face.size < CLOSE_UP
    assert "head-and-shoulders" in found.reason and "%" in found.reason


def test_a_tight_crop_of_the_face_calls_for_celebahq():
    found = suggest(close_up())
    assert found.variant == "ft_celebahq"
    assert found.faces[0].size >= CLOSE_UP and "close-up" in found.reason


@pytest.mark.parametrize("name", ["coffee", "rocket", "chelsea", "camera"])
def test_scenes_without_faces_keep_places(name):
    pixels = getattr(data, name)()
    found = suggest(pixels)
    assert found.variant == "ft_places2" and not found.is_portrait
    assert not found.improves_on("ft_places2")


def test_a_big_sixteen_bit_photo_is_scanned_at_a_small_size():
    big = np.repeat(np.repeat(astronaut(), 6, axis=0), 6, axis=1).astype(np.uint16) * 257
    faces = detect_faces(big)
    assert faces and 450 < faces[0].box[2] - faces[0].box[0] < 750  # in the big photo's pixels
    assert suggest(scene(3000, 2000, seed=4)).variant == "ft_places2"


def test_the_rule():
    def faces(*sizes):
        return [Face((0, 0, 10, 10), s) for s in sizes]

    assert choose_variant([]).variant == "ft_places2"
    assert choose_variant(faces(0.13, 0.12)).variant == "ft_places2"  # people in a scene
    assert choose_variant(faces(0.2)).variant == "ft_ffhq"
    assert choose_variant(faces(0.5)).variant == "ft_celebahq"
    assert choose_variant(faces(0.5, 0.3)).variant == "ft_ffhq"  # two people: not one face
    assert choose_variant(faces(0.5, 0.1)).variant == "ft_celebahq"  # someone far behind
    portrait = choose_variant(faces(0.5))
    assert portrait.improves_on("ft_places2") and portrait.improves_on("pretrained")
    assert not portrait.improves_on("quick") and not portrait.improves_on("ft_ffhq")


def test_models_suggest_prints_the_variant_and_why(tmp_path, capsys):
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut()).save(path)
    assert main(["models", "suggest", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("ffhq")
    assert "why:" in out and "head-and-shoulders" in out and "face at" in out
    scene_path = tmp_path / "coffee.jpg"
    Image.fromarray(data.coffee()).save(scene_path)
    assert main(["models", "suggest", str(scene_path)]) == 0
    assert capsys.readouterr().out.startswith("places2")
    assert main(["models", "suggest", str(tmp_path / "missing.jpg")]) == 1


def test_batch_with_model_auto_picks_per_photo_and_reports_it(tmp_path, tiny_inpainter):
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    src.mkdir()
    masks.mkdir()
    photos = {"astronaut.png": astronaut(), "close.png": close_up(),
              "street.png": scene(320, 240, seed=2)}
    for name, pixels in photos.items():
        Image.fromarray(pixels).save(src / name)
        mask = np.zeros(pixels.shape[:2], np.uint8)
        mask[5:25, 5:25] = 255  # a corner, away from the faces
        Image.fromarray(mask).save(masks / name)
    loaded = []

    def loader(variant, placement):
        loaded.append(variant)
        return tiny_inpainter

    settings = RemovalSettings(engine="moebius", variant=AUTO, steps=2, device="cpu")
    events = list(run_batch(BatchJob(src, out, masks_dir=masks, settings=settings), None,
                            EngineHost(loader=loader)))
    assert isinstance(events[-1], Done) and events[-1].result.ok
    report = json.loads((out / "moebius-batch-report.json").read_text())
    chosen = {f["source"].rsplit("/", 1)[-1]: f for f in report["files"]}
    assert chosen["astronaut.png"]["model"] == "ft_ffhq"
    assert chosen["close.png"]["model"] == "ft_celebahq"
    assert chosen["street.png"]["model"] == "ft_places2"
    assert "head-and-shoulders" in chosen["astronaut.png"]["model_reason"]
    assert report["settings"]["variant"] == AUTO
    assert sorted(loaded) == ["ft_celebahq", "ft_ffhq", "ft_places2"]
    for name in photos:
        assert (out / name).is_file()


def test_cli_accepts_model_auto(tmp_path, capsys):
    from engine.cli.main import build_parser

    args = build_parser().parse_args(["batch", "in", "-o", "out", "--mask", "m.png",
                                      "--model", "auto"])
    assert args.variant == AUTO
    # With the Quick engine the fine-tune does not matter: no detection, no model.
    src = tmp_path / "a.png"
    Image.fromarray(astronaut()).save(src)
    mask = np.zeros((512, 512), np.uint8)
    mask[:20, :20] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert main(["remove", str(src), "--mask", str(tmp_path / "m.png"), "-o",
                 str(tmp_path / "o.png"), "--engine", "quick", "--model", "auto"]) == 0
    assert (tmp_path / "o.png").is_file()
