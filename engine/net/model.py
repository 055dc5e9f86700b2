"""The Moebius inpainting network, written from the architecture description.

Reads top-down from the smallest parts to the whole:

    BatchNorm            eval-only batch norm (the checkpoint's 124 BN layers)
    DWConv               depthwise-separable conv: dw3x3 -> BN -> ReLU -> pw1x1 -> BN (+x)
    ResnetBlock          GroupNorm/SiLU/DWConv twice, with the time embedding added between
    SelfLambda           local lambda layer, 15x15 position kernels       (attn1)
    CrossLambda          lambda over the 10 ID tokens, per-position table  (attn2)
    MixFFN               1x1 -> SiLU -> dw3x3 -> gated SiLU -> 1x1          (ff)
    TransformerBlock     pre-norm residual: attn1, attn2, ff
    Transformer          GroupNorm -> proj_in -> block -> proj_out (+x)
    Downsample/Upsample  strided 3x3 conv / nearest x2 then 3x3 conv
    DownBlock/UpBlock    (resnet, transformer) x 2 or x 3, then the resampler
    TimestepProjection   sinusoidal timestep features (cos first)
    UNet                 conv_in, 3 down levels, no mid block, 3 up levels, conv_out
    RemovalModel         the ID table + the UNet (keys `embedding_layer.*`, `diff_model.*`)

Tensor layout: activations are NCHW tensors stored channels-last, so that the token view
[B, N, C] the transformer works on is the same memory (no copies between the conv and the
token halves of a block). N = H * W tokens in row-major order. Shape comments use
B (batch), C (channels), H, W, N, h (heads), k (key depth), v (value depth), l (ID tokens).

Module and parameter names are those of the authors' checkpoint, so `load_state_dict`
with strict=True accepts their `diffusion_pytorch_model.bin` unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.net.config import MoebiusConfig
from engine.net.upsample import upsample_conv

CL = torch.channels_last


def tokens(x: Tensor) -> Tensor:
    """[B, C, H, W] channels-last -> [B, N, C] (a view, no copy)."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


def grid(t: Tensor, h: int, w: int) -> Tensor:
    """[B, N, C] -> [B, C, H, W] channels-last (a view of contiguous tokens)."""
    b, n, c = t.shape
    return t.reshape(b, h, w, c).permute(0, 3, 1, 2)


def side(n: int) -> int:
    """The grid side the network assumes for N tokens (it only handles square grids)."""
    return math.isqrt(n)


def pointwise(t: Tensor, conv: nn.Conv2d) -> Tensor:
    """A 1x1 convolution applied to tokens [B, N, Cin] -> [B, N, Cout]."""
    return F.linear(t, conv.weight.flatten(1), conv.bias)


# ----------------------------------------------------------------------------- small parts

HALF = (torch.float16, torch.bfloat16)
# MIXED_ON_CPU: PyTorch's CPU norm kernels take half-precision input with fp32 weights and
# accumulate in fp32, so they give what casting to fp32 and back gives (group norm bit for
# bit, layer norm within one bf16 step) without two extra copies of the activations: 3 %
# of a bf16 step (bench/bench_levers.py).


class GroupNorm(nn.GroupNorm):
    """GroupNorm that computes its statistics in fp32 when the network runs in half
    precision: the residual stream reaches std ~27, where bf16 sums lose too much."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype not in HALF:
            return super().forward(x)
        w, b = self.weight.float(), self.bias.float()
        if x.device.type == "cpu":  # see MIXED_ON_CPU
            return F.group_norm(x, self.num_groups, w, b, self.eps)
        return F.group_norm(x.float(), self.num_groups, w, b, self.eps).to(x.dtype)


class LayerNorm(nn.LayerNorm):
    """LayerNorm with fp32 statistics in half precision (see GroupNorm)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype not in HALF:
            return super().forward(x)
        w, b = self.weight.float(), self.bias.float()
        if x.device.type == "cpu":  # see MIXED_ON_CPU
            return F.layer_norm(x, self.normalized_shape, w, b, self.eps)
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).to(x.dtype)


def softmax32(x: Tensor, dim: int) -> Tensor:
    """Softmax accumulated in fp32 whatever the input precision."""
    return x.softmax(dim=dim, dtype=torch.float32).to(x.dtype)


def bn_last(bn: nn.Module, t: Tensor) -> Tensor:
    """Apply a BatchNorm over the last dimension, or nothing if it was folded away."""
    return bn.on_last_dim(t) if isinstance(bn, BatchNorm) else t


