"""Cancel that answers (issue 19, item 4): the autoencoder's passes, a network step and the
model load stop between their blocks or parts, with results bit-identical when not
cancelled; the status bar says "Cancelling…" at once."""

from __future__ import annotations

import pytest
import torch

from engine.errors import Cancelled
from engine.events import CancelToken, Done, Failed
from engine.net.interrupt import stop_points


def _latents(seed=0):
    return torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(seed))


def _images(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 128, 128, generator=g) * 2 - 1


def test_stop_points_change_no_number(tiny_vae):
    """The cancellable passes compute exactly what the plain ones do."""
    z = _latents()
    assert torch.equal(tiny_vae.decode(z, CancelToken()), tiny_vae.decode(z))
    x = _images()
    plain = tiny_vae.encode(x, torch.Generator().manual_seed(3))
    hooked = tiny_vae.encode(x, torch.Generator().manual_seed(3), CancelToken())
    assert torch.equal(plain, hooked)


def _cancel_when(module, token: CancelToken, ran: list):
    """Press "cancel" while `module` runs."""
    def hook(mod, args, output):
        token.cancel()

    return module.register_forward_hook(hook)


def _count(blocks, ran: list):
    """Record every block that runs to its end."""
    return [b.register_forward_hook(lambda m, a, o, i=i: ran.append(i))
            for i, b in enumerate(blocks)]


def test_decode_stops_at_the_next_block(tiny_vae):
    decoder = tiny_vae.model.decoder
    blocks = [decoder.mid_block, *decoder.up_blocks, decoder.conv_out]
    token, ran = CancelToken(), []
    handles = _count(blocks, ran) + [_cancel_when(decoder.up_blocks[0], token, ran)]
    try:
        with pytest.raises(Cancelled):
            tiny_vae.decode(_latents(), token)
    finally:
        for h in handles:
            h.remove()
    assert ran == [0, 1]  # the mid block and the first up block; nothing after the cancel
    assert not decoder.up_blocks[1]._forward_pre_hooks  # the stop points were removed


def test_encode_stops_at_the_next_block(tiny_vae):
    encoder = tiny_vae.model.encoder
    token, ran = CancelToken(), []
    handles = _count(encoder.down_blocks, ran)
    handles.append(_cancel_when(encoder.down_blocks[1], token, ran))
    try:
        with pytest.raises(Cancelled):
            tiny_vae.encode(_images(), torch.Generator().manual_seed(0), token)
    finally:
        for h in handles:
            h.remove()
    assert ran == [0, 1]


def test_a_network_step_stops_between_its_blocks(tiny_inpainter):
    from engine.sampling.sampler import SamplerSettings, denoise

    model = tiny_inpainter.model
    unet = model.diff_model
    blocks = [*unet.down_blocks, *unet.up_blocks, unet.conv_out]
    token, ran = CancelToken(), []
    handles = _count(blocks, ran) + [_cancel_when(unet.down_blocks[0].resnets[0], token, ran)]
    z = torch.zeros(1, 4, 16, 16)
    mask = torch.ones(1, 1, 16, 16)
    try:
        with pytest.raises(Cancelled):
            next(denoise(model, z, z, mask, SamplerSettings(steps=4), noise=_latents(),
                         cancel=token))
    finally:
        for h in handles:
            h.remove()
    assert ran == []  # stopped inside the first block, right after its first resnet
    assert len(model.stop_blocks()) > 2 * len(blocks)  # many places to stop at


def test_the_model_load_stops_between_its_parts(monkeypatch, tiny_weights, reference_dir):
    import engine.net.checkpoint
    import engine.net.vae
    from engine.sampling.device import choose
    from engine.sampling.inpainter import MoebiusInpainter

    token = CancelToken()
    real_load = engine.net.checkpoint.load_model
    vae_loads = []

    def load_model(*args, **kwargs):  # the person presses Esc while the network is read
        model = real_load(*args, **kwargs)
        token.cancel()
        return model

    monkeypatch.setattr(engine.net.checkpoint, "load_model", load_model)
    monkeypatch.setattr(engine.net.vae.Vae, "load", classmethod(
        lambda cls, *a, **k: vae_loads.append(a)))
    with pytest.raises(Cancelled):
        MoebiusInpainter.load(tiny_weights, reference_dir / "tiny_vae", choose("cpu"),
                              cancel=token)
    assert not vae_loads  # stopped before the autoencoder was read


def test_a_cancelled_load_ends_the_removal_and_loads_nothing(tiny_inpainter):
    from engine.removal.job import RemovalJob
    from engine.removal.run import EngineHost, run_removal
    from engine.removal.settings import RemovalSettings
    from tests.photos import scene, with_object

    given = []

    def loader(variant, placement, cancel=None):
        given.append(cancel)
        cancel.cancel()  # Esc during the load
        cancel.raise_if_cancelled()
        return tiny_inpainter

    host = EngineHost(loader=loader)
    img, mask = with_object(scene(160, 120, seed=1), (60, 40, 90, 70))
    job = RemovalJob(img, mask, RemovalSettings(steps=3, device="cpu"))
    token = CancelToken()
    events = list(run_removal(job, token, host))
    assert given == [token]
    assert isinstance(events[-1], Failed) and events[-1].cancelled
    assert not host.is_loaded(job.settings)
    # A later job loads it again and runs.
    host.loader = lambda variant, placement: tiny_inpainter
    assert isinstance(list(run_removal(job, None, host))[-1], Done)


def test_stop_points_without_a_token_hook_nothing(tiny_vae):
    blocks = list(tiny_vae.model.decoder.up_blocks)
    with stop_points(blocks, None):
        assert not any(b._forward_pre_hooks for b in blocks)


@pytest.mark.gui
def test_escape_says_cancelling_at_once(qtbot, tmp_path):
    """The status bar changes on the key press itself, before the job has answered."""
    from PIL import Image
    from PySide6.QtCore import QSettings, Qt

    from app.settings import Settings
    from app.windows.main_window import MainWindow
    from engine.removal.run import EngineHost
    from tests.photos import scene, with_object
    from tests.test_open_photo import Loader

    loader = Loader(delay=0.05)
    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    settings.engine_choice, settings.steps = "ft_places2", 100
    window = MainWindow(settings, host=EngineHost(loader=loader))
    window.ensure_model = lambda: True  # the stand-in network needs no weights
    window.show()
    img, mask = with_object(scene(200, 150, seed=2), (60, 40, 100, 80))
    Image.fromarray(img).save(tmp_path / "p.png")
    window.open_path(tmp_path / "p.png")
    window.canvas.setMaskArray(mask)
    texts = []
    window.jobs.progress.connect(lambda f, text: texts.append(text))
    window.remove()
    qtbot.waitUntil(lambda: any("step" in t for t in texts), timeout=20000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert window.progress_text.text() == "Cancelling…"  # no event loop turn needed
    assert not window.a_cancel.isEnabled()
    with qtbot.waitSignal(window.jobs.failed, timeout=20000) as failed:
        pass
    assert failed.args[0].cancelled
    qtbot.wait(300)  # ticks of the progress display after the cancel change nothing
    assert not window.progress_text.isVisible() or window.progress_text.text() == "Cancelling…"
    window.photo.mark_saved()
    window.close()
