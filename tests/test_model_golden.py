"""Our network computes the authors' numbers: layer by layer on the tiny config, end to
end on the full-size config, within the reference tolerance (1e-4 x max|ref|)."""

import json

import pytest
import torch

from engine.net.config import MoebiusConfig
from engine.net.model import RemovalModel
from tests.conftest import golden, max_rel

TOL = 1e-4


@pytest.mark.parametrize("name,make", [("tiny", MoebiusConfig.tiny), ("full", MoebiusConfig.full)])
def test_state_dict_keys_shapes_and_order_match_manifest(reference_dir, name, make):
    manifest = json.loads((reference_dir / f"manifest_{name}.json").read_text())
    with torch.device("meta"):
        model = RemovalModel(make())
    sd = model.state_dict()
    assert [(k, list(v.shape)) for k, v in sd.items()] == [
        (e["key"], e["shape"]) for e in manifest["keys"]
    ]
    params = sum(p.numel() for p in model.parameters())
    assert params == manifest["total_parameters"]


def _capture(model, names):
    """Forward hooks recording each named module's inputs and output."""
    captured, handles = {}, []
    modules = dict(model.named_modules())
    for name in names:

        def hook(mod, args, out, name=name):
            # Clone: the network may reuse a buffer in place after the hook has seen it.
            captured[f"{name}.in0"] = args[0].clone()
            if len(args) > 1 and isinstance(args[1], torch.Tensor):
                key = "in1" if ".resnets." in name else "encoder_hidden_states"
                captured[f"{name}.{key}"] = args[1].clone()
            captured[f"{name}.out"] = (out[0] if isinstance(out, tuple) else out).clone()

        handles.append(modules[name].register_forward_hook(hook))
    return captured, handles


def test_tiny_unet_matches_golden_including_debug_tensors(tiny_model):
    g = golden("unet_tiny")
    debug = {k.removeprefix("debug."): v for k, v in g.items() if k.startswith("debug.")}
    names = sorted({k.rsplit(".", 1)[0] for k in debug})
    captured, handles = _capture(tiny_model, names)
    try:
        with torch.no_grad():
            out = tiny_model(g["sample"], g["timestep"], g["input_ids"])
    finally:
        for h in handles:
            h.remove()
    assert len(debug) == 42
    for key, ref in debug.items():
        assert key in captured, key
        got = captured[key]
        assert got.shape == ref.shape, key
        if ref.dtype == torch.int64:
            assert torch.equal(got, ref), key
        else:
            assert max_rel(got, ref) <= TOL, (key, max_rel(got, ref))
    assert max_rel(out, g["noise_pred"]) <= TOL
    u, c = out.chunk(2)
    cfg = u + g["guidance_scale"] * (c - u)
    assert max_rel(cfg, g["noise_pred_cfg"]) <= TOL


@pytest.mark.slow
def test_full_unet_matches_golden(full_model):
    g = golden("unet_full")
    with torch.inference_mode():
        out = full_model(g["sample"], g["timestep"], g["input_ids"])
    assert max_rel(out, g["noise_pred"]) <= TOL
    u, c = out.chunk(2)
    assert max_rel(u + 2.5 * (c - u), g["noise_pred_cfg"]) <= TOL


def test_model_cannot_be_put_in_training_mode(tiny_model):
    """Training-mode batch norm would change outputs and overwrite the statistics."""
    g = golden("unet_tiny")
    bn = tiny_model.diff_model.conv_in.bn1
    stats = bn.running_mean.clone()
    tiny_model.train()
    assert not tiny_model.training
    with torch.no_grad():
        out = tiny_model(g["sample"], g["timestep"], g["input_ids"])
    assert torch.equal(bn.running_mean, stats)
    assert max_rel(out, g["noise_pred"]) <= TOL


def test_cfg_ids_put_unconditional_rows_first(tiny_model):
    ids = tiny_model.cfg_ids(2)
    g = golden("unet_tiny")
    assert torch.equal(ids, g["input_ids"])


def test_float_and_per_item_timesteps_give_the_same_output(tiny_model):
    g = golden("unet_tiny")
    with torch.no_grad():
        a = tiny_model(g["sample"], g["timestep"], g["input_ids"])
        b = tiny_model(g["sample"], torch.full((4,), 700.0), g["input_ids"])
    assert torch.equal(a, b)


def test_wrong_input_size_gets_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match="image size"):
        tiny_model(torch.zeros(1, 9, 24, 24), torch.tensor([10]), tiny_model.cfg_ids(1)[:1])


def test_folded_batch_norms_give_the_same_outputs(tiny_model):
    import copy

    from engine.net.fold import fold_batch_norms
    from engine.net.model import BatchNorm

    folded = fold_batch_norms(copy.deepcopy(tiny_model))
    assert not any(isinstance(m, BatchNorm) for m in folded.modules())
    g = golden("unet_tiny")
    with torch.no_grad():
        out = folded(g["sample"], g["timestep"], g["input_ids"])
    assert max_rel(out, g["noise_pred"]) <= TOL


@pytest.mark.slow
def test_folded_full_unet_matches_golden(full_model):
    import copy

    from engine.net.fold import fold_batch_norms

    folded = fold_batch_norms(copy.deepcopy(full_model))
    g = golden("unet_full")
    with torch.inference_mode():
        out = folded(g["sample"], g["timestep"], g["input_ids"])
    assert max_rel(out, g["noise_pred"]) <= TOL


def test_plain_benchmark_baseline_computes_the_same_function(tiny_model):
    """bench/'s unoptimised baseline must be the same network, or speed-ups mean nothing."""
    import copy

    from bench.plain_model import make_plain

    plain = make_plain(copy.deepcopy(tiny_model))
    g = golden("unet_tiny")
    with torch.no_grad():
        out = plain(g["sample"], g["timestep"], g["input_ids"])
    assert max_rel(out, g["noise_pred"]) <= TOL
