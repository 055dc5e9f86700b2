"""What flows out of a running job: one message type, `JobEvent`, in three kinds.

The GUI worker forwards these across the thread boundary unchanged; the CLI prints them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from engine.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    stage: str  # "loading", "preparing", "denoising", "decoding", "compositing", ...
    step: int  # finished units of this stage
    total: int  # units in this stage (0 when unknown)
    fraction: float = 0.0  # the whole job's completion in [0, 1], for one progress bar
    message: str = ""


@dataclass(frozen=True)
class Done:
    result: Any  # a RemovalResult for removals


@dataclass(frozen=True)
class Failed:
    message: str
    cancelled: bool = False
    error: str = ""  # the engine error's class name, e.g. "WeightsMissing", for callers to react


@dataclass(frozen=True)
class Item:
    """One finished item of a multi-item job (a file of a batch)."""

    outcome: Any


JobEvent = Progress | Item | Done | Failed


@dataclass
class CancelToken:
    """Cooperative cancellation: one per job, set from any thread, checked between steps."""

    _event: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")
