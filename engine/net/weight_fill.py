"""The reference's deterministic weight fill, so tests and benchmarks can make real-format
checkpoints without downloading anything.

Each key gets its own generator seeded by its position in the sorted key list; the value
rule depends on the key's name and rank. Only torch's CPU `randn` stream reproduces it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch


def fill_value(key: str, shape: tuple[int, ...], sorted_index: int) -> torch.Tensor:
    if key.endswith("num_batches_tracked"):
        return torch.zeros((), dtype=torch.int64)
    g = torch.Generator().manual_seed(1000 + sorted_index)
    r = torch.randn(shape, generator=g)
    if key.endswith("running_mean"):
        return r * 0.1
    if key.endswith("running_var"):
        return 1.0 + r.abs() * 0.1
    if key == "embedding_layer.weight":
        return r
    if len(shape) >= 2:
        fan_in = r.numel() // shape[0]
        return r / math.sqrt(fan_in)
    if key.endswith(".weight"):
        return 1.0 + r * 0.1
    if key.endswith(".bias"):
        return r * 0.02
    raise ValueError(f"no fill rule for {key!r}")


def filled_state_dict(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Fill a complete key -> shape mapping; the result keeps the mapping's key order."""
    rank = {k: i for i, k in enumerate(sorted(shapes))}
    return {k: fill_value(k, tuple(shape), rank[k]) for k, shape in shapes.items()}


def fill_module_(module: torch.nn.Module) -> torch.nn.Module:
    """Overwrite every parameter and buffer of `module` in place with the fill."""
    sd = module.state_dict()
    values = filled_state_dict({k: tuple(v.shape) for k, v in sd.items()})
    with torch.no_grad():
        for k, v in sd.items():
            v.copy_(values[k])
    return module
