"""The deterministic weight fill reproduces the reference's checksums exactly."""

import json

import pytest

from engine.net.weight_fill import filled_state_dict


def _check(manifest_path):
    entries = json.loads(manifest_path.read_text())["keys"]
    shapes = {e["key"]: tuple(e["shape"]) for e in entries}
    sd = filled_state_dict(shapes)
    assert list(sd) == list(shapes)
    for e in entries:
        v = sd[e["key"]]
        assert str(v.dtype).removeprefix("torch.") == e["dtype"], e["key"]
        flat = v.double().flatten()
        assert flat[:3].tolist() == e["fill_first"][: flat.numel()], e["key"]
        assert float(flat.sum()) == pytest.approx(e["fill_sum"], rel=1e-9, abs=1e-9), e["key"]
        assert float(flat.abs().sum()) == pytest.approx(e["fill_abs_sum"], rel=1e-9), e["key"]
    return sd


def test_tiny_fill_matches_manifest(reference_dir):
    sd = _check(reference_dir / "manifest_tiny.json")
    assert len(sd) == 1203


@pytest.mark.slow
def test_full_fill_matches_manifest(reference_dir):
    sd = _check(reference_dir / "manifest_full.json")
    n_params = sum(v.numel() for k, v in sd.items())
    assert n_params == 226_194_481  # parameters + buffer elements


def test_fill_differs_when_a_key_is_added():
    """Seeds follow the sorted key list, so a partial key set would fill wrongly."""
    a = filled_state_dict({"b.weight": (2, 2)})
    b = filled_state_dict({"a.weight": (2, 2), "b.weight": (2, 2)})
    assert not (a["b.weight"] == b["b.weight"]).all()
