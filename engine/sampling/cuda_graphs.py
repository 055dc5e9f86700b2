"""GPU speed-ups that keep the numbers: CUDA graphs for the UNet forward.

One sampling step launches about 1,500 small kernels; on a fast GPU launching them costs
more than running them. A CUDA graph records the launches once per input shape and
replays them with one call. The recorded network reads its inputs from fixed buffers,
so each call copies the new inputs in, replays, and returns the fixed output buffer
(valid until the next call; the sampler consumes it at once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass
class _Recorded:
    graph: torch.cuda.CUDAGraph
    sample: torch.Tensor
    timestep: torch.Tensor
    ids: torch.Tensor
    out: torch.Tensor


class CudaGraphForward:
    """Callable like the model: forward(sample, timestep, ids) -> eps."""

    def __init__(self, model: torch.nn.Module, warmup: int = 2):
        self.model, self.warmup = model, warmup
        self._recorded: dict[tuple, _Recorded | None] = {}

    def __call__(self, sample: torch.Tensor, timestep: torch.Tensor,
                 ids: torch.Tensor) -> torch.Tensor:
        key = (tuple(sample.shape), sample.dtype, tuple(timestep.shape), tuple(ids.shape))
        if key not in self._recorded:
            self._recorded[key] = self._record(sample, timestep, ids)
        rec = self._recorded[key]
        if rec is None:  # recording failed once: stay eager for this shape
            return self.model(sample, timestep, ids)
        rec.sample.copy_(sample)
        rec.timestep.copy_(timestep)
        rec.ids.copy_(ids)
        rec.graph.replay()
        return rec.out

    def _record(self, sample, timestep, ids) -> _Recorded | None:
        static = [t.clone() for t in (sample, timestep, ids)]
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), torch.inference_mode():
                for _ in range(self.warmup):  # lets cuDNN pick algorithms before recording
                    self.model(*static)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.inference_mode(), torch.cuda.graph(graph):
                out = self.model(*static)
            log.info("recorded a CUDA graph for input %s", tuple(sample.shape))
            # cuDNN's algorithm search can reserve tens of GB of workspace on a large GPU;
            # hand the unused part back so other programs (and the VAE) can have it.
            torch.cuda.empty_cache()
            return _Recorded(graph, static[0], static[1], static[2], out)
        except Exception as exc:  # noqa: BLE001 - speed-up only: fall back to eager
            log.warning("CUDA graph recording failed (%s); running eagerly", exc)
            return None


def tune_cuda_runtime(dtype: torch.dtype) -> None:
    """Exact (fp32) mode must not use TF32 tensor cores, which round to 10 bits;
    fixed shapes let cuDNN benchmark and keep the fastest convolution algorithms."""
    full = dtype == torch.float32
    torch.backends.cuda.matmul.allow_tf32 = not full
    torch.backends.cudnn.allow_tf32 = not full
    torch.backends.cudnn.benchmark = True
