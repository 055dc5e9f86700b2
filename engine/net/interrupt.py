"""Stopping a network pass between its large blocks, for cancel that answers in time.

A forward pass cannot be stopped from outside, but it can stop itself between blocks:
`stop_points(blocks, cancel)` hooks each block so that, just before it runs, the job's
cancel token is checked (`raise_if_cancelled` raises `Cancelled`). The hooks only read
the token, so the computation is the same, operation for operation, and results are
bit-identical to a pass without them (tests/test_cancel.py checks the VAE's). Splitting
by depth rather than by tiles or batch items matters: tiled VAE passes change the
result (its attention is global) and even per-item passes differ in float rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from engine.events import CancelToken


@contextmanager
def stop_points(blocks: Iterable[nn.Module], cancel: CancelToken | None) -> Iterator[None]:
    """Within the block, a pass through `blocks` stops before any of them once `cancel`
    is set. Without a token nothing is hooked."""
    if cancel is None:
        yield
        return

    def check(module, args) -> None:
        cancel.raise_if_cancelled()

    handles = [block.register_forward_pre_hook(check) for block in blocks]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
