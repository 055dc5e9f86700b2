import pytest

from engine.errors import DeviceUnavailable, SettingsError
from engine.sampling.device import available_devices, choose


def test_auto_picks_best_available_and_cpu_is_fp32():
    have = available_devices()
    p = choose("auto")
    expected = "cuda" if "cuda" in have else "mps" if "mps" in have else "cpu"
    assert p.device == expected
    assert choose("cpu").dtype == "float32"
    assert choose("cpu", "exact").dtype == "float32"


def test_fast_on_cpu_uses_bf16_only_where_the_cpu_has_it(monkeypatch):
    from engine.sampling import device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert choose("cpu", "fast").dtype == "bfloat16"
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    assert choose("cpu", "fast").dtype == "float32"


def test_gpu_qualities(monkeypatch):
    from engine.sampling import device

    monkeypatch.setattr(device, "available_devices", lambda: ["cpu", "cuda"])
    assert choose("auto").device == "cuda"
    assert choose("cuda").dtype == "float16"  # auto quality on a GPU is fast
    assert choose("cuda", "exact").dtype == "float32"
    assert choose("cuda", "fast").dtype == "float16"


def test_unavailable_device_is_refused(monkeypatch):
    from engine.sampling import device, hardware

    monkeypatch.setattr(device, "available_devices", lambda: ["cpu"])
    monkeypatch.setattr(hardware, "gpu_build_notice", lambda: None)  # no NVIDIA driver
    monkeypatch.setattr(hardware, "torch_build", lambda: hardware.TorchBuild("cpu"))
    with pytest.raises(DeviceUnavailable) as err:
        choose("cuda")
    assert str(err.value) == ("--device cuda: this is a CPU-only installation and this "
                              "machine has no NVIDIA driver; use --device auto or cpu")


def test_bad_settings_are_refused():
    with pytest.raises(SettingsError, match="unknown device 'tpu'"):
        choose("tpu")
    with pytest.raises(SettingsError, match="unknown quality 'turbo'"):
        choose("cpu", "turbo")


def test_a_gpu_index_that_does_not_exist_is_refused_before_any_work(monkeypatch):
    import torch

    from engine.sampling import device

    monkeypatch.setattr(device, "available_devices", lambda: ["cpu", "cuda"])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert choose("cuda:1").device == "cuda:1"
    with pytest.raises(DeviceUnavailable) as err:
        choose("cuda:2")
    assert str(err.value) == ("--device cuda:2: this machine has 2 NVIDIA GPU(s) (cuda:0 to "
                              "cuda:1); use one of those, auto or cpu")
