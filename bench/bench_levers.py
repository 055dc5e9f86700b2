"""Every speed lever tried for the CPU, side by side in one process (issue 13).

A step's levers are switched on one after another on the same loaded network and timed
interleaved, so a machine shared with other work shifts every column alike. Times are
the process's CPU seconds at one thread by default (`--threads 2` for wall-clock at two):
on a loaded machine CPU time is what stays comparable.

    python -m bench.bench_levers                    # UNet step levers, bf16 and fp32
    python -m bench.bench_levers --vae              # + VAE encode/decode variants
    python -m bench.bench_levers --position         # + the lambda position-term layouts
    python -m bench.bench_levers --compile          # + torch.compile (takes minutes)

Writes bench/results/levers.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time

from bench.common import full_weights, machine, write_result
from bench.lever_patches import (
    cast_norms,
    linear_pointwise_convs,
    packed_linears,
    position_variants,
)


def _clock(threads: int):
    return time.process_time if threads == 1 else time.perf_counter


def step_levers(dtype_name: str, repeats: int, threads: int) -> dict:
    """s per CFG step for: the network as before this work, then each lever added."""
    import torch

    from engine.net.checkpoint import load_model
    from engine.net.fold import fold_batch_norms, fold_upsamplers

    dtype = getattr(torch, dtype_name)
    base = fold_batch_norms(load_model(full_weights()[0]))
    before = copy.deepcopy(base).to(dtype)
    after = fold_upsamplers(base).to(dtype)
    g = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 9, 64, 64, generator=g).to(dtype)
    t, ids = torch.tensor([500]), after.cfg_ids(1)
    half = dtype != torch.float32
    configs: dict[str, tuple] = {
        "before (main)": (before, cast_norms if half else contextlib.nullcontext),
        "+ sub-pixel upsampling": (after, cast_norms if half else contextlib.nullcontext),
    }
    if half:
        configs["+ norms without casts (kept)"] = (after, contextlib.nullcontext)
        configs["+ packed bf16 linears, fused SiLU (dropped)"] = (
            after, lambda: packed_linears(after, sample, t, ids))
    configs["+ 1x1 convs as linears (dropped)"] = (after, lambda: linear_pointwise_convs())
    clock = _clock(threads)
    times: dict[str, list[float]] = {k: [] for k in configs}
    outs = {}
    with torch.inference_mode():
        for name, (model, patch) in configs.items():
            with patch():
                outs[name] = model(sample, t, ids).float()  # warm-up and deviation
        for _ in range(repeats):
            for name, (model, patch) in configs.items():
                with patch():
                    t0 = clock()
                    model(sample, t, ids)
                    times[name].append(clock() - t0)
    ref = outs["before (main)"]
    rows = {}
    for name in configs:
        med = statistics.median(times[name])
        dev = float((outs[name] - ref).abs().max() / ref.abs().max())
        rows[name] = {"median_s": med, "runs_s": times[name], "max_rel_vs_before": dev}
        print(f"  {dtype_name:9s} {name:45s} {med:6.2f} s  "
              f"({med / statistics.median(times['before (main)']):.2f}x)  dev {dev:.1e}",
              flush=True)
    return rows


def vae_levers(dtype_name: str, threads: int) -> dict:
    """Encode (image + masked image) and decode of one 512 px image: seconds and how much
    memory each adds at its peak."""
    import torch

    from engine.net.vae import Vae, encode_moments, use_channels_last
    from engine.net.vae_decode import decode_lean
    from engine.sampling.device import release_free_memory

    dtype = getattr(torch, dtype_name)
    plain = Vae.load(full_weights()[1], "cpu", dtype)
    cl = Vae.load(full_weights()[1], "cpu", dtype)
    use_channels_last(cl)
    z = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    x = torch.rand(2, 3, 512, 512, generator=torch.Generator().manual_seed(1)) * 2 - 1
    cases = {
        "decode: diffusers": lambda: plain.decode(z),
        "decode: lean (sub-pixel, in place)": lambda: decode_lean(plain, z),
        "decode: lean, channels-last (kept)": lambda: decode_lean(cl, z),
        "encode pair: one batch": lambda: encode_moments(plain, x),
        "encode pair: channels-last, one at a time (kept)":
            lambda: encode_moments(cl, x, one_at_a_time=True),
    }
    clock = _clock(threads)
    rows = {}
    for name, fn in cases.items():
        release_free_memory()
        base = _rss_mib()
        _reset_peak()
        t0 = clock()
        out = fn()
        sec = clock() - t0
        rows[name] = {"s": sec, "peak_extra_mib": _peak_mib() - base}
        del out
        print(f"  {dtype_name:9s} {name:50s} {sec:6.1f} s  peak +{rows[name]['peak_extra_mib']}"
              " MiB", flush=True)
    return rows


def compile_lever(dtype_name: str, threads: int) -> dict:
    """torch.compile (inductor) of the prepared network: compile time and step time."""
    import torch

    from engine.net.checkpoint import load_model
    from engine.net.fold import prepare_for_inference

    dtype = getattr(torch, dtype_name)
    model = prepare_for_inference(load_model(full_weights()[0])).to(dtype)
    sample = torch.randn(2, 9, 64, 64, generator=torch.Generator().manual_seed(0)).to(dtype)
    t, ids = torch.tensor([500]), model.cfg_ids(1)
    clock = _clock(threads)
    with torch.inference_mode():
        model(sample, t, ids)
        t0 = clock()
        model(sample, t, ids)
        eager = clock() - t0
        compiled = torch.compile(model)
        t0 = time.perf_counter()
        compiled(sample, t, ids)
        compile_s = time.perf_counter() - t0
        runs = []
        for _ in range(3):
            t0 = clock()
            compiled(sample, t, ids)
            runs.append(clock() - t0)
    row = {"eager_s": eager, "compiled_s": statistics.median(runs), "compile_wall_s": compile_s}
    print(f"  {dtype_name:9s} torch.compile: {row['compiled_s']:.2f} s per step against "
          f"{eager:.2f} s eager; compiling took {compile_s:.0f} s", flush=True)
    return row


def _status(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return 0


def _rss_mib() -> int:
    return _status("VmRSS")


def _peak_mib() -> int:
    return _status("VmHWM")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:  # Linux: VmHWM starts again from VmRSS
        f.write("5")


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtypes", nargs="*", default=["bfloat16", "float32"])
    ap.add_argument("--vae", action="store_true")
    ap.add_argument("--position", action="store_true")
    ap.add_argument("--compile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from engine.sampling.device import tune_cpu_runtime

    tune_cpu_runtime()
    result: dict = {"machine": machine(), "threads": args.threads,
                    "clock": "process CPU time" if args.threads == 1 else "wall"}
    for dtype in args.dtypes:
        print(f"UNet step, batch 2 at 512 px, {dtype}:", flush=True)
        result[f"step_{dtype}"] = step_levers(dtype, args.repeats, args.threads)
    if args.position:
        print("lambda position term per layer (batch 2):", flush=True)
        result["position"] = {d: position_variants(d, args.threads) for d in args.dtypes}
    if args.vae:
        print("VAE, one 512 px image:", flush=True)
        result["vae"] = {d: vae_levers(d, args.threads) for d in args.dtypes}
    if args.compile:
        print("torch.compile:", flush=True)
        result["compile"] = {d: compile_lever(d, args.threads) for d in args.dtypes}
    print(f"machine: {machine()}\nwritten: {write_result('levers', result)}")


if __name__ == "__main__":
    main()
