"""Every way a JPEG is saved keeps its untouched blocks unless asked not to: the command
line's `remove` and `batch` (`--reencode-jpeg`), batch jobs, and the app (Preferences:
"Re-encode the whole JPEG"), with the note in the CLI output and the status bar."""

from __future__ import annotations

import io
import json

import jpeglib
import numpy as np
import pytest
from PIL import Image

from engine.cli.main import main
from engine.removal.batch import REPORT_NAME
from tests.photos import scene, with_object

BOX = (60, 40, 100, 70)  # the object, x0, y0, x1, y1: far from the bottom-right corner
FAR = (slice(112, None), slice(160, None))  # MCUs well away from any removal of BOX


# A camera's own quantization tables: a whole re-encode can only approximate them with
# libjpeg's scaled standard tables, so it changes the coefficients of every block.
CAMERA_TABLES = [[2 + (i * 7) % 9 for i in range(64)], [3 + (i * 5) % 11 for i in range(64)]]


def _coefficients(path) -> list[np.ndarray]:
    jpeg = jpeglib.read_dct(str(path))
    return [jpeg.Y, jpeg.Cb, jpeg.Cr]


def _far_blocks_kept(src, out) -> bool:
    """True if the coefficients of the bottom-right part are the source's, block for block."""
    blocks = (slice(FAR[0].start // 16, None), slice(FAR[1].start // 16, None))  # 4:2:0 chroma
    luma = (slice(FAR[0].start // 8, None), slice(FAR[1].start // 8, None))
    a, b = _coefficients(src), _coefficients(out)
    return (np.array_equal(a[0][luma], b[0][luma])
            and all(np.array_equal(x[blocks], y[blocks]) for x, y in zip(a[1:], b[1:],
                                                                          strict=True)))


@pytest.fixture
def jpeg_and_mask(tmp_path):
    img, mask = with_object(scene(256, 192, seed=4), BOX)
    src = tmp_path / "photo.jpg"
    Image.fromarray(img).save(src, qtables=CAMERA_TABLES, comment=b"kept")
    mpath = tmp_path / "mask.png"
    Image.fromarray(mask.astype(np.uint8) * 255).save(mpath)
    return src, mpath


@pytest.mark.parametrize("reencode", [False, True])
def test_remove_keeps_blocks_unless_asked_and_says_so(jpeg_and_mask, tmp_path, capsys,
                                                      reencode):
    src, mpath = jpeg_and_mask
    out = tmp_path / "out.jpg"
    args = ["remove", str(src), "--mask", str(mpath), "-o", str(out), "--engine", "quick"]
    assert main(args + (["--reencode-jpeg"] if reencode else [])) == 0
    printed = capsys.readouterr().out
    if reencode:
        assert "the whole JPEG was re-encoded: re-encoding the whole JPEG was asked for" in printed
        assert not _far_blocks_kept(src, out)
    else:
        assert "% of the JPEG's blocks as they were" in printed
        assert _far_blocks_kept(src, out)
        assert b"kept" in out.read_bytes()  # the comment segment came along


def test_batch_keeps_blocks_and_reports_fallbacks(tmp_path, capsys):
    photos, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    photos.mkdir()
    masks.mkdir()
    img, mask = with_object(scene(256, 192, seed=5), BOX)
    Image.fromarray(img).save(photos / "plain.jpg", qtables=CAMERA_TABLES)
    Image.fromarray(img).convert("CMYK").save(photos / "print.jpg", quality=90)
    for name in ("plain", "print"):
        Image.fromarray(mask.astype(np.uint8) * 255).save(masks / f"{name}.png")
    assert main(["batch", str(photos), "-o", str(out), "--masks", str(masks),
                 "--engine", "quick"]) == 0
    err = capsys.readouterr().err
    assert "note: " in err and "print.jpg: the whole JPEG was re-encoded: it is a CMYK" in err
    assert "plain.jpg: the whole" not in err  # kept blocks is the rule: nothing to say
    assert _far_blocks_kept(photos / "plain.jpg", out / "plain.jpg")
    files = {f["source"].rsplit("/", 1)[-1]: f for f in
             json.loads((out / REPORT_NAME).read_text())["files"]}
    assert files["print.jpg"]["note"].startswith("the whole JPEG was re-encoded")
    assert files["plain.jpg"]["note"] == "" and files["plain.jpg"]["status"] == "done"

    again = tmp_path / "again"
    assert main(["batch", str(photos), "-o", str(again), "--masks", str(masks),
                 "--engine", "quick", "--reencode-jpeg"]) == 0
    assert "note: " not in capsys.readouterr().err  # asked for: not a fallback
    assert not _far_blocks_kept(photos / "plain.jpg", again / "plain.jpg")


# --- The app -------------------------------------------------------------------------


@pytest.mark.gui
def test_preferences_turn_block_keeping_off(qtbot, settings):
    from app.windows.dialogs import PreferencesDialog

    assert settings.reencode_jpeg is False  # keeping blocks is the default
    dialog = PreferencesDialog(settings)
    qtbot.addWidget(dialog)
    assert dialog.reencode_jpeg.text() == "Re-encode the whole JPEG"
    assert not dialog.reencode_jpeg.isChecked()
    dialog.reencode_jpeg.setChecked(True)
    dialog.accept()
    assert settings.reencode_jpeg is True
    dialog = PreferencesDialog(settings)
    qtbot.addWidget(dialog)
    assert dialog.reencode_jpeg.isChecked()


@pytest.mark.gui
@pytest.mark.parametrize("reencode", [False, True])
def test_app_export_follows_the_preference_and_shows_the_note(qtbot, settings, tiny_store,
                                                              jpeg_and_mask, tmp_path,
                                                              monkeypatch, reencode):
    from PySide6.QtWidgets import QFileDialog

    from app.windows.main_window import MainWindow

    src, _ = jpeg_and_mask
    settings.reencode_jpeg = reencode
    window = MainWindow(settings, store=tiny_store)
    window.show()
    try:
        window.open_path(src)
        window.canvas.fillRect(*BOX)
        window.set_engine_choice("quick")
        with qtbot.waitSignal(window.jobs.finished, timeout=60000):
            window.remove()
        target = tmp_path / "export.jpg"
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
        assert window.export()
        message = window.statusBar().currentMessage()
        assert message.startswith(f"Saved {target}")
        if reencode:
            assert "the whole JPEG was re-encoded" in message
            assert not _far_blocks_kept(src, target)
        else:
            assert "% of the JPEG's blocks as they were" in message
            assert _far_blocks_kept(src, target)
        shown = np.asarray(Image.open(io.BytesIO(target.read_bytes())).convert("RGB"), int)
        assert np.abs(shown - np.array(window.canvas.document().pixels, int)).mean() < 3
    finally:
        window.canvas.history.setClean()
        window.close()
        window.worker.shutdown()
        window.deleteLater()
