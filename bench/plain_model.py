"""The benchmarks' baseline: our own network run the plain, unoptimised way.

The same modules and weights, but each lambda layer computed literally as the
architecture describes it (a 15x15 correlation of every value map with every position
kernel, einsum contractions), NCHW activations, batch norms not folded, and the default
allocator. Numerically it is the same function (the golden tests accept both); it is
what a straightforward transcription costs, so the speed-ups have a fair reference.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F

from engine.net.model import CrossLambda, SelfLambda, side


def _self_lambda_literal(self, x):  # [B, N, C] -> [B, N, C]
    b, n, c = x.shape
    hw, h, dk = side(n), self.heads, self.dk
    q = self.norm_q.on_last_dim(F.linear(x, self.to_q.weight.flatten(1)))
    k = F.linear(x, self.to_k.weight.flatten(1)).softmax(dim=1)
    v = self.norm_v.on_last_dim(F.linear(x, self.to_v.weight.flatten(1)))
    q = q.reshape(b, n, h, dk).permute(0, 2, 3, 1)  # [B, h, k, N]
    content = torch.einsum("bnk,bnv->bkv", k, v)
    y_c = torch.einsum("bhkn,bkv->bhvn", q, content)
    v_maps = v.permute(0, 2, 1).reshape(b, 1, dk, hw, hw)  # the authors' 3-D conv layout
    pos = F.conv3d(v_maps, self.pos_conv.weight, self.pos_conv.bias,
                   padding=self.pos_conv.padding)  # [B, k, v, H, W]
    y_p = torch.einsum("bhkn,bkvn->bhvn", q, pos.reshape(b, dk, dk, n))
    return (y_c + y_p).permute(0, 3, 1, 2).reshape(b, n, c).contiguous()


def _cross_lambda_literal(self, x, context):
    b, n, c = x.shape
    h, dk = self.heads, self.dk
    q = self.norm_q.on_last_dim(F.linear(x, self.to_q.weight.flatten(1)))
    q = q.reshape(b, n, h, dk).permute(0, 2, 3, 1)  # [B, h, k, N]
    k = self.to_k(context).softmax(dim=1)  # [B, l, k]
    v = self.norm_v(self.to_v(context).transpose(1, 2))  # [B, v, l]
    content = torch.einsum("blk,bvl->bkv", k, v)
    y_c = torch.einsum("bhkn,bkv->bhvn", q, content)
    table = self.rel_pos_emb.squeeze(-1)  # [N, l, k]
    lam_p = torch.einsum("nlk,bvl->bnkv", table, v)
    y_p = torch.einsum("bhkn,bnkv->bhvn", q, lam_p)
    return (y_c + y_p).permute(0, 3, 1, 2).reshape(b, n, c).contiguous()


def make_plain(model: torch.nn.Module) -> torch.nn.Module:
    """Switch a RemovalModel (in place) to the literal, unoptimised computation."""
    model.diff_model.memory_format = torch.contiguous_format
    for m in model.modules():
        if isinstance(m, SelfLambda):
            m.forward = types.MethodType(_self_lambda_literal, m)
        elif isinstance(m, CrossLambda):
            m.forward = types.MethodType(_cross_lambda_literal, m)
    return model