class BatchNorm(nn.BatchNorm2d):
    """BatchNorm that always uses its running statistics.

    Training-mode batch norm would both change the output and overwrite the checkpoint's
    statistics; this network is only ever used for inference.
    """

    def forward(self, x: Tensor) -> Tensor:  # [B, C, ...] -> same
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )

    def scale_shift(self) -> tuple[Tensor, Tensor]:
        """(scale, shift) so that BN(x) = x * scale + shift per channel."""
        mean, var = self.running_mean, self.running_var
        assert mean is not None and var is not None  # always tracked (the checkpoint has them)
        scale = self.weight * torch.rsqrt(var + self.eps)
        return scale, self.bias - mean * scale

    def on_last_dim(self, t: Tensor) -> Tensor:
        """BN for tensors whose channels are the last dimension, e.g. tokens [B, N, C]."""
        scale, shift = self.scale_shift()
        return torch.addcmul(shift, t, scale)


class DWConv(nn.Module):
    """Depthwise-separable conv; adds its input back when the channel count is unchanged."""

    def __init__(self, cin: int, cout: int, residual: bool = True):
        super().__init__()
        self.conv_dw = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.bn1 = BatchNorm(cin)
        self.conv_pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = BatchNorm(cout)
        self.residual = residual and cin == cout

    def forward(self, x: Tensor) -> Tensor:  # [B, Cin, H, W] -> [B, Cout, H, W]
        y = self.bn2(self.conv_pw(F.relu(self.bn1(self.conv_dw(x)))))
        return x + y if self.residual else y


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int):
        super().__init__()
        self.norm1 = GroupNorm(32, cin, eps=1e-5)
        self.conv1 = DWConv(cin, cout)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = GroupNorm(32, cout, eps=1e-5)
        self.conv2 = DWConv(cout, cout)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:  # [B,Cin,H,W], [B,T] -> [B,Cout,H,W]
        a = self.conv1(F.silu(self.norm1(x), inplace=True))
        a = a + self.time_emb_proj(F.silu(emb))[:, :, None, None]
        a = self.conv2(F.silu(self.norm2(a), inplace=True))
        skip = x if self.conv_shortcut is None else self.conv_shortcut(x)
        return skip + a


# ----------------------------------------------------------------------------- lambda layers


