"""Model ▸ Manage models… and the missing-weights dialog (issue 19, items 2 and 3), driven
against the fake hub on 127.0.0.1 with the tiny models."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox

from app.jobs.worker import Worker
from app.settings import Settings
from app.windows.model_dialog import ModelDialog
from app.windows.model_manager import ModelManager
from engine.removal.run import EngineHost
from engine.weights import zoo
from engine.weights.state import Status
from engine.weights.store import WeightStore
from tests.fakehub import free_port

pytestmark = pytest.mark.gui

UNET_FFHQ = "ft_ffhq/diffusion_pytorch_model.bin"
JARGON = ("python main.py", "HF_ENDPOINT", "Errno", "DNS", "models import", "models verify")


@pytest.fixture
def store(tmp_path, reference_dir) -> WeightStore:
    from engine.net.config import MoebiusConfig

    return WeightStore(tmp_path / "models", config=MoebiusConfig.tiny(),
                       vae_config=reference_dir / "tiny_vae" / "config.json")


@pytest.fixture
def worker(qtbot):
    w = Worker(EngineHost())
    yield w
    w.shutdown()


@pytest.fixture
def manager(qtbot, store, worker):
    m = ModelManager(store, worker)
    qtbot.addWidget(m)
    return m


def _wait(qtbot, panel, timeout=60000):
    qtbot.waitUntil(lambda: not panel.busy, timeout=timeout)


def test_every_model_with_its_state_size_and_use(manager, store, tiny_weights):
    rows = {e.id: manager.row_text(e.id) for e in zoo.entries()}
    assert len(rows) == 5
    assert all(r[1] == "not installed" and r[2] == "—" for r in rows.values())
    assert rows["vae"][0] == "Autoencoder (shared)"
    assert rows["ft_places2"][3] == zoo.resolve("ft_places2").description
    store.import_weights("ft_places2", tiny_weights)
    partial = store.folder("ft_ffhq") / ".incoming" / "diffusion_pytorch_model.bin.x.part"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\0" * 3_000_000)
    copied = store.folder("ft_celebahq") / "diffusion_pytorch_model.bin"
    copied.parent.mkdir(parents=True)
    copied.write_bytes(tiny_weights.read_bytes())
    manager.refresh()
    places = manager.row_text("ft_places2")
    assert places[1] == "ready" and places[2].endswith("MB")
    assert manager.row_text("ft_ffhq")[1] == "partly downloaded: 3 MB of 905 MB"
    assert manager.row_text("ft_celebahq")[1] == "damaged"
    manager.select("ft_ffhq")
    assert manager.download_button.text() == "&Resume download"
    assert not manager.verify_button.isEnabled() and manager.remove_button.isEnabled()
    manager.select("ft_celebahq")
    assert manager.verify_button.isEnabled()
    details = manager.details.text()
    assert "Press Verify" in details and not any(j in details for j in JARGON)


def test_download_shows_progress_stops_and_resumes(qtbot, hub, manager, store):
    hub.slow(UNET_FFHQ, chunk=32768, delay=0.02)
    manager.select("ft_ffhq")
    messages = []
    manager.panel.progressed.connect(lambda e: messages.append(e.message))
    manager.download_button.click()
    assert manager.panel.busy and not manager.download_button.isEnabled()
    qtbot.waitUntil(lambda: any("MB" in m for m in messages), timeout=30000)
    qtbot.waitUntil(lambda: store.size_on_disk("ft_ffhq") > 100_000, timeout=30000)
    manager.panel.cancel_button.click()
    assert manager.status.text() == "Stopping…"
    _wait(qtbot, manager.panel)
    assert "paused" in manager.status.text()
    state = store.state("ft_ffhq")
    assert state.status == Status.DOWNLOADING and state.partial_bytes > 0
    assert manager.row_text("ft_ffhq")[1].startswith("partly downloaded")
    hub.clear_behaviours()
    manager.download_button.click()  # "Resume download"
    _wait(qtbot, manager.panel)
    assert store.status("ft_ffhq") == Status.READY and store.status("vae") == Status.READY
    assert "is ready" in manager.status.text()
    assert any(r.range for r in hub.served(f"cdn:{UNET_FFHQ}"))  # it continued, not restarted
    assert manager.row_text("ft_ffhq")[1] == "ready"


def test_import_verify_and_remove(qtbot, manager, store, tiny_weights, monkeypatch):
    manager.import_paths("ft_ffhq", [tiny_weights])
    _wait(qtbot, manager.panel)
    assert store.status("ft_ffhq") == Status.READY
    path = store.folder("ft_ffhq") / "diffusion_pytorch_model.bin"
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.unlink()  # a hard link to the test's file: leave that one alone
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    manager.select("ft_ffhq")
    manager.verify_button.click()
    _wait(qtbot, manager.panel)
    assert store.status("ft_ffhq") == Status.DAMAGED
    assert manager.row_text("ft_ffhq")[1] == "damaged"
    assert "Damaged" in manager.status.text()
    asked = []
    monkeypatch.setattr(ModelManager, "confirm_remove",
                        lambda self, state: asked.append(state.id) or True)
    manager.remove_button.click()
    _wait(qtbot, manager.panel)
    assert asked == ["ft_ffhq"] and not store.folder("ft_ffhq").exists()
    assert manager.row_text("ft_ffhq")[1] == "not installed"
    assert "was removed" in manager.status.text()


def test_removing_asks_first_with_what_it_frees(manager, store, tiny_weights, monkeypatch):
    store.import_weights("ft_places2", tiny_weights)
    manager.refresh()
    shown = []

    def fake_exec(box):
        shown.append((box.text(), box.informativeText(), [b.text() for b in box.buttons()]))
        next(b for b in box.buttons() if "Keep" in b.text()).click()

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    manager.select("ft_places2")
    manager.remove_button.click()
    assert store.status("ft_places2") == Status.READY  # kept
    text, info, buttons = shown[0]
    assert "Places" in text and "MB on disk" in info and all("&" in b for b in buttons)


def test_open_folder_says_where_it_is_without_a_file_manager(manager, store, monkeypatch):
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: False)
    shown = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.informativeText()))
    assert manager.open_folder() is False
    assert shown and str(store.root) in shown[0]


def test_the_engine_picker_marks_what_is_installed(qtbot, tmp_path, store, tiny_weights,
                                                   reference_dir):
    from app.windows.main_window import MainWindow

    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    store.import_weights("ft_places2", tiny_weights)
    window = MainWindow(settings, store=store)
    texts = {a.data(): a.text() for a in window.engine_actions}
    assert texts["ft_places2"].endswith("\tneeds the autoencoder (335 MB)")
    assert texts["ft_ffhq"].endswith("\tnot installed · 905 MB")
    assert window.engine_button.text() == "Places (scenes) (not installed)"
    store.import_weights("vae", reference_dir / "tiny_vae")
    window.model_menu.aboutToShow.emit()
    texts = {a.data(): a.text() for a in window.engine_actions}
    assert texts["ft_places2"].endswith("\tinstalled") and texts["quick"] == "Quick (no download)"
    assert window.engine_button.text() == "Places (scenes)"
    assert window.engine_button.menu() is window.model_menu  # the toolbar shows the same
    assert window.a_manage in window.model_menu.actions()
    window.close()


def test_missing_dialog_names_only_what_is_missing(qtbot, store, worker, tiny_weights):
    store.import_weights("ft_places2", tiny_weights)  # the network is there, not the VAE
    dialog = ModelDialog("ft_places2", store, worker)
    qtbot.addWidget(dialog)
    text = dialog.text.text()
    assert "shared autoencoder (335 MB)" in text and "Places (scenes) network" not in text
    assert "335 MB in all" in text and "1,240" not in text
    assert dialog.download.text() == "&Download (335 MB)"
    manual = dialog.manual.text()
    for url in zoo.VAE.urls():
        assert url in manual
    assert not any(j in text + manual for j in JARGON)


def test_offline_download_is_explained_plainly(qtbot, hub, store, worker, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nobody answers
    dialog = ModelDialog("ft_celebahq", store, worker)
    qtbot.addWidget(dialog)
    assert not dialog.manual.isVisible()
    dialog.download.click()
    _wait(qtbot, dialog.panel)
    status = dialog.status.text()
    assert "offline" in status and not any(j in status for j in JARGON)
    assert dialog.manual_toggle.isChecked()  # every file's address, to get them by hand
    for entry in (zoo.resolve("ft_celebahq"), zoo.VAE):
        for url in entry.urls():
            assert url in dialog.manual.text()
    assert dialog.download.isEnabled()  # try again later
