"""Where and in which precision the network runs.

Automatic choice: CUDA, then Apple's MPS, then the CPU. Quality:

* "exact": fp32 everywhere (on CUDA without TF32): the reference's numbers.
* "fast": half precision where the hardware does it natively: fp16 on GPUs (on an H100
  it is both faster than bf16 and 8x closer to fp32: 52 dB against 37 dB PSNR on a
  whole removal), bf16 on CPUs with AVX512-BF16/AMX. On other CPUs bf16 is emulated and
  several times slower than fp32, so "fast" stays fp32 there.
* "auto" (the default): fast on GPUs, exact on CPUs.

Half precision falls back to fp32 for the rest of a job if a step produces non-finite
values (the sampler checks every step).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.errors import DeviceUnavailable, SettingsError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
QUALITY_CHOICES = ("auto", "exact", "fast")


@dataclass(frozen=True)
class Placement:
    device: str  # "cpu", "cuda", "cuda:1", "mps"
    dtype: str  # "float32", "bfloat16", "float16"
    # Why a GPU build runs on the CPU here ("no NVIDIA driver was found"), else "".
    note: str = field(default="", compare=False)

    @property
    def torch_device(self) -> torch.device:
        import torch

        return torch.device(self.device)

    @property
    def torch_dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.dtype)

    def describe(self) -> str:
        names = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
        text = f"{self.device.upper()} {names[self.dtype]}"
        return f"{text} (GPU build on the CPU: {self.note})" if self.note else text


def available_devices() -> list[str]:
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


@dataclass(frozen=True)
class DeviceSupport:
    device: str  # one of DEVICE_CHOICES
    available: bool
    reason: str = ""  # why not, in plain words


def device_support() -> list[DeviceSupport]:
    """Every device choice, whether this machine can use it, and if not, why."""
    import torch

    cuda_why = ""
    if not torch.cuda.is_available():
        cuda_why = ("this copy of PyTorch was built for CPUs only" if torch.version.cuda is None
                    else "no NVIDIA GPU with a working driver was found")
    mps = getattr(torch.backends, "mps", None)
    mps_why = ""
    if sys.platform != "darwin":
        mps_why = "Apple Metal exists only on Macs"
    elif mps is None or not mps.is_built():
        mps_why = "this copy of PyTorch was built without Metal support"
    elif not mps.is_available():
        mps_why = "needs a Mac with Apple silicon (or AMD graphics) and macOS 12.3 or newer"
    return [DeviceSupport("auto", True), DeviceSupport("cpu", True),
            DeviceSupport("cuda", not cuda_why, cuda_why),
            DeviceSupport("mps", not mps_why, mps_why)]


def cpu_has_native_bf16() -> bool:
    """True where the CPU multiplies bf16 in hardware (AVX512-BF16 / AMX); elsewhere bf16
    is emulated and slower than fp32."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose(device: str = "auto", quality: str = "auto") -> Placement:
    """Resolve the user's device and quality settings to a concrete placement."""
    if device not in DEVICE_CHOICES and not device.startswith("cuda:"):
        raise SettingsError(f"unknown device {device!r}; choose one of "
                            f"{', '.join(DEVICE_CHOICES)}")
    if quality not in QUALITY_CHOICES:
        raise SettingsError(f"unknown quality {quality!r}; choose auto, exact or fast")
    have = available_devices()
    requested = device
    if device == "auto":
        device = "cuda" if "cuda" in have else "mps" if "mps" in have else "cpu"
    elif device.split(":")[0] not in have:
        raise DeviceUnavailable(_unavailable(device))
    elif device.startswith("cuda:"):
        _check_cuda_index(device)
    note = ""
    if requested == "auto" and device == "cpu":
        from engine.sampling.hardware import cuda_unusable_reason

        reason = cuda_unusable_reason()
        if reason:
            note = reason
            _log_once(f"the GPU build runs on the CPU: {reason}")
    return Placement(device, _dtype_for(device, quality), note)