class SelfLambda(nn.Module):
    """Local lambda layer: a content lambda over all positions plus r x r position lambdas."""

    def __init__(self, dim: int, heads: int, r: int):
        super().__init__()
        self.heads, self.dk = heads, dim // heads
        dk = self.dk
        self.to_q = nn.Conv2d(dim, dim, 1, bias=False)
        self.to_k = nn.Conv2d(dim, dk, 1, bias=False)
        self.to_v = nn.Conv2d(dim, dk, 1, bias=False)
        self.norm_q = BatchNorm(dim)
        self.norm_v = BatchNorm(dk)
        # The authors store the kernels as a 3-D conv with depth 1; it acts as a 2-D one.
        self.pos_conv = nn.Conv3d(1, dk, (1, r, r), padding=(0, r // 2, r // 2))

    # Positions handled per chunk of the position term: small enough that a chunk's window
    # matrix stays in cache on a CPU; GPUs prefer one big chunk.
    chunk_positions = {"cpu": 64}

    def forward(self, x: Tensor) -> Tensor:  # [B, N, C] -> [B, N, C]
        b, n, c = x.shape
        hw, h, dk = side(n), self.heads, self.dk
        q = bn_last(self.norm_q, pointwise(x, self.to_q))  # [B, N, h*k]
        k = softmax32(pointwise(x, self.to_k), dim=1)  # [B, N, k], normalised over positions
        v = bn_last(self.norm_v, pointwise(x, self.to_v))  # [B, N, v]

        # Content lambda; the position kernels' bias reaches every output the same way.
        bias = self.pos_conv.bias
        assert bias is not None
        content = k.transpose(1, 2) @ v + bias[:, None]  # [B, k, v]
        y = q.view(b, n * h, dk) @ content  # [B, N*h, v]   content term, one matmul

        # Position term. Written out it is  y[n,h,v] += sum_k q[n,h,k] sum_ij P[k,ij] v[n+ij,v],
        # i.e. a 15x15 correlation per (k, v) pair followed by a k-contraction. Contracting k
        # with P first (R = q P) then applying R to the 15x15 window of v costs 2*h*r^2*v
        # instead of k*r^2*v + h*k*v multiply-adds per position: 2.5x fewer at the first
        # level and 10x fewer at the last, with the same result up to rounding.
        r = self.pos_conv.weight.shape[-1]
        kernels = self.pos_conv.weight.reshape(dk, r * r)  # [k, r*r]
        v_pad = F.pad(v.view(b, hw, hw, dk), (0, 0, r // 2, r // 2, r // 2, r // 2))
        wp = hw + 2 * (r // 2)
        y = y.view(b, hw, hw * h, dk)  # [B, H, W*h, v]
        q_rows = q.view(b, hw, hw * h, dk)  # [B, H, W*h, k]
        rows = max(1, self.chunk_positions.get(x.device.type, n) // hw)
        for bi in range(b):
            for y0 in range(0, hw, rows):
                nr = min(rows, hw - y0)
                resp = q_rows[bi, y0 : y0 + nr].reshape(-1, dk) @ kernels  # [nr*W*h, r*r]
                window = v_pad[bi, y0:].as_strided(  # [nr, W, r, r, v] view into v_pad
                    (nr, hw, r, r, dk), (wp * dk, dk, wp * dk, dk, 1)
                )
                out = y[bi, y0 : y0 + nr].view(nr * hw, h, dk)  # [nr*W, h, v]
                out.baddbmm_(resp.view(nr * hw, h, r * r), window.reshape(nr * hw, r * r, dk))
        return y.view(b, n, c)


class CrossLambda(nn.Module):
    """Lambda layer from image tokens (queries) to the 10 ID tokens (keys/values).

    `rel_pos_emb` holds one [l, k] table per *absolute* query position n, which is why the
    network only accepts its training resolution.
    """

    def __init__(self, dim: int, context_dim: int, heads: int, n_positions: int, n_ctx: int):
        super().__init__()
        self.heads, self.dk = heads, dim // heads
        dk = self.dk
        self.rel_pos_emb = nn.Parameter(torch.empty(n_positions, n_ctx, dk, 1))
        self.to_q = nn.Conv2d(dim, dim, 1, bias=False)
        self.to_k = nn.Linear(context_dim, dk, bias=False)
        self.to_v = nn.Linear(context_dim, dk, bias=False)
        self.norm_q = BatchNorm(dim)
        self.norm_v = BatchNorm(dk)  # a BatchNorm1d in the checkpoint: same keys, [B, v, l]

    def forward(self, x: Tensor, context: Tensor) -> Tensor:  # [B,N,C], [B,l,D] -> [B,N,C]
        b, n, c = x.shape
        h, dk = self.heads, self.dk
        if n != self.rel_pos_emb.shape[0]:
            raise ValueError(
                f"the network takes {self.rel_pos_emb.shape[0]} positions here, got {n}: "
                "inputs must be exactly the model's image size"
            )
        q = bn_last(self.norm_q, pointwise(x, self.to_q))  # [B, N, h*k]
        k = softmax32(self.to_k(context), dim=1)  # [B, l, k], normalised over the l tokens
        v = self.norm_v(self.to_v(context).transpose(1, 2))  # [B, v, l]
        content = k.transpose(1, 2) @ v.transpose(1, 2)  # [B, k, v]

        # Position term, the cheap way round: (Q E) first, then V.
        table = self.rel_pos_emb.squeeze(-1)  # [N, l, k]
        q_n = q.view(b, n, h, dk).transpose(0, 1).reshape(n, b * h, dk)  # [N, B*h, k]
        qe = q_n @ table.transpose(1, 2)  # [N, B*h, l]
        qe = qe.view(n, b, h, -1).transpose(0, 1).reshape(b, n * h, -1)  # [B, N*h, l]
        y = q.view(b, n * h, dk) @ content  # [B, N*h, v]   content term
        y = torch.baddbmm(y, qe, v.transpose(1, 2))  # + position term   [B, N*h, v]
        return y.view(b, n, c)


# ----------------------------------------------------------------------------- transformer


class MixFFN(nn.Module):
    """GLU-gated inverted bottleneck with a depthwise 3x3 conv (F = ratio * C hidden)."""

    def __init__(self, dim: int, ratio: float):
        super().__init__()
        hidden = int(ratio * dim)
        self.inverted_conv = _ConvHolder(dim, 2 * hidden, 1, bias=True)
        self.depth_conv = _ConvHolder(2 * hidden, 2 * hidden, 3, bias=True, groups=2 * hidden)
        self.point_conv = _ConvHolder(hidden, dim, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:  # [B, N, C] -> [B, N, C]
        hw = side(x.shape[1])
        a = F.silu(pointwise(x, self.inverted_conv.conv), inplace=True)  # [B, N, 2F]
        d = self.depth_conv.conv(grid(a, hw, hw))  # [B, 2F, H, W] channels-last
        x1, gate = d.chunk(2, dim=1)  # [B, F, H, W] each
        return pointwise(tokens(x1 * F.silu(gate, inplace=True)), self.point_conv.conv)


class _ConvHolder(nn.Module):
    """Holds a conv under `.conv`, matching the checkpoint's `ff.*.conv.*` key names."""

    def __init__(self, cin: int, cout: int, kernel: int, bias: bool, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias, groups=groups)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, cfg: MoebiusConfig, size: int):
        super().__init__()
        self.norm1 = LayerNorm(dim, eps=1e-5)
        self.attn1 = SelfLambda(dim, cfg.heads, cfg.self_lambda_size)
        self.norm2 = LayerNorm(dim, eps=1e-5)
        self.attn2 = CrossLambda(
            dim, cfg.cross_attention_dim, cfg.heads, size * size, cfg.tokens_per_row
        )
        self.norm3 = LayerNorm(dim, eps=1e-5)
        self.ff = MixFFN(dim, cfg.mix_mlp_ratio)

    def forward(self, t: Tensor, context: Tensor) -> Tensor:  # [B, N, C] -> [B, N, C]
        t = t + self.attn1(self.norm1(t))
        t = t + self.attn2(self.norm2(t), context)
        return t + self.ff(self.norm3(t))


class Transformer(nn.Module):
    def __init__(self, dim: int, cfg: MoebiusConfig, size: int):
        super().__init__()
        self.norm = GroupNorm(32, dim, eps=1e-6)
        self.proj_in = nn.Conv2d(dim, dim, 1)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(dim, cfg, size)])
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:  # [B,C,H,W] -> [B,C,H,W]
        _, _, h, w = x.shape
        t = pointwise(tokens(self.norm(x)), self.proj_in)  # [B, N, C]
        for block in self.transformer_blocks:
            t = block(t, context)
        return grid(pointwise(t, self.proj_out), h, w) + x


# ----------------------------------------------------------------------------- UNet levels


class Downsample(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:  # [B, C, H, W] -> [B, C, H/2, W/2]
        return self.conv(x)


class Upsample(nn.Module):
    phases: Tensor | None

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)
        # The conv as four 2x2 phase kernels (engine/net/upsample.py), set at load time by
        # engine.net.fold.fold_upsamplers; a buffer so that .to() converts it, not saved.
        self.register_buffer("phases", None, persistent=False)

    def forward(self, x: Tensor) -> Tensor:  # [B, C, H, W] -> [B, C, 2H, 2W]
        if self.phases is not None:
            return upsample_conv(x, self.phases, self.conv.bias)
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cfg: MoebiusConfig, size: int, downsample: bool):
        super().__init__()
        n = cfg.layers_per_down_block
        # The checkpoint lists `attentions` before `resnets`; the forward runs resnet first.
        self.attentions = nn.ModuleList([Transformer(cout, cfg, size) for _ in range(n)])
        self.resnets = nn.ModuleList(
            [ResnetBlock(cin if i == 0 else cout, cout, cfg.time_embed_dim) for i in range(n)]
        )
        self.downsamplers = nn.ModuleList([Downsample(cout)]) if downsample else None

    def forward(self, h: Tensor, emb: Tensor, context: Tensor) -> tuple[Tensor, list[Tensor]]:
        skips = []
        for resnet, attn in zip(self.resnets, self.attentions, strict=True):
            h = attn(resnet(h, emb), context)
            skips.append(h)
        if self.downsamplers is not None:
            h = self.downsamplers[0](h)
            skips.append(h)
        return h, skips


class UpBlock(nn.Module):
    def __init__(
        self,
        cin: int,
        skip_chans: list[int],
        cout: int,
        cfg: MoebiusConfig,
        size: int,
        upsample: bool,
    ):
        super().__init__()
        n = len(skip_chans)
        self.attentions = nn.ModuleList([Transformer(cout, cfg, size) for _ in range(n)])
        ins = [(cin if i == 0 else cout) + s for i, s in enumerate(skip_chans)]
        self.resnets = nn.ModuleList([ResnetBlock(c, cout, cfg.time_embed_dim) for c in ins])
        self.upsamplers = nn.ModuleList([Upsample(cout)]) if upsample else None

    def forward(self, h: Tensor, skips: list[Tensor], emb: Tensor, context: Tensor) -> Tensor:
        for resnet, attn in zip(self.resnets, self.attentions, strict=True):
            h = torch.cat([h, skips.pop()], dim=1)  # hidden first, then the skip
            h = attn(resnet(h, emb), context)
        if self.upsamplers is not None:
            h = self.upsamplers[0](h)
        return h


class TimestepProjection(nn.Module):
    """Sinusoidal features of the timestep: [cos(t f_i), sin(t f_i)], f_i = 10000^(-i/half)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:  # [B] -> [B, dim]
        half = self.dim // 2
        freqs = torch.exp(
            -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half
        )
        args = t.float()[:, None] * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedding(nn.Module):
    def __init__(self, cin: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(cin, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:  # [B, C0] -> [B, 4*C0]
        return self.linear_2(F.silu(self.linear_1(x)))


# ----------------------------------------------------------------------------- the whole


class UNet(nn.Module):
    memory_format = CL  # channels-last makes the token views free (benchmarks compare NCHW)

    def __init__(self, cfg: MoebiusConfig):
        super().__init__()
        chans = cfg.block_out_channels
        c0, levels = chans[0], len(chans)
        self.conv_in = DWConv(cfg.in_channels, c0)
        self.time_proj = TimestepProjection(c0)
        self.time_embedding = TimestepEmbedding(c0, cfg.time_embed_dim)
        self.encoder_hid_proj = nn.Linear(cfg.encoder_hid_dim, cfg.cross_attention_dim)

        self.down_blocks = nn.ModuleList()
        skip_chans, cin = [c0], c0
        for i, cout in enumerate(chans):
            last = i == levels - 1
            self.down_blocks.append(DownBlock(cin, cout, cfg, cfg.level_size(i), not last))
            skip_chans += [cout] * (cfg.layers_per_down_block + (0 if last else 1))
            cin = cout

        self.up_blocks = nn.ModuleList()
        for u, cout in enumerate(reversed(chans)):
            level = levels - 1 - u
            mine = [skip_chans.pop() for _ in range(cfg.layers_per_up_block)]
            self.up_blocks.append(
                UpBlock(cin, mine, cout, cfg, cfg.level_size(level), upsample=level > 0)
            )
            cin = cout

        self.conv_norm_out = GroupNorm(32, c0, eps=1e-5)
        self.conv_out = DWConv(c0, cfg.out_channels, residual=False)

    def forward(self, sample: Tensor, timestep: Tensor, context: Tensor) -> Tensor:
        """sample [B, 9, H, W], timestep [1] or [B], context [B, l, D] -> eps [B, 4, H, W]"""
        b = sample.shape[0]
        t = timestep.reshape(-1).expand(b) if timestep.numel() == 1 else timestep.reshape(b)
        emb = self.time_embedding(self.time_proj(t).to(sample.dtype))  # [B, 4*C0]
        context = self.encoder_hid_proj(context)  # [B, l, cross_dim]

        h = self.conv_in(sample.contiguous(memory_format=self.memory_format))  # [B, C0, H, W]
        skips = [h]
        for block in self.down_blocks:
            h, block_skips = block(h, emb, context)
            skips += block_skips
        for block in self.up_blocks:
            h = block(h, skips, emb, context)
        h = self.conv_out(F.silu(self.conv_norm_out(h), inplace=True))  # [B, 4, H, W]
        return h.contiguous()


class RemovalModel(nn.Module):
    """The checkpoint's top-level module: the 20-row ID table plus the UNet."""

    def __init__(self, cfg: MoebiusConfig):
        super().__init__()
        self.config = cfg
        self.embedding_layer = nn.Embedding(cfg.num_ids, cfg.encoder_hid_dim)
        self.diff_model = UNet(cfg)
        self.eval()

    def train(self, mode: bool = True) -> RemovalModel:
        # Batch norms and dropout must stay in inference behaviour whatever callers ask.
        return super().train(False)

    def forward(self, sample: Tensor, timestep: Tensor, input_ids: Tensor) -> Tensor:
        """sample [B, 9, H, W], timestep [1] or [B], input_ids [B, 10] -> eps [B, 4, H, W]"""
        return self.diff_model(sample, timestep, self.embedding_layer(input_ids))

    def stop_blocks(self) -> list[nn.Module]:
        """Where a pass may stop (engine/net/interrupt.py): before each resnet and
        transformer of the UNet, and before its output convolution."""
        unet = self.diff_model
        inner = [m for m in unet.modules() if isinstance(m, ResnetBlock | Transformer)]
        return [*inner, unet.conv_out]

    def cfg_ids(self, batch: int, device: torch.device | str = "cpu") -> Tensor:
        """The guidance batch's ids: `batch` unconditional rows (10..19), then conditional."""
        m = self.config.tokens_per_row
        uncond = torch.arange(m, 2 * m, device=device).expand(batch, m)
        cond = torch.arange(0, m, device=device).expand(batch, m)
        return torch.cat([uncond, cond])  # [2B, 10]
