"""What this machine has and what this installation of torch can do with it.

The app ships in two flavours (installer/): a CPU build and a CUDA build. A person who
downloaded the wrong one should hear so in one sentence, not find out from the speed:

* the CPU build on a machine with an NVIDIA driver says that a GPU build exists and what
  it would gain (`gpu_build_notice`);
* the CUDA build on a machine where CUDA cannot run says why it runs on the CPU: no
  driver, a driver too old for the build's CUDA, or no device (`cuda_unusable_reason`).

Both are found without importing torch where that is possible (the driver from the
kernel's /proc entry or the driver library's own version call, the torch build from the
files of the installed package), so the app can say it at start-up before the model
loads. `device_report.device_summary` (which imports torch) names the device a placement runs on and
its memory, for Preferences.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import logging
import platform
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# What the GPU build gains, from the measured figures (README, Speed and Benchmarks): a
# 20-step removal of a 512 x 512 window takes about a second on a recent NVIDIA GPU
# against one to two minutes on a desktop CPU.
GPU_GAIN = ("removals take about a second on the GPU instead of a minute or more on the "
            "CPU")
PROC_VERSION = Path("/proc/driver/nvidia/version")
PROC_GPUS = Path("/proc/driver/nvidia/gpus")
# The oldest NVIDIA driver that runs each CUDA major version (NVIDIA's compatibility
# table; minor versions of one major run on the same driver).
MIN_DRIVER = {11: "450", 12: "525", 13: "580"}
DRIVER_LIBRARIES = {"linux": ("libcuda.so.1", "libcuda.so"), "win32": ("nvcuda.dll",)}


@dataclass(frozen=True)
class NvidiaDriver:
    """An installed NVIDIA driver, as far as it can be read without starting CUDA."""

    version: str = ""  # "550.54.14"; "" when only the library was found
    cuda: tuple[int, int] | None = None  # the newest CUDA the driver runs, (12, 4)
    gpus: tuple[str, ...] = ()  # GPU names where the kernel lists them (Linux)

    def describe(self) -> str:
        parts = [f"version {self.version}" if self.version else ""]
        if self.cuda:
            parts.append(f"CUDA {self.cuda[0]}.{self.cuda[1]}")
        detail = ", ".join(p for p in parts if p)
        return f"NVIDIA driver ({detail})" if detail else "NVIDIA driver"


@dataclass(frozen=True)
class TorchBuild:
    """Which torch is installed: "cuda", "rocm", "cpu" (includes Apple's MPS) or
    "missing"; `cuda` is the CUDA version a CUDA build was made for ("12.8")."""

    kind: str
    cuda: str | None = None


def _driver_cuda_version(names: tuple[str, ...]) -> tuple[tuple[int, int] | None, bool]:
    """(newest CUDA version the driver supports, whether its library loaded at all).

    cuDriverGetVersion may be called before cuInit: it starts nothing on the GPU."""
    load = getattr(ctypes, "WinDLL", ctypes.CDLL)  # the driver's calling convention
    for name in names:
        try:
            lib = load(name)
        except OSError:
            continue
        value = ctypes.c_int(0)
        try:
            status = lib.cuDriverGetVersion(ctypes.byref(value))
        except AttributeError:  # not the driver's library
            continue
        if status != 0 or value.value <= 0:  # e.g. the toolkit's stub library
            return None, False
        return (value.value // 1000, value.value % 1000 // 10), True
    return None, False


def _proc_gpu_names() -> tuple[str, ...]:
    names = []
    try:
        for info in sorted(PROC_GPUS.glob("*/information")):
            match = re.search(r"^Model:\s*(.+)$", info.read_text(errors="replace"), re.M)
            if match:
                names.append(match.group(1).strip())
    except OSError:
        pass
    return tuple(names)


@functools.cache
def nvidia_driver() -> NvidiaDriver | None:
    """The NVIDIA driver of this machine, or None. Never imports torch, never starts CUDA."""
    version = ""
    try:
        text = PROC_VERSION.read_text(errors="replace")
        match = re.search(r"Kernel Module\s+(?:for \S+\s+)?([\d.]+)", text)
        version = match.group(1) if match else "unknown"
    except OSError:
        pass
    cuda, loaded = _driver_cuda_version(DRIVER_LIBRARIES.get(sys.platform, ()))
    if not version and not loaded:
        return None
    return NvidiaDriver(version if version != "unknown" else "", cuda, _proc_gpu_names())


@functools.cache
def torch_build() -> TorchBuild:
    """The flavour of the installed torch, read from its files (torch is not imported)."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return TorchBuild("missing")
    return torch_build_in(Path(next(iter(spec.submodule_search_locations))))


def torch_build_in(folder: Path) -> TorchBuild:
    """The flavour of the torch package in `folder`: its version.py names the CUDA (or
    ROCm) version it was built for; a bundle without that file has the CUDA part of torch
    as a library of its own, or not."""
    try:
        text = (folder / "version.py").read_text(encoding="utf-8")
    except OSError:
        text = ""
    cuda = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([\d.]+)['\"]", text, re.M)
    if cuda:
        return TorchBuild("cuda", cuda.group(1))
    if re.search(r"^hip\s*(?::[^=]*)?=\s*['\"][\d.]+", text, re.M):
        return TorchBuild("rocm")
    if text:  # version.py says cuda = None
        return TorchBuild("cpu")
    lib = folder / "lib"
    if any(lib.glob("libtorch_cuda.*")) or any(lib.glob("torch_cuda.*")):
        return TorchBuild("cuda")
    return TorchBuild("cpu")


def gpu_build_notice() -> str | None:
    """For a CPU build of torch on a machine with an NVIDIA driver: that the GPU build
    exists and what it would gain. None where it does not apply (macOS, a CUDA build,
    no NVIDIA driver)."""
    if sys.platform == "darwin" or torch_build().kind != "cpu":
        return None
    driver = nvidia_driver()
    if driver is None:
        return None
    gpu = driver.gpus[0] if driver.gpus else "an NVIDIA GPU"
    return (f"This computer has {gpu}, but this is the CPU build of Moebius Studio. "
            f"The GPU build uses it: {GPU_GAIN}.")


def driver_problem(cuda: str | None = None) -> str | None:
    """Why a CUDA build cannot use CUDA, as far as the driver tells without torch: no
    driver, or one too old for the build's CUDA (`cuda`, default the installed build's).
    None when the driver looks fine or torch is not a CUDA build."""
    build = torch_build()
    if build.kind != "cuda":
        return None
    needed = cuda or build.cuda
    driver = nvidia_driver()
    if driver is None:
        return "no NVIDIA driver was found"
    major = int(needed.split(".")[0]) if needed else 0
    if driver.cuda and driver.cuda[0] < major:
        newer = f" to version {MIN_DRIVER[major]} or newer" if major in MIN_DRIVER else ""
        return (f"the {driver.describe()} is too old for this build, which needs CUDA "
                f"{needed}; update the NVIDIA driver{newer}")
    return None


@functools.cache
def cuda_unusable_reason() -> str | None:
    """Why this CUDA build of torch cannot use CUDA here (imports torch), or None when
    it can or when torch is not a CUDA build. Cached: asked at every device choice."""
    build = torch_build()
    if build.kind != "cuda":
        return None
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    if available:
        return None
    reason = driver_problem(torch.version.cuda)
    if reason:
        return reason
    said = " ".join(str(w.message).strip() for w in caught)
    if "too old" in said or "insufficient" in said.lower():
        return f"the NVIDIA driver is too old for this build (CUDA {torch.version.cuda})"
    return "the NVIDIA driver found no GPU that CUDA can use"


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
        match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        if match:
            return match.group(1).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def startup_notice() -> str | None:
    """What to tell a person once, when the app starts, without importing torch: that a
    GPU build exists (CPU build, NVIDIA driver present), or why this GPU build will run on
    the CPU (no driver, or a driver too old for it). None when there is nothing to say."""
    notice = gpu_build_notice()
    if notice:
        return notice
    problem = driver_problem()
    return f"This GPU build will run on the CPU: {problem}." if problem else None


def device_option_help() -> str:
    """The help text of the --device option, with the notice where one applies."""
    text = "auto, cpu, cuda, mps or cuda:N (default auto: the GPU if there is one)."
    notice = startup_notice()
    return f"{text} {notice}" if notice else text
