"""Which device removals run on with given settings, and its memory, for Preferences.

A job generator, because finding out imports torch: the app runs it on its worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from engine.errors import MoebiusError
from engine.events import Done, Failed, JobEvent
from engine.sampling.device import Placement, choose
from engine.sampling.hardware import cpu_name, gpu_build_notice


def device_summary(placement: Placement) -> str:
    """'NVIDIA GeForce RTX 4070 · 12.0 GB · fp16' or 'CPU: AMD Ryzen 7 · 32.0 GB RAM ·
    fp32': the device a placement runs on and its memory (imports torch)."""
    import psutil

    names = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
    precision = names[placement.dtype]
    if placement.device.startswith("cuda"):
        import torch

        index = torch.device(placement.device).index or 0
        props = torch.cuda.get_device_properties(index)
        return f"{props.name} · {props.total_memory / 1e9:.1f} GB · {precision}"
    ram = psutil.virtual_memory().total / 1e9
    if placement.device == "mps":
        return f"Apple GPU (Metal) · {ram:.1f} GB shared memory · {precision}"
    return f"CPU: {cpu_name()} · {ram:.1f} GB RAM · {precision}"



@dataclass(frozen=True)
class DeviceReport:
    """The device removals run on with given settings, for Preferences."""

    summary: str  # device_summary(...)
    note: str  # why a GPU is not used, or that a GPU build exists; "" when neither


def device_report_events(device: str, quality: str) -> Iterator[JobEvent]:
    """A job (it imports torch, so the app runs it on its worker): Done(DeviceReport)
    for these settings, or Failed when the device cannot be used."""
    try:
        placement = choose(device, quality)
        note = (f"The GPU build runs on the CPU here: {placement.note}." if placement.note
                else gpu_build_notice() or "")
        yield Done(DeviceReport(device_summary(placement), note))
    except MoebiusError as exc:
        yield Failed(str(exc), error=exc)
