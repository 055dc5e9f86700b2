"""Shared pieces for the benchmarks: full-size filled weights in the real file formats,
timing, peak memory, and a machine description for the README tables."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"  # ignored by git: regenerated weights live here


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**30 if sys.platform == "darwin" else 2**20)


def restart_peak_rss() -> None:
    """Linux: start the peak (VmHWM) again from the current RSS, to measure one phase."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def current_peak_rss_gib() -> float | None:
    """Linux: the peak RSS since restart_peak_rss (VmHWM), else None."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        text = open("/proc/cpuinfo").read()
        flags = ", ".join(
            f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in text
        )
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu} ({os.cpu_count()} threads; {flags}); {gpu}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads"
    )


def timed(fn, repeats: int, warmup: int = 1, sync=None) -> dict:
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeats):
        if sync:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        runs.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(runs), "runs_s": runs}


def full_weights() -> tuple[Path, Path]:
    """Filled full-size UNet (.bin, the authors' format) and VAE folder, made once."""
    import torch

    from engine.net.checkpoint import save_bin
    from engine.net.config import MoebiusConfig
    from engine.net.model import RemovalModel
    from engine.net.vae import CONFIG_DIR, Vae
    from engine.net.weight_fill import fill_module_

    unet = CACHE / "unet" / "diffusion_pytorch_model.bin"
    vae_dir = CACHE / "vae"
    if not unet.is_file():
        unet.parent.mkdir(parents=True, exist_ok=True)
        with torch.device("meta"):
            model = RemovalModel(MoebiusConfig.full())
        model = model.to_empty(device="cpu")
        save_bin(fill_module_(model), unet)
    if not (vae_dir / "diffusion_pytorch_model.safetensors").is_file():
        vae = Vae.from_config(CONFIG_DIR / "pixelhacker_vae.json")
        fill_module_(vae.model)
        vae.model.save_pretrained(vae_dir)
    return unet, vae_dir


def write_result(name: str, data: dict) -> Path:
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(data, indent=1))
    return path
