import pytest

from engine.device import available_devices, choose


def test_auto_picks_best_available_and_cpu_is_fp32():
    have = available_devices()
    p = choose("auto")
    expected = "cuda" if "cuda" in have else "mps" if "mps" in have else "cpu"
    assert p.device == expected
    assert choose("cpu").dtype == "float32"
    assert choose("cpu", "fast").dtype == "bfloat16"


def test_gpu_precision_is_half():
    if "cuda" not in available_devices():
        assert "cuda" not in available_devices()  # nothing to check on this machine
        with pytest.raises(RuntimeError, match="not available"):
            choose("cuda")
        return
    assert choose("cuda").dtype in ("bfloat16", "float16")


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        choose("tpu")
    with pytest.raises(ValueError):
        choose("cpu", "turbo")
