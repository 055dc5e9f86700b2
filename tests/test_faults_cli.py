"""Fault suite, command line (`remove`): every bad request and fault gets one clear line, is
caught before any work, changes no input and leaves nothing half-written.

Each case asserts the exit code, the one line on stderr, the input files' hashes and the
absence of temporary or unwanted files (tests/faults.py).
"""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from PIL import Image

import engine.imageio.files
import engine.removal.run
import engine.sampling.device
from engine.cli.main import main
from engine.removal.composite import dilate
from tests.faults import Snapshot, one_line, photo_with_mask, run_main, save_mask, stale_temp

POSIX = pytest.mark.skipif(os.name != "posix", reason="FIFOs, devices and symlink loops are "
                           "POSIX file kinds")


@pytest.fixture
def world(tmp_path):
    src, mask, img, m = photo_with_mask(tmp_path / "in")
    (tmp_path / "out").mkdir()
    return dict(root=tmp_path, src=src, mask=mask, img=img, m=m, out=tmp_path / "out" / "o.png",
                snap=Snapshot(tmp_path))


@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if the request gets as far as decoding a photo or loading a model."""
    def refuse(*a, **k):
        raise AssertionError("the work started before the request was checked")

    monkeypatch.setattr(engine.imageio.files, "load_image", refuse)
    monkeypatch.setattr(engine.removal.run, "default_loader", refuse)


def _remove(w, *extra, image=None, mask=None, out=None):
    return main(["remove", str(image or w["src"]), "--mask", str(mask or w["mask"]),
                 "-o", str(out or w["out"]), "--engine", "quick", *extra])


def _error(capsys) -> str:
    return one_line(capsys.readouterr().err)


# --- options: argparse and RemovalSettings (item 2) -----------------------------------

@pytest.mark.parametrize(("option", "value", "says"), [
    ("--guidance", "nan", "argument --guidance: must be between 0–30, not nan"),
    ("--guidance", "inf", "argument --guidance: must be between 0–30, not inf"),
    ("--guidance", "-0.5", "argument --guidance: must be between 0–30, not -0.5"),
    ("--steps", "0", "argument --steps: must be between 1–200, not 0"),
    ("--steps", "2.5", "argument --steps: '2.5' is not a whole number"),
    ("--seed", str(2**64), f"argument --seed: must be between 0–{2**64 - 1}, not {2**64}"),
    ("--seed", "-1", f"argument --seed: must be between 0–{2**64 - 1}, not -1"),
    ("--strength", "0", "argument --strength: must be between 0.01–1, not 0"),
    ("--device", "tpu", "argument --device: unknown device 'tpu'"),
])
def test_bad_numbers_and_names_are_refused_by_the_parser(world, capsys, no_work, option, value,
                                                         says):
    with pytest.raises(SystemExit) as info:
        _remove(world, option, value)
    assert info.value.code == 2
    line = _error(capsys)
    assert says in line and "--help" in line
    world["snap"].unchanged()


def test_nan_guidance_is_refused_by_the_settings_type_too():
    from engine.errors import SettingsError
    from engine.removal.settings import RemovalSettings

    for bad in (float("nan"), float("inf"), -1.0, 31.0):
        with pytest.raises(SettingsError, match="guidance must be between 0–30"):
            RemovalSettings(guidance=bad)
    with pytest.raises(SettingsError, match="seed must be between"):
        RemovalSettings(seed=2**64)
    with pytest.raises(SettingsError, match="whole number"):
        RemovalSettings(steps=7.5)
    assert RemovalSettings(seed=2**64 - 1).seed == 2**64 - 1


def test_help_states_every_range(capsys):
    with pytest.raises(SystemExit):
        main(["remove", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for expected in ("sampling steps; 1–200 (default 20)", "0–30 (default 2.5)",
                     "0.01–1 (default 0.99)", f"0–{2**64 - 1} (default 0)", "--invert-masks",
                     "--allow-large-masks"):
        assert expected in text


# --- the device, checked before any work (item 3) --------------------------------------

def test_unavailable_device_is_one_line_before_any_work(world, capsys, no_work, monkeypatch):
    from engine.sampling import hardware

    monkeypatch.setattr(engine.sampling.device, "available_devices", lambda: ["cpu"])
    monkeypatch.setattr(hardware, "gpu_build_notice", lambda: None)  # no NVIDIA driver
    monkeypatch.setattr(hardware, "torch_build", lambda: hardware.TorchBuild("cpu"))
    code = main(["remove", str(world["src"]), "--mask", str(world["mask"]), "-o",
                 str(world["out"]), "--device", "cuda"])
    assert code == 1
    assert _error(capsys) == ("error: --device cuda: this is a CPU-only installation and this "
                              "machine has no NVIDIA driver; use --device auto or cpu")
    world["snap"].unchanged()


# --- the output, checked before any work (items 1 and 3) --------------------------------

@pytest.mark.parametrize(("target", "says"), [
    ("out/o.xyz", "'.xyz' files are not supported. Use one of .jpg"),
    ("nope/o.png", "the folder '{root}/nope' does not exist."),
    ("out", "it is a folder."),
    ("in/mask.png", "would replace the mask"),
])
def test_bad_outputs_are_refused_before_any_work(world, capsys, no_work, target, says):
    out = world["root"] / target
    extra = ["--overwrite"] if "mask" in target else []
    assert _remove(world, *extra, out=out) == 1
    assert says.format(root=world["root"]) in _error(capsys)
    world["snap"].unchanged()


def test_an_existing_output_or_the_input_needs_overwrite(world, capsys, no_work):
    world["out"].write_bytes(b"keep me")
    snap = Snapshot(world["root"])
    assert _remove(world) == 1
    assert "already exists; pass --overwrite" in _error(capsys)
    assert _remove(world, out=world["src"]) == 1
    assert "it would replace the input photo; pass --overwrite" in _error(capsys)
    snap.unchanged()


def test_a_folder_that_cannot_be_written_is_found_before_the_work(world, capsys, no_work,
                                                                  monkeypatch):
    real = os.access
    monkeypatch.setattr("engine.imageio.checks.os.access",
                        lambda p, mode: False if mode & os.W_OK else real(p, mode))
    assert _remove(world) == 1
    assert _error(capsys).endswith("is read-only for you. Save somewhere else.")
    world["snap"].unchanged()


# --- special and broken input files (item 5) --------------------------------------------

def _make(kind: str, root) -> tuple[object, str]:
    """A bad input of `kind` and the end of the sentence that must name it."""
    path = root / "in" / f"bad-{kind}.png"
    if kind == "fifo":
        os.mkfifo(path)
        return path, "it is a pipe (FIFO), not a photo file; choose the photo file itself."
    if kind == "device":
        return "/dev/zero", "it is a device, not a photo file; choose the photo file itself."
    if kind == "sparse":
        with open(path, "wb") as f:
            f.truncate(20 * 1000**3)  # sparse: no disk used
        return path, "the file is 20.0 GB, larger than any photo Moebius Studio opens"
    if kind == "loop":
        path.symlink_to(path.name)
        return path, "it is a symbolic link that leads back to itself (a loop)"
    if kind == "dangling":
        path.symlink_to("gone.png")
        return path, "it is a link to 'gone.png', which does not exist."
    if kind == "empty":
        path.write_bytes(b"")
        return path, "the file is empty (0 bytes)."
    if kind == "folder":
        path.mkdir()
        return path, "it is a folder, not an image file."
    if kind == "gif":
        Image.new("RGB", (8, 8)).save(path, format="GIF")
        return path, "GIF images are not supported. Convert it to PNG or JPEG first."
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", [
    pytest.param("fifo", marks=POSIX), pytest.param("device", marks=POSIX), "sparse",
    pytest.param("loop", marks=POSIX), pytest.param("dangling", marks=POSIX), "empty",
    "folder", "gif",
])
@pytest.mark.parametrize("role", ["photo", "mask"])
def test_special_files_get_one_line_before_any_work(world, capsys, no_work, kind, role):
    bad, says = _make(kind, world["root"])
    snap = Snapshot(world["root"])
    code = _remove(world, **{"image" if role == "photo" else "mask": bad})
    assert code == 1
    assert _error(capsys).startswith(f"error: Cannot open '{bad}': {says}")
    snap.unchanged()


@POSIX
def test_an_output_that_is_a_link_loop_is_refused(world, capsys, no_work):
    loop = world["root"] / "out" / "loop.png"
    loop.symlink_to("loop.png")
    assert _remove(world, "--overwrite", out=loop) == 1
    assert _error(capsys) == (f"error: Cannot save '{loop}': it is a symbolic link that leads "
                              "back to itself (a loop); remove it or choose another name.")
    assert loop.is_symlink()
    world["snap"].unchanged()


def test_a_truncated_png_is_one_line_without_a_false_exif_warning(world, capsys, caplog):
    data = world["src"].read_bytes()
    cut = world["root"] / "in" / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    snap = Snapshot(world["root"])
    assert _remove(world, image=cut) == 1
    line = _error(capsys)
    assert line.startswith(f"error: Cannot open '{cut}': the PNG file is damaged or incomplete")
    assert not caplog.records  # no "ignoring damaged EXIF data": the EXIF was never the issue
    snap.unchanged()


# --- masks (items 8 and 9) -----------------------------------------------------------------

def test_a_mask_covering_most_of_the_photo_is_refused_with_the_way_out(world, capsys):
    white = save_mask(world["root"] / "in" / "white.png", np.ones((72, 96), bool))
    snap = Snapshot(world["root"])
    assert _remove(world, mask=white) == 1
    assert _error(capsys) == (
        "error: The mask 'white.png' covers 100% of 'photo.png', more than half, so it was "
        "not used. If your masks mark what to remove in black, pass --invert-masks; to "
        "remove that much anyway, pass --allow-large-masks.")
    assert _remove(world, "--invert-masks", mask=white) == 1
    assert _error(capsys) == ("error: The mask 'white.png' marks nothing to remove in "
                              "'photo.png': it has no black pixels.")
    snap.unchanged()


def test_the_photo_itself_as_its_mask_is_refused(world, capsys, no_work):
    assert _remove(world, mask=world["src"]) == 1
    assert "is the photo itself" in _error(capsys)
    world["snap"].unchanged()


def test_inverted_and_confirmed_large_masks_are_used(world, capsys):
    inverted = save_mask(world["root"] / "in" / "inv.png", ~world["m"])
    assert _remove(world, "--invert-masks", mask=inverted) == 0
    capsys.readouterr()
    out = np.asarray(Image.open(world["out"]))
    far = ~dilate(world["m"], 33)
    assert np.array_equal(out[far], world["img"][far]) and (out != world["img"])[world["m"]].any()
    big = np.zeros_like(world["m"])
    big[:, :70] = True  # 73 % of the photo
    large = save_mask(world["root"] / "in" / "large.png", big)
    assert _remove(world, "--overwrite", mask=large) == 1
    assert "covers 73%" in _error(capsys)
    assert _remove(world, "--overwrite", "--allow-large-masks", mask=large) == 0
    world["snap"].unchanged(allow_new=(world["out"], inverted, large))


def test_a_half_size_mask_is_scaled_not_refused(world, capsys):
    half = save_mask(world["root"] / "in" / "half.png", world["m"][::2, ::2])
    assert _remove(world, mask=half) == 0
    out = np.asarray(Image.open(world["out"]))
    far = ~dilate(world["m"], 33)
    assert np.array_equal(out[far], world["img"][far]) and (out != world["img"])[world["m"]].any()
    world["snap"].unchanged(allow_new=(world["out"], half))


def test_a_mask_of_another_shape_says_what_size_it_must_be(world, capsys):
    odd = save_mask(world["root"] / "in" / "odd.png", np.ones((10, 10), bool))
    assert _remove(world, mask=odd) == 1
    assert _error(capsys) == ("error: The mask 'odd.png' is 10 × 10 pixels but the image is "
                              "96 × 72 pixels; their shapes differ, so it cannot be scaled to "
                              "fit: make the mask 96 × 72 pixels.")
    world["snap"].unchanged(allow_new=(odd,))


def test_a_mask_in_the_stored_orientation_of_a_turned_jpeg_is_turned_too(tmp_path, caplog):
    _, _, stored, mask_stored = photo_with_mask(tmp_path, size=(96, 64), mask_name=None)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise: 64 × 96
    src = tmp_path / "turned.jpg"
    Image.fromarray(stored).save(src, quality=95, exif=exif.tobytes())
    mask = save_mask(tmp_path / "stored-mask.png", mask_stored)  # 96 × 64, as stored
    out = tmp_path / "out.png"
    snap = Snapshot(tmp_path)
    assert main(["remove", str(src), "--mask", str(mask), "-o", str(out), "--engine",
                 "quick"]) == 0
    assert "The mask 'stored-mask.png' matches the photo as stored, before its EXIF rotation; " \
        "it was turned like the photo." in caplog.messages
    got = np.asarray(Image.open(out)).astype(int)
    upright = np.rot90(stored, -1).astype(int)  # what the photo shows
    m = np.rot90(mask_stored, -1)
    far = ~dilate(m, 33)
    assert got.shape == upright.shape
    assert np.abs(got - upright)[far].mean() < 3  # JPEG noise only, outside the mask
    assert np.abs(got - upright)[m].mean() > 20  # the red object is gone where it was
    snap.unchanged(allow_new=(out,))


# --- faults while saving (items 7 and 8) -------------------------------------------------

@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("name", ["o.tif", "o.png", "o.jpg"])
def test_a_full_disk_is_one_line_and_leaves_nothing(world, capfd, monkeypatch, name):
    real_open = os.open

    def full_disk(path, flags, mode=0o777, **kw):  # the temporary file lands on a full disk
        if str(path).endswith(".tmp"):
            return real_open("/dev/full", os.O_RDWR)
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr("engine.imageio.write.os.open", full_disk)
    out = world["root"] / "out" / name
    assert _remove(world, out=out) == 1
    captured = capfd.readouterr()  # the file descriptor: libtiff writes there directly
    lines = [line for line in captured.err.splitlines() if line and "[" not in line]
    assert lines == [f"error: Cannot save '{out}': the disk is full. Free some space or save "
                     "somewhere else."]
    assert "TIFF" not in captured.err and "encoder error" not in captured.err
    world["snap"].unchanged()


def test_stale_temporary_files_of_a_killed_save_are_removed_by_the_next_run(world, capsys):
    folder = world["root"] / "out"
    stale = stale_temp(folder, "o.png")
    live = stale_temp(folder, "o.png", pid=os.getppid())  # a running process: still working
    unrelated = folder / ".notes.txt.tmp"
    unrelated.write_text("not ours")
    assert _remove(world) == 0
    assert not stale.exists() and live.exists() and unrelated.exists()
    live.unlink(), unrelated.unlink()
    world["snap"].unchanged(allow_new=(world["out"],))


def test_an_unexpected_error_is_still_one_line(world, capsys, monkeypatch):
    def broken(*a, **k):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(engine.imageio.files, "load_image", broken)
    assert _remove(world) == 1
    assert _error(capsys) == ("error: unexpected OSError: [Errno 5] Input/output error; run "
                              "with -v for details")
    world["snap"].unchanged()


# --- global options before the command (item 6) --------------------------------------------

def test_verbose_before_the_command_runs_the_command_line(world):
    proc = run_main("-v", "remove", str(world["src"]), "--mask", str(world["mask"]), "-o",
                    str(world["out"]), "--engine", "quick")
    assert proc.returncode == 0, proc.stderr
    assert "INFO engine.imageio.files: saved o.png" in proc.stderr  # -v took effect
    assert world["out"].is_file()
    proc = run_main("--verbose", "models", "--models-dir", str(world["root"] / "m"), "list")
    assert proc.returncode == 0 and "Models folder:" in proc.stdout
    proc = run_main("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("moebius-studio ")
    proc = run_main("-v", "remove", str(world["src"]), "--frobnicate")
    assert proc.returncode == 2
    # A checkout names the command as `python main.py` (engine.about.command_line).
    assert one_line(proc.stderr) == ("python main.py remove: error: the following arguments "
                                     "are required: --mask, -o/--output (see python main.py "
                                     "remove --help)")
    world["snap"].unchanged(allow_new=(world["out"],))


def test_help_lists_the_global_options():
    proc = run_main("--help")
    assert proc.returncode == 0
    assert "-v, --verbose" in proc.stdout and "--version" in proc.stdout
    assert "{remove,batch,models}" in proc.stdout
