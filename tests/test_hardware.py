"""Which build a person has and what their machine offers (engine/sampling/hardware.py):
the notices, reasons and device summaries built from it."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import DeviceUnavailable
from engine.events import Done
from engine.sampling import device, hardware
from engine.sampling.device_report import device_report_events
from engine.sampling.hardware import NvidiaDriver, TorchBuild

ROOT = Path(__file__).resolve().parent.parent
GCC = shutil.which("gcc") or shutil.which("cc")


@pytest.fixture
def machine(monkeypatch):
    """Set what the machine has: `machine(build, driver)`."""

    def set_up(build: TorchBuild, driver: NvidiaDriver | None):
        monkeypatch.setattr(hardware, "torch_build", lambda: build)
        monkeypatch.setattr(hardware, "nvidia_driver", lambda: driver)

    return set_up


def fake_driver_library(folder: Path, cuda_version: int) -> Path:
    """A stand-in for the NVIDIA driver's libcuda with only cuDriverGetVersion."""
    source = folder / "cuda.c"
    source.write_text(f"int cuDriverGetVersion(int *v) {{ *v = {cuda_version}; return 0; }}\n")
    library = folder / "libcuda.so.1"
    subprocess.run([GCC, "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return library


def test_driver_found_from_the_kernel_entry(tmp_path, monkeypatch):
    proc = tmp_path / "version"
    proc.write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.95.05  "
                    "Release Build  (dvs-builder@U16-I1-N08-12-2)\nGCC version: gcc 12\n")
    gpu = tmp_path / "gpus" / "0000:01:00.0"
    gpu.mkdir(parents=True)
    (gpu / "information").write_text("Model: \t\t NVIDIA GeForce RTX 4070\nIRQ: 1\n")
    monkeypatch.setattr(hardware, "PROC_VERSION", proc)
    monkeypatch.setattr(hardware, "PROC_GPUS", tmp_path / "gpus")
    monkeypatch.setattr(hardware, "DRIVER_LIBRARIES", {})
    hardware.nvidia_driver.cache_clear()
    try:
        assert hardware.nvidia_driver() == NvidiaDriver("580.95.05", None,
                                                        ("NVIDIA GeForce RTX 4070",))
        proc.unlink()
        hardware.nvidia_driver.cache_clear()
        assert hardware.nvidia_driver() is None
    finally:
        hardware.nvidia_driver.cache_clear()


@pytest.mark.skipif(not sys.platform.startswith("linux") or GCC is None,
                    reason="builds a stand-in driver library with a C compiler (Linux)")
def test_driver_version_read_from_the_driver_library(tmp_path, monkeypatch):
    library = fake_driver_library(tmp_path, 12040)
    monkeypatch.setattr(hardware, "PROC_VERSION", tmp_path / "absent")
    monkeypatch.setattr(hardware, "DRIVER_LIBRARIES", {sys.platform: (str(library),)})
    hardware.nvidia_driver.cache_clear()
    try:
        assert hardware.nvidia_driver() == NvidiaDriver("", (12, 4), ())
    finally:
        hardware.nvidia_driver.cache_clear()
    # A library without the call (not a driver) is no driver.
    other = ctypes.util.find_library("m") if hasattr(ctypes, "util") else None
    if other:
        monkeypatch.setattr(hardware, "DRIVER_LIBRARIES", {sys.platform: (other,)})
        hardware.nvidia_driver.cache_clear()
        try:
            assert hardware.nvidia_driver() is None
        finally:
            hardware.nvidia_driver.cache_clear()


def test_torch_build_read_from_its_files(tmp_path):
    cuda = tmp_path / "cuda"
    cuda.mkdir()
    (cuda / "version.py").write_text("__version__ = '2.14.1'\ncuda: Optional[str] = '13.0'\n"
                                     "hip: Optional[str] = None\n")
    assert hardware.torch_build_in(cuda) == TorchBuild("cuda", "13.0")
    cpu = tmp_path / "cpu"
    cpu.mkdir()
    (cpu / "version.py").write_text("__version__ = '2.13.0+cpu'\ncuda: Optional[str] = None\n")
    assert hardware.torch_build_in(cpu) == TorchBuild("cpu")
    frozen = tmp_path / "frozen"
    (frozen / "lib").mkdir(parents=True)
    assert hardware.torch_build_in(frozen) == TorchBuild("cpu")
    (frozen / "lib" / "libtorch_cuda.so").write_bytes(b"")
    assert hardware.torch_build_in(frozen).kind == "cuda"
    # And the torch installed here, found without importing it.
    import torch

    assert hardware.torch_build().kind == ("cuda" if torch.version.cuda else "cpu")


def test_cpu_build_on_a_gpu_machine_says_the_gpu_build_exists(machine):
    machine(TorchBuild("cpu"), NvidiaDriver("580.95.05", (13, 0), ("NVIDIA GeForce RTX 4070",)))
    notice = hardware.gpu_build_notice()
    assert notice is not None
    assert "RTX 4070" in notice and "CPU build" in notice and "GPU build" in notice
    assert "a second on the GPU instead of a minute" in notice
    assert hardware.startup_notice() == notice
    assert notice in hardware.device_option_help()
    machine(TorchBuild("cpu"), None)  # no NVIDIA driver: nothing to say
    assert hardware.gpu_build_notice() is None and hardware.startup_notice() is None
    assert hardware.device_option_help().startswith("auto, cpu, cuda, mps or cuda:N")


def test_gpu_build_without_a_usable_driver_says_why(machine):
    machine(TorchBuild("cuda", "13.0"), None)
    assert hardware.driver_problem() == "no NVIDIA driver was found"
    assert hardware.startup_notice() == ("This GPU build will run on the CPU: no NVIDIA "
                                         "driver was found.")
    machine(TorchBuild("cuda", "13.0"), NvidiaDriver("535.1", (12, 2)))
    problem = hardware.driver_problem()
    assert problem is not None
    assert "too old" in problem and "CUDA 13.0" in problem and "580 or newer" in problem
    machine(TorchBuild("cuda", "13.0"), NvidiaDriver("580.1", (13, 0)))
    assert hardware.driver_problem() is None and hardware.startup_notice() is None


def test_choose_on_the_cpu_carries_the_reason(monkeypatch, machine):
    machine(TorchBuild("cuda", "13.0"), None)
    monkeypatch.setattr(device, "available_devices", lambda: ["cpu"])
    monkeypatch.setattr(hardware, "cuda_unusable_reason", lambda: "no NVIDIA driver was found")
    placement = device.choose("auto", "auto")
    assert placement.device == "cpu" and placement.note == "no NVIDIA driver was found"
    assert placement.describe() == "CPU fp32 (GPU build on the CPU: no NVIDIA driver was found)"
    assert placement == device.Placement("cpu", "float32")  # the note is not part of the key
    assert device.choose("cpu", "auto").note == ""  # asked for the CPU: nothing to explain
    with pytest.raises(DeviceUnavailable) as err:
        device.choose("cuda", "auto")
    assert str(err.value) == ("--device cuda: CUDA cannot be used: no NVIDIA driver was found; "
                              "use --device auto or cpu")


def test_cuda_on_the_cpu_build_names_the_gpu_build(monkeypatch, machine):
    monkeypatch.setattr(device, "available_devices", lambda: ["cpu"])
    machine(TorchBuild("cpu"), NvidiaDriver("580.95.05", (13, 0)))
    with pytest.raises(DeviceUnavailable) as err:
        device.choose("cuda", "auto")
    assert "this is the CPU build of Moebius Studio. The GPU build uses it" in str(err.value)
    machine(TorchBuild("cpu"), None)
    with pytest.raises(DeviceUnavailable, match="CPU-only installation and this machine has "
                                                "no NVIDIA driver"):
        device.choose("cuda:1", "auto")


def test_the_installed_torch_gives_a_reason_only_when_it_is_a_gpu_build():
    import torch

    hardware.cuda_unusable_reason.cache_clear()
    reason = hardware.cuda_unusable_reason()
    if torch.version.cuda is None or torch.cuda.is_available():
        assert reason is None
    else:  # a CUDA build on a machine without a usable GPU (what CI cannot be sure of)
        assert reason


def test_device_report_names_the_device_and_its_memory():
    import psutil

    events = list(device_report_events("cpu", "exact"))
    assert len(events) == 1 and isinstance(events[0], Done)
    report = events[0].result
    ram = f"{psutil.virtual_memory().total / 1e9:.1f} GB RAM"
    assert report.summary == f"CPU: {hardware.cpu_name()} · {ram} · fp32"
    failed = list(device_report_events("mps" if sys.platform != "darwin" else "cuda",
                                                "exact"))
    assert "--device" in failed[0].message
