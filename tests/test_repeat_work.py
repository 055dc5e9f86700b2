"""No repeated work: Try again reuses the encoder pass, regions can share a batch, and the
sampler runs whatever forward the inpainter built for it (the CUDA-graph replayer)."""

import numpy as np
import pytest
import torch

from engine.events import Done, drain
from engine.removal.job import RemovalJob
from engine.removal.regions import Region, Window
from engine.removal.run import EngineHost, batches, run_removal
from engine.removal.settings import RemovalSettings
from engine.sampling.device import Placement, choose
from engine.sampling.encode_cache import EncodeCache, content_key
from engine.sampling.inpainter import MoebiusInpainter
from engine.sampling.sampler import SamplerSettings
from tests.conftest import golden
from tests.photos import scene, with_object

FEW_STEPS = SamplerSettings(steps=4)


@pytest.fixture
def counted(tiny_model, tiny_vae, monkeypatch):
    """A fresh tiny inpainter (empty cache) whose encoder passes are counted, as the
    number of images each pass takes (on the CPU the image and its masked copy go
    through one at a time, elsewhere as one batch of two)."""
    inp = MoebiusInpainter(tiny_model, tiny_vae, choose("cpu"))
    calls = []
    encode = tiny_vae.model.encode

    def counting(x, *args, **kwargs):
        calls.append(x.shape[0])
        return encode(x, *args, **kwargs)

    monkeypatch.setattr(tiny_vae.model, "encode", counting)
    return inp, calls


def _inputs():
    g = golden("pipeline_tiny")
    return g["input_image_u8"].numpy()[None], (g["input_mask_u8"].numpy() >= 128)[None]


def test_try_again_skips_the_encoder_and_only_the_noise_changes(counted, tiny_model,
                                                                tiny_vae):
    inp, calls = counted
    image, hole = _inputs()
    _, first = drain(inp.inpaint(image, hole, FEW_STEPS, seed=3))
    assert calls == [1, 1]  # the image and its masked copy
    _, again = drain(inp.inpaint(image, hole, FEW_STEPS, seed=3))
    assert calls == [1, 1] and inp.encodings.hits == 1
    assert np.array_equal(again, first)
    _, other = drain(inp.inpaint(image, hole, FEW_STEPS, seed=4))
    assert calls == [1, 1]
    assert not np.array_equal(other, first)
    # The cached encoding gives exactly what a fresh encode with that seed gives.
    fresh = MoebiusInpainter(tiny_model, tiny_vae, choose("cpu"))
    _, expected = drain(fresh.inpaint(image, hole, FEW_STEPS, seed=4))
    assert np.array_equal(other, expected)
    assert calls == [1, 1] * 2


def test_a_changed_mask_or_photo_is_encoded_again(counted):
    inp, calls = counted
    image, hole = _inputs()
    drain(inp.inpaint(image, hole, FEW_STEPS, seed=0))
    moved = np.roll(hole, 5, axis=2)
    drain(inp.inpaint(image, moved, FEW_STEPS, seed=0))
    brighter = image.copy()
    brighter[0, 0, 0, 0] ^= 1  # one value of one pixel
    drain(inp.inpaint(brighter, hole, FEW_STEPS, seed=0))
    assert sum(calls) == 2 * 3 and len(inp.encodings) == 3


def test_the_cache_is_bounded_and_forgets_the_oldest():
    entry = (torch.zeros(2, 4, 8, 8), torch.zeros(2, 4, 8, 8))  # 4 KiB
    cache = EncodeCache(max_bytes=10 * 1024)
    keys = [content_key(np.full((8, 8, 3), i, np.uint8), np.zeros((8, 8), bool))
            for i in range(4)]
    assert len(set(keys)) == 4
    for key in keys[:2]:
        cache.put(key, entry)
    assert cache.get(keys[0]) is entry  # now the most recently used
    cache.put(keys[2], entry)
    assert len(cache) == 2 and cache.nbytes <= cache.max_bytes
    assert cache.get(keys[1]) is None  # the least recently used went first
    assert cache.get(keys[0]) is entry and cache.get(keys[2]) is entry