def _unavailable(device: str) -> str:
    """Why `device` cannot be used, and what to do instead."""
    from engine.sampling.hardware import cuda_unusable_reason, gpu_build_notice, torch_build

    kind = device.split(":")[0]
    if kind == "cuda":
        notice = gpu_build_notice()
        if notice:  # the CPU build on a machine with an NVIDIA GPU
            return f"--device {device}: {notice} Until then use --device auto or cpu."
        if torch_build().kind == "cpu":
            return (f"--device {device}: this is a CPU-only installation and this machine "
                    "has no NVIDIA driver; use --device auto or cpu")
        reason = cuda_unusable_reason()
        if reason:
            return f"--device {device}: CUDA cannot be used: {reason}; use --device auto or cpu"
        return (f"--device {device}: this machine has no such NVIDIA GPU; "
                "use --device auto, cpu or cuda")
    names = {"mps": "Apple Metal (MPS) device"}
    return (f"--device {device}: this machine has no {names.get(kind, device)} that "
            "PyTorch can use; use --device auto or cpu")


_said: set[str] = set()


def _log_once(note: str) -> None:
    if note not in _said:
        _said.add(note)
        log.warning("%s", note)


def _check_cuda_index(device: str) -> None:
    """cuda:N must name a GPU there is, or the failure would only come after the model load."""
    import torch

    count = torch.cuda.device_count()
    index = device.split(":", 1)[1]
    if not index.isdigit() or int(index) >= count:
        have = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
        raise DeviceUnavailable(f"--device {device}: this machine has {count} NVIDIA GPU(s) "
                                f"({have}); use one of those, auto or cpu")


def _dtype_for(device: str, quality: str) -> str:
    kind = device.split(":")[0]
    if quality == "auto":
        quality = "exact" if kind == "cpu" else "fast"
    if quality == "exact":
        return "float32"
    if kind == "cpu":
        if cpu_has_native_bf16():
            return "bfloat16"
        log.info("this CPU has no native bf16: fast mode runs in fp32")
        return "float32"
    return "float16"  # CUDA and MPS


_tuned = False


def tune_cpu_runtime() -> None:
    """Process-wide settings that make the CPU path fast. Called once, at model load.

    * Flush denormals: untrained or unusual activations can underflow through SiLU, and
      denormal arithmetic is up to 100x slower on x86. Values below 1e-38 do not matter.
    * Keep freed memory in the heap (glibc): the UNet allocates and frees activations
      of up to ~50 MB many times per step; returning each to the OS makes the next tensor
      page-fault its memory back in, which can cost more than the arithmetic. Measured on
      a whole 512 image (2-core Zen 3, bench/bench_engine.py, MOEBIUS_MALLOC=...):
        "default" (glibc as is)                  147.6 s, peak RSS 2.81 GiB
        "" (ours: blocks < 32 MB from the heap)  137.7 s, peak RSS 3.16 GiB
        "heap" (everything from the heap)        133.5 s, peak RSS 4.03 GiB
      The middle setting is the default: most of the speed, little of the memory.
    """
    global _tuned
    if _tuned:
        return
    _tuned = True
    import torch

    torch.set_flush_denormal(True)
    mode = os.environ.get("MOEBIUS_MALLOC", "")
    if sys.platform.startswith("linux") and mode != "default":
        try:
            libc = ctypes.CDLL("libc.so.6")
            m_trim_threshold, m_mmap_threshold, m_mmap_max = -1, -3, -4
            if mode == "heap":
                libc.mallopt(m_mmap_max, 0)
                libc.mallopt(m_trim_threshold, 1 << 30)
            else:
                libc.mallopt(m_mmap_threshold, 32 << 20)
                libc.mallopt(m_trim_threshold, 256 << 20)
        except OSError:  # not glibc (e.g. musl): nothing to tune
            log.debug("glibc not found; allocator left as is")


def release_free_memory(collect: bool = True) -> None:
    """Hand memory nothing uses any more back to the OS: unreachable cycles, then the
    heap's free pages (glibc `malloc_trim`).

    tune_cpu_runtime keeps freed blocks in the heap so that the next step reuses them;
    between the big phases (after loading, where fp32 weights became half precision, and
    after a removal's decode) that memory would otherwise stay counted against the app.
    """
    import gc

    # diffusers' loader leaves the fp32 VAE file mapped inside a cycle. A collection holds
    # the GIL for a few tenths of a second in a process with a GUI, so it is for after a
    # load; what a removal frees goes at once (reference counts).
    if collect:
        gc.collect()
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        log.debug("malloc_trim unavailable")
