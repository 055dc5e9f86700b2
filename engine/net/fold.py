"""Inference-time rewrites that keep the results (up to float rounding) and save time.

`prepare_for_inference` applies all of them; each is also usable alone.

Every eval-mode BatchNorm in the network directly follows a bias-free linear map (a
depthwise or pointwise conv, a query/value projection), so it can be folded into that
map's weights and a new bias: y = s * (W x) + t = (s W) x + t. That removes all 124
batch-norm passes over the activations. The rewritten model no longer has the
checkpoint's key layout; fold after loading, never before saving.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.net.model import BatchNorm, CrossLambda, DWConv, SelfLambda, Upsample
from engine.net.upsample import phase_kernels


@torch.no_grad()
def _fold(layer: nn.Module, bn: nn.Module) -> None:
    """Fold `bn` (applied to `layer`'s output channels) into `layer` (conv or linear)."""
    assert isinstance(bn, BatchNorm)
    scale, shift = bn.scale_shift()
    w = layer.weight
    assert isinstance(w, torch.Tensor)
    layer.weight = nn.Parameter(w * scale.reshape(-1, *([1] * (w.dim() - 1))), False)
    old_bias = layer.bias if isinstance(layer.bias, torch.Tensor) else torch.zeros_like(shift)
    layer.bias = nn.Parameter(old_bias * scale + shift, False)


@torch.no_grad()
def fold_batch_norms(model: nn.Module, dtype: torch.dtype | None = None) -> nn.Module:
    """Fold every BatchNorm of a RemovalModel into the preceding linear map, in place.

    With `dtype`, each folded layer is converted right after its fold (always done in
    fp32): the fp32 copies then never all exist at once, which keeps the peak memory of
    loading a half-precision network near the size of the checkpoint.
    """
    for module in model.modules():
        if isinstance(module, DWConv):
            _fold(module.conv_dw, module.bn1)
            _fold(module.conv_pw, module.bn2)
            module.bn1, module.bn2 = nn.Identity(), nn.Identity()  # type: ignore[assignment]
        elif isinstance(module, (SelfLambda, CrossLambda)):
            _fold(module.to_q, module.norm_q)
            _fold(module.to_v, module.norm_v)
            module.norm_q, module.norm_v = nn.Identity(), nn.Identity()  # type: ignore[assignment]
        else:
            continue
        if dtype is not None:
            module.to(dtype)
    remaining = [n for n, m in model.named_modules() if isinstance(m, BatchNorm)]
    if remaining:
        raise RuntimeError(f"batch norms left unfolded: {remaining[:3]}")
    return model


@torch.no_grad()
def fold_upsamplers(model: nn.Module, dtype: torch.dtype | None = None) -> nn.Module:
    """Give every nearest-x2 + 3x3 upsampler its four 2x2 phase kernels, in place: 2.25x
    fewer operations in those convolutions, 12 % of a step (engine/net/upsample.py).
    `dtype`: as in fold_batch_norms."""
    for module in model.modules():
        if isinstance(module, Upsample) and module.phases is None:
            module.phases = phase_kernels(module.conv.weight)
            # The 3x3 kernel is no longer read: keep its place, not its 74 MB.
            module.conv.weight = nn.Parameter(module.conv.weight.new_empty(0), False)
            if dtype is not None:
                module.to(dtype)
    return model


def prepare_for_inference(model: nn.Module, dtype: torch.dtype | None = None) -> nn.Module:
    """Every rewrite above, in place: what the app runs. With `dtype` the model comes
    back converted, layer by layer (see fold_batch_norms)."""
    model = fold_upsamplers(fold_batch_norms(model, dtype), dtype)
    return model if dtype is None else model.to(dtype)
