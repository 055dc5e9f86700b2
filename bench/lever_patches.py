"""Alternative implementations of parts of the network, for bench/bench_levers.py only.

Each is a context manager that swaps one computation in engine.net.model for the
duration of a measurement: the way main computed it before (`cast_norms`), or a lever
that was tried and not kept. Kept here so the README's figures can be re-measured.
"""

from __future__ import annotations

import contextlib
import statistics
import time

import torch
import torch.nn.functional as F

import engine.net.model as M


@contextlib.contextmanager
def _swap(owner, name: str, value):
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


@contextlib.contextmanager
def cast_norms():
    """Half-precision norms as main computed them: cast to fp32 and back."""

    def group(self, x):
        w, b = self.weight.float(), self.bias.float()
        return F.group_norm(x.float(), self.num_groups, w, b, self.eps).to(x.dtype)

    def layer(self, x):
        w, b = self.weight.float(), self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).to(x.dtype)

    with _swap(M.GroupNorm, "forward", group), _swap(M.LayerNorm, "forward", layer):
        yield


@contextlib.contextmanager
def packed_linears(model, sample, t, ids):
    """Every 1x1 projection through oneDNN with its weight packed once for the layer's
    row count, and the Mix-FFN's SiLU fused into its first projection (what inductor's
    freezing pass does, by hand). Uses torch.ops.mkldnn, which is not a public API."""
    mk = torch.ops.mkldnn
    rows: dict[int, tuple] = {}
    plain = M.pointwise

    def record(x, conv, act="none"):
        rows[id(conv)] = (conv, x.numel() // x.shape[-1])
        y = plain(x, conv)
        return F.silu(y, inplace=True) if act == "swish" else y

    def packed(x, conv, act="none"):
        weight = conv.__dict__.get("_bench_packed")
        if weight is None:
            return record(x, conv, act)
        s = x.shape
        y = mk._linear_pointwise(x.reshape(-1, s[-1]), weight, conv.bias, act, [], "")
        return y.view(*s[:-1], -1)

    def ffn(self, x):
        hw = M.side(x.shape[1])
        a = M.pointwise(x, self.inverted_conv.conv, "swish")
        d = self.depth_conv.conv(M.grid(a, hw, hw))
        x1, gate = d.chunk(2, dim=1)
        return M.pointwise(M.tokens(x1 * F.silu(gate, inplace=True)), self.point_conv.conv)

    with _swap(M, "pointwise", record), _swap(M.MixFFN, "forward", ffn):
        model(sample, t, ids)  # learn each projection's row count
    for conv, n in rows.values():
        conv._bench_packed = mk._reorder_linear_weight(conv.weight.flatten(1), n)
    try:
        with _swap(M, "pointwise", packed), _swap(M.MixFFN, "forward", ffn):
            yield
    finally:
        for conv, _ in rows.values():
            del conv._bench_packed


@contextlib.contextmanager
def linear_pointwise_convs():
    """The depthwise-separable convs' 1x1 half as a linear on the token view."""

    def dwconv(self, x):
        y = F.relu_(self.conv_dw(x))
        _, _, h, w = y.shape
        out = M.pointwise(M.tokens(y), self.conv_pw)
        if self.residual:
            out += M.tokens(x)
        return M.grid(out, h, w)

    with _swap(M.DWConv, "forward", dwconv):
        yield


def _tiled_position(q, v, kernels, r, heads, tile, phase_kernels):
    """The self-lambda's position term computed per tile x tile block of positions as two
    dense matmuls (window kernels per in-tile position, then the tile's values): no
    per-position window copy, (tile + r - 1)^2 / r^2 times the multiply-adds."""
    b, n, c = q.shape
    hw, dk, pad = M.side(n), c // heads, r // 2
    s, tb, p = tile + 2 * pad, hw // tile, tile * tile
    tiles = tb * tb
    qt = q.view(b, tb, tile, tb, tile, heads, dk).permute(2, 4, 0, 1, 3, 5, 6)
    qt = qt.reshape(p, b * tiles * heads, dk)
    a = torch.empty(b * tiles, heads, p, s * s, dtype=q.dtype)
    torch.bmm(qt, phase_kernels, out=a.permute(2, 0, 1, 3).as_strided(
        (p, b * tiles * heads, s * s), (s * s, p * s * s, 1)))
    vp = F.pad(v.view(b, hw, hw, dk), (0, 0, pad, pad, pad, pad))
    hp = hw + 2 * pad
    vt = vp.as_strided((b, tb, tb, s, s, dk), (hp * hp * dk, tile * hp * dk, tile * dk,
                                               hp * dk, dk, 1)).reshape(b * tiles, s * s, dk)
    y = torch.bmm(a.view(b * tiles, heads * p, s * s), vt)
    return y.view(b, tb, tb, heads, tile, tile, dk).permute(0, 1, 4, 2, 5, 3, 6).reshape(b, n, c)


def _chunked_position(layer, q, v):
    """The position term as SelfLambda.forward computes it (its loop, on its own)."""
    b, n, c = q.shape
    hw, h, dk = M.side(n), layer.heads, layer.dk
    r = layer.pos_conv.weight.shape[-1]
    kernels = layer.pos_conv.weight.reshape(dk, r * r)
    v_pad = F.pad(v.view(b, hw, hw, dk), (0, 0, r // 2, r // 2, r // 2, r // 2))
    wp = hw + 2 * (r // 2)
    y = torch.zeros(b, hw, hw * h, dk, dtype=q.dtype)
    q_rows = q.view(b, hw, hw * h, dk)
    rows = max(1, layer.chunk_positions["cpu"] // hw)
    for bi in range(b):
        for y0 in range(0, hw, rows):
            nr = min(rows, hw - y0)
            resp = q_rows[bi, y0 : y0 + nr].reshape(-1, dk) @ kernels
            window = v_pad[bi, y0:].as_strided((nr, hw, r, r, dk),
                                               (wp * dk, dk, wp * dk, dk, 1))
            out = y[bi, y0 : y0 + nr].view(nr * hw, h, dk)
            out.baddbmm_(resp.view(nr * hw, h, r * r), window.reshape(nr * hw, r * r, dk))
    return y.view(b, n, c)


def _tile_kernels(kernels, r, tile):
    dk, s = kernels.shape[0], tile + r - 1
    out = torch.zeros(tile, tile, dk, s, s, dtype=kernels.dtype)
    k = kernels.view(dk, r, r)
    for py in range(tile):
        for px in range(tile):
            out[py, px, :, py:py + r, px:px + r] = k
    return out.view(tile * tile, dk, s * s)


def position_variants(dtype_name: str, threads: int) -> dict:
    """ms per self-lambda position term (batch 2) at each level: the shipped chunked
    window product against the tiled dense form."""
    dtype = getattr(torch, dtype_name)
    clock = time.process_time if threads == 1 else time.perf_counter
    rows = {}
    for hw, c in ((64, 320), (32, 640), (16, 1280)):
        layer = M.SelfLambda(c, 8, 15)
        torch.nn.init.normal_(layer.pos_conv.weight, std=0.05)
        layer = layer.to(dtype)
        dk = c // 8
        g = torch.Generator().manual_seed(0)
        q = torch.randn(2, hw * hw, c, generator=g).to(dtype)
        v = torch.randn(2, hw * hw, dk, generator=g).to(dtype)
        kernels = layer.pos_conv.weight.reshape(dk, 225)
        cases = {"shipped: per-position windows": lambda q=q, v=v, layer=layer:
                 _chunked_position(layer, q, v)}
        for tile in (2, 4, 8):
            pk = _tile_kernels(kernels, 15, tile)
            cases[f"tiled {tile}x{tile} (position term only)"] = (
                lambda q=q, v=v, k=kernels, t=tile, pk=pk: _tiled_position(q, v, k, 15, 8, t, pk))
        level = {}
        with torch.inference_mode():
            for name, fn in cases.items():
                fn()
                runs = []
                for _ in range(3):
                    t0 = clock()
                    fn()
                    runs.append(clock() - t0)
                level[name] = statistics.median(runs) * 1000
                print(f"  {dtype_name:9s} {hw}x{hw} {name:38s} {level[name]:7.1f} ms", flush=True)
        rows[f"{hw}x{hw}"] = level
    return rows
