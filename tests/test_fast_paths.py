"""The speed rewrites compute the reference's numbers: sub-pixel upsampling in the UNet
and the VAE decoder, the lean decoder, and half-precision norms without casts."""

import copy

import pytest
import torch
import torch.nn.functional as F

from engine.net.fold import prepare_for_inference
from engine.net.model import GroupNorm, LayerNorm, Upsample
from engine.net.upsample import phase_kernels, upsample_conv
from engine.net.vae import CONFIG_DIR, Vae
from engine.net.vae_decode import decode_lean
from engine.net.weight_fill import fill_module_
from tests.conftest import golden, max_rel

TOL = 1e-4


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("at_once", [True, False])
def test_phase_convolutions_equal_upsample_then_conv(channels_last, at_once):
    g = torch.Generator().manual_seed(0)
    conv = torch.nn.Conv2d(12, 20, 3, padding=1)
    torch.nn.init.normal_(conv.weight, generator=g)
    x = torch.randn(2, 12, 7, 9, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        got = upsample_conv(x, phase_kernels(conv.weight), conv.bias, phases_at_once=at_once)
    assert got.shape == ref.shape == (2, 20, 14, 18)
    assert got.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert max_rel(got, ref) < 1e-6


def test_rewritten_tiny_unet_matches_golden(tiny_model):
    model = prepare_for_inference(copy.deepcopy(tiny_model))
    ups = [m for m in model.modules() if isinstance(m, Upsample)]
    assert ups and all(m.phases is not None for m in ups)
    assert "phases" not in "".join(model.state_dict())  # not part of the checkpoint
    g = golden("unet_tiny")
    with torch.inference_mode():
        out = model(g["sample"], g["timestep"], g["input_ids"])
    assert max_rel(out, g["noise_pred"]) <= TOL


@pytest.mark.slow
def test_rewritten_full_unet_matches_golden(full_model):
    model = prepare_for_inference(copy.deepcopy(full_model))
    g = golden("unet_full")
    with torch.inference_mode():
        out = model(g["sample"], g["timestep"], g["input_ids"])
    assert max_rel(out, g["noise_pred"]) <= TOL


def test_rewritten_model_converts_its_phase_kernels(tiny_model):
    model = prepare_for_inference(copy.deepcopy(tiny_model)).to(torch.bfloat16)
    assert all(m.phases.dtype == torch.bfloat16 for m in model.modules()
               if isinstance(m, Upsample))


def test_lean_decode_matches_the_tiny_golden(tiny_vae):
    g = golden("vae_tiny")
    got = decode_lean(tiny_vae, g["decode_in_latents_scaled"])
    assert max_rel(got, g["decode_out"]) <= TOL


@pytest.mark.slow
def test_lean_decode_equals_diffusers_on_the_full_size_decoder():
    torch.manual_seed(0)
    vae = Vae.from_config(CONFIG_DIR / "pixelhacker_vae.json")
    fill_module_(vae.model)
    z = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    ref = vae.decode(z)
    got = decode_lean(vae, z)
    assert got.shape == ref.shape == (1, 3, 128, 128)
    assert max_rel(got, ref) <= TOL


def test_half_precision_norms_on_the_cpu_equal_fp32_then_rounding():
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(2, 64, 8, 8, generator=g) * 27 + 3).bfloat16()
    x = x.contiguous(memory_format=torch.channels_last)
    gn = GroupNorm(32, 64)
    torch.nn.init.normal_(gn.weight, 1.0, 0.3, generator=g)
    torch.nn.init.normal_(gn.bias, 0.0, 0.3, generator=g)
    got = gn.to(torch.bfloat16)(x)
    assert got.dtype == torch.bfloat16
    w, b = gn.weight.float(), gn.bias.float()
    assert torch.equal(got, F.group_norm(x.float(), 32, w, b, gn.eps).bfloat16())

    t = (torch.randn(2, 50, 64, generator=g) * 27).bfloat16()
    ln = LayerNorm(64).to(torch.bfloat16)
    ref = F.layer_norm(t.float(), (64,), ln.weight.float(), ln.bias.float(), ln.eps)
    got = ln(t)
    assert got.dtype == torch.bfloat16
    # fp32 statistics either way; the last bit may round the other way
    step = ref.abs().clamp(min=2**-8) * 2**-7
    assert ((got.float() - ref).abs() <= step).all()


def test_channels_last_vae_and_one_image_at_a_time_keep_the_numbers(reference_dir):
    from engine.net.vae import encode_moments, stores_channels_last, use_channels_last

    plain, fast = Vae.load(reference_dir / "tiny_vae"), Vae.load(reference_dir / "tiny_vae")
    use_channels_last(fast)
    assert stores_channels_last(fast) and not stores_channels_last(plain)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 128, 128, generator=g) * 2 - 1
    ref_mean, ref_std = encode_moments(plain, x)
    mean, std = encode_moments(fast, x, one_at_a_time=True)
    assert mean.is_contiguous() and max_rel(mean, ref_mean) <= TOL
    assert max_rel(std, ref_std) <= TOL
    z = torch.randn(1, 4, 16, 16, generator=g)
    got = decode_lean(fast, z)
    assert got.is_contiguous() and max_rel(got, plain.decode(z)) <= TOL


def test_converting_layer_by_layer_gives_the_same_network(tiny_model):
    whole = prepare_for_inference(copy.deepcopy(tiny_model)).to(torch.bfloat16)
    by_layer = prepare_for_inference(copy.deepcopy(tiny_model), torch.bfloat16)
    a, b = whole.state_dict(), by_layer.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert all(t.dtype == torch.bfloat16 for t in [*by_layer.parameters(), *by_layer.buffers()])


def test_safetensors_are_read_into_memory_of_their_own(tmp_path):
    """The checkpoint reader gives safetensors' tensors without mapping the file (whose
    pages would otherwise stay resident beside the converted network)."""
    from safetensors.torch import save_file

    from engine.errors import CheckpointError
    from engine.net.checkpoint import read_state_dict

    g = torch.Generator().manual_seed(0)
    sd = {"a": torch.randn(3, 5, generator=g), "b": torch.randn(7, generator=g).bfloat16(),
          "ids": torch.arange(4), "empty": torch.zeros(0)}
    path = tmp_path / "w.safetensors"
    save_file(sd, str(path))
    got = read_state_dict(path)
    assert got.keys() == sd.keys()
    assert all(torch.equal(got[k], sd[k]) and got[k].dtype == sd[k].dtype for k in sd)
    path.write_bytes(path.read_bytes()[:-8])  # truncated
    with pytest.raises(CheckpointError):
        read_state_dict(path)
