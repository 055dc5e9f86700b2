"""Loading checkpoints: the authors' .bin unchanged, safetensors, clear errors, no code."""

import os
import pickle
import zipfile

import pytest
import torch

from engine.errors import CheckpointError
from engine.net.checkpoint import (
    SAFETENSORS_CACHE_NAME,
    load_model,
    read_state_dict,
    save_bin,
)
from engine.net.config import MoebiusConfig
from tests.conftest import golden, max_rel


def _forward(model):
    g = golden("unet_tiny")
    with torch.no_grad():
        return model(g["sample"], g["timestep"], g["input_ids"]), g["noise_pred"]


def test_bin_round_trip_in_authors_format(tiny_weights, tiny_model):
    # The file is a plain torch.save(state_dict), keys in the manifest's order.
    raw = torch.load(tiny_weights, weights_only=True)
    assert list(raw) == list(tiny_model.state_dict())
    model = load_model(tiny_weights, cache=False)
    assert model.config == MoebiusConfig.tiny()
    out, ref = _forward(model)
    assert max_rel(out, ref) <= 1e-4
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_bin_gets_a_safetensors_cache_used_on_the_next_load(tmp_path, tiny_model):
    path = tmp_path / "diffusion_pytorch_model.bin"
    save_bin(tiny_model, path)
    load_model(path)
    cache = tmp_path / SAFETENSORS_CACHE_NAME
    assert cache.is_file()
    # Prove the cache is what gets read: damage the .bin but keep it older than the cache.
    path.write_bytes(b"damaged")
    os.utime(path, (1, 1))
    model = load_model(path)
    out, ref = _forward(model)
    assert max_rel(out, ref) <= 1e-4


def test_stale_cache_is_ignored(tmp_path, tiny_model):
    path = tmp_path / "diffusion_pytorch_model.bin"
    save_bin(tiny_model, path)
    load_model(path)
    cache = tmp_path / SAFETENSORS_CACHE_NAME
    cache.write_bytes(b"garbage")
    os.utime(cache, (1, 1))  # older than the .bin: stale
    out, ref = _forward(load_model(path))
    assert max_rel(out, ref) <= 1e-4


def test_safetensors_file_loads(tmp_path, tiny_model):
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, str(path))
    out, ref = _forward(load_model(path))
    assert max_rel(out, ref) <= 1e-4


def test_wrong_file_lists_missing_unexpected_and_misshaped_keys(tmp_path, tiny_model):
    sd = dict(tiny_model.state_dict())
    del sd["diff_model.conv_out.conv_pw.weight"]
    sd["diff_model.extra.weight"] = torch.zeros(3)
    sd["diff_model.conv_norm_out.weight"] = torch.zeros(7)
    path = tmp_path / "wrong.bin"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path, cache=False)
    err = info.value
    msg = str(err)
    assert str(path) in msg
    assert err.missing == ["diff_model.conv_out.conv_pw.weight"]
    assert err.unexpected == ["diff_model.extra.weight"]
    assert len(err.misshaped) == 1 and "conv_norm_out.weight" in err.misshaped[0]
    for needle in ("missing", "unexpected", "wrong shape", "(7,)", "(32,)"):
        assert needle in msg


def test_full_config_file_is_rejected_by_tiny_network(tmp_path, tiny_model):
    path = tmp_path / "tiny.bin"
    save_bin(tiny_model, path)
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_model(path, cfg=MoebiusConfig.full(), cache=False)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/moebius-pwned",))


def test_pickle_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "evil.bin"
    torch.save({"embedding_layer.weight": torch.zeros(1), "x": _Exploit()}, path)
    marker = "/tmp/moebius-pwned"
    if os.path.exists(marker):
        os.remove(marker)
    with pytest.raises(CheckpointError, match="could run code"):
        read_state_dict(path)
    assert not os.path.exists(marker)


def test_legacy_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "evil_legacy.bin"
    with open(path, "wb") as f:
        pickle.dump(_Exploit(), f)
    with pytest.raises(CheckpointError, match="could run code"):
        read_state_dict(path)


@pytest.mark.parametrize(
    "content", [b"", b"not a checkpoint at all", b"hello world text", b"PK\x03\x04broken",
                b"\x80\x02garbage"]
)
def test_damaged_files_get_a_clear_error(tmp_path, content):
    path = tmp_path / "diffusion_pytorch_model.bin"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=str(path.name)) as info:
        read_state_dict(path)
    assert "damaged" in str(info.value) and "could run code" not in str(info.value)


def test_truncated_bin_is_reported(tmp_path, tiny_model):
    path = tmp_path / "diffusion_pytorch_model.bin"
    save_bin(tiny_model, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path)
    # One sentence that says what happened and what to do; none of torch's own text.
    assert str(info.value) == (f"{path} is incomplete: the file ends early, as after an "
                               "interrupted download or copy; download it again.")


def test_damaged_safetensors_is_reported(tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match="safetensors"):
        read_state_dict(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_state_dict(tmp_path / "nope.bin")


def test_non_tensor_mapping_is_refused(tmp_path):
    path = tmp_path / "list.bin"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointError, match="state dict"):
        read_state_dict(path)
    assert zipfile.is_zipfile(path)
