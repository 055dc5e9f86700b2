"""Variations: several candidates of one removal, one seed each, sharing the encoder pass;
each equal to a single removal with its seed; cancel leaves nothing."""

from dataclasses import replace

import numpy as np
import pytest

from engine.errors import SettingsError
from engine.events import CancelToken, Done, Failed, Preview, Progress
from engine.removal.job import RemovalJob
from engine.removal.run import EngineHost, run_removal
from engine.removal.settings import RemovalSettings, default_variations
from engine.sampling.device import choose
from engine.sampling.inpainter import MoebiusInpainter
from tests.photos import scene, with_object

FEW = dict(steps=3)


@pytest.fixture
def counted_host(tiny_model, tiny_vae, monkeypatch):
    """A host with a fresh tiny inpainter (empty encode cache) whose encoder passes are
    counted in images."""
    inp = MoebiusInpainter(tiny_model, tiny_vae, choose("cpu"))
    calls: list[int] = []
    encode = tiny_vae.model.encode

    def counting(x, *args, **kwargs):
        calls.append(x.shape[0])
        return encode(x, *args, **kwargs)

    monkeypatch.setattr(tiny_vae.model, "encode", counting)
    return EngineHost(loader=lambda variant, placement: inp), calls


def _photo(two_regions=False):
    img, mask = with_object(scene(900, 300), (40, 40, 70, 80))
    if two_regions:  # far apart: two regions
        img2, mask2 = with_object(img, (800, 200, 840, 240))
        return img2, mask | mask2
    return img, mask


def _done(events):
    last = events[-1]
    assert isinstance(last, Done), last
    return last.result


def test_each_candidate_is_the_single_removal_with_its_seed(counted_host):
    host, calls = counted_host
    img, mask = _photo(two_regions=True)
    settings = RemovalSettings(seed=11, variations=2, **FEW)
    result = _done(list(run_removal(RemovalJob(img, mask, settings), None, host)))
    assert result.regions == 2
    assert [c.seed for c in result.candidates] == [11, 13]  # spaced by the regions
    # One encoder pass (image and masked copy) per region serves every candidate of it.
    assert sum(calls) == 2 * 2
    outs = [c.apply_to(img) for c in result.candidates]
    assert not np.array_equal(outs[0], outs[1])
    for cand, out in zip(result.candidates, outs, strict=True):
        alone = replace(settings, seed=cand.seed, variations=1)
        single = _done(list(run_removal(RemovalJob(img, mask, alone), None, host)))
        assert single.others == () and single.seed == cand.seed
        expected = single.apply_to(img)
        # Batched with other seeds, a candidate differs from its single run at most by
        # float rounding: not a level on almost every pixel.
        diff = np.abs(out.astype(int) - expected.astype(int))
        assert diff.max() <= 2 and (diff > 0).mean() < 0.01
        assert np.array_equal(out[~mask], img[~mask])  # nothing outside the mask


def test_variations_are_deterministic_per_seed(tiny_inpainter):
    host = EngineHost(loader=lambda variant, placement: tiny_inpainter)
    img, mask = _photo()
    job = RemovalJob(img, mask, RemovalSettings(seed=5, variations=2, **FEW))
    first = _done(list(run_removal(job, None, host)))
    again = _done(list(run_removal(job, None, host)))
    for a, b in zip(first.candidates, again.candidates, strict=True):
        assert a.seed == b.seed and a.box == b.box and np.array_equal(a.pixels, b.pixels)


def test_cancel_during_variations_gives_nothing(tiny_inpainter):
    host = EngineHost(loader=lambda variant, placement: tiny_inpainter)
    img, mask = _photo()
    before = img.copy()
    cancel = CancelToken()
    events = []
    for event in run_removal(RemovalJob(img, mask, RemovalSettings(variations=3, **FEW)),
                             cancel, host):
        events.append(event)
        if isinstance(event, Progress) and event.stage == "denoising" and event.step >= 2:
            cancel.cancel()
    assert isinstance(events[-1], Failed) and events[-1].cancelled
    assert not any(isinstance(e, Done) for e in events)
    assert np.array_equal(img, before)


def test_quick_gives_one_candidate_whatever_is_asked():
    img, mask = _photo()
    result = _done(list(run_removal(
        RemovalJob(img, mask, RemovalSettings(engine="quick", variations=4)))))
    assert result.others == ()


@pytest.mark.parametrize("bad", [0, 5, 2.5, "3"])
def test_the_variations_range_is_checked(bad):
    with pytest.raises(SettingsError, match="variations"):
        RemovalSettings(variations=bad)


def test_one_variation_by_default_on_a_cpu():
    assert RemovalSettings().variations == 1
    assert default_variations("cpu") == 1


def test_previews_come_only_when_asked_and_only_for_denoising(tiny_inpainter):
    host = EngineHost(loader=lambda variant, placement: tiny_inpainter)
    img, mask = _photo()
    job = RemovalJob(img, mask, RemovalSettings(seed=1, **FEW))
    plain = list(run_removal(job, None, host))
    assert not any(isinstance(e, Preview) for e in plain)
    shown = list(run_removal(job, None, host, previews=True))
    previews = [e for e in shown if isinstance(e, Preview)]
    assert len(previews) == job.settings.sampler().network_calls
    assert all(e.stage == "denoising" for e in previews)
    # The same result, with or without previews.
    assert np.array_equal(_done(shown).pixels, _done(plain).pixels)