def test_try_again_of_a_whole_job_encodes_nothing(counted):
    inp, calls = counted
    host = EngineHost(loader=lambda variant, placement: inp)
    w, h = 400, 300
    img, mask = with_object(scene(w, h), (180, 120, 220, 170))
    job = RemovalJob(img, mask, RemovalSettings(steps=4, seed=1))
    first = list(run_removal(job, None, host))[-1]
    assert isinstance(first, Done) and sum(calls) == 2
    again = list(run_removal(job.with_seed(1), None, host))[-1]
    assert sum(calls) == 2
    assert np.array_equal(again.result.pixels, first.result.pixels)
    other = list(run_removal(job.with_seed(2), None, host))[-1]
    assert sum(calls) == 2 and isinstance(other, Done)
    assert not np.array_equal(other.result.pixels, first.result.pixels)


def _regions(*boxes):
    return [Region(b, Window(b[0], b[1], b[2] - b[0])) for b in boxes]


def test_batches_never_group_overlapping_windows():
    a, b, c, d = _regions((0, 0, 10, 10), (20, 0, 30, 10), (25, 5, 35, 15), (40, 0, 50, 10))
    assert batches([a, b, c, d], 4) == [(0, [a, b]), (2, [c, d])]
    assert batches([a, b, c, d], 1) == [(0, [a]), (1, [b]), (2, [c]), (3, [d])]
    assert batches([a, b, d], 2) == [(0, [a, b]), (2, [d])]


def test_batched_regions_equal_one_by_one(tiny_model, tiny_vae):
    img = scene(900, 300)
    img, mask = with_object(img, (100, 120, 160, 180))
    _, mask2 = with_object(img, (700, 120, 760, 180))
    mask |= mask2
    job = RemovalJob(img, mask, RemovalSettings(steps=4, seed=5))
    results, batch_sizes = [], []
    for per_batch in (1, 2):
        inp = MoebiusInpainter(tiny_model, tiny_vae, choose("cpu"))
        inp.max_regions = per_batch
        inp.forward = _recording(tiny_model, batch_sizes)
        done = list(run_removal(job, None, EngineHost(loader=lambda v, p, inp=inp: inp)))[-1]
        assert isinstance(done, Done) and done.result.regions == 2
        results.append(done.result.apply_to(img).astype(np.int16))
    # Three network calls of batch 2 per region one by one, then three of batch 4 for both.
    assert batch_sizes == [2] * 6 + [4] * 3
    diff = np.abs(results[0] - results[1])
    assert diff.max() <= 2 and diff.mean() < 0.01


def _recording(model, sizes):
    def forward(sample, timestep, ids):
        sizes.append(sample.shape[0])
        return model(sample, timestep, ids)

    return forward


def test_the_sampler_runs_the_cuda_graph_forward(tiny_model, tiny_vae, monkeypatch):
    """The GPU path: MoebiusInpainter builds a CudaGraphForward and every step goes
    through it (here a stand-in on the CPU that counts its calls)."""
    from engine.sampling import cuda_graphs

    replays = []

    class FakeGraphForward:
        def __init__(self, model):
            self.model = model

        def __call__(self, sample, timestep, ids):
            replays.append(tuple(sample.shape))
            return self.model(sample, timestep, ids)

    monkeypatch.setattr(cuda_graphs, "CudaGraphForward", FakeGraphForward)
    monkeypatch.setattr(cuda_graphs, "tune_cuda_runtime", lambda dtype: None)
    on_gpu = MoebiusInpainter(tiny_model, tiny_vae, Placement("cuda", "float32"))
    assert isinstance(on_gpu.forward, FakeGraphForward)
    image, hole = _inputs()
    _, out = drain(on_gpu.inpaint(image, hole, FEW_STEPS, seed=0))
    assert replays == [(2, 9, 16, 16)] * FEW_STEPS.network_calls
    # Without graphs the same placement calls the model itself, with the same result.
    without = MoebiusInpainter(tiny_model, tiny_vae, Placement("cuda", "float32"),
                               cuda_graphs=False)
    assert without.step_forward is None
    _, eager = drain(without.inpaint(image, hole, FEW_STEPS, seed=0))
    assert len(replays) == FEW_STEPS.network_calls
    assert np.array_equal(out, eager)
