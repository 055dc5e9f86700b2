"""What flows out of a running job: one message type, `JobEvent`.

A job is a plain generator of events: `Progress` while it works, `Item` for each finished
part of a multi-part job (a file of a batch), then exactly one `Done` or `Failed`. The GUI
forwards these across the thread boundary unchanged (through a handle per job); the CLI
prints them. Cancellation is cooperative: a `CancelToken` per job, checked between steps.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from engine.errors import Cancelled, MoebiusError

T = TypeVar("T")
Y = TypeVar("Y")


@dataclass(frozen=True)
class Progress:
    stage: str  # "loading", "encoding", "denoising", "decoding", "compositing", ...
    step: int  # finished units of this stage (network steps: in the person's terms)
    total: int  # units in this stage (0 when unknown)
    fraction: float = 0.0  # the whole job's completion in [0, 1], for one progress bar
    message: str = ""
    # The stages still to come after this one, with their units of work, when the job
    # knows them: what a time-left estimate needs (engine/eta.py).
    ahead: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, eq=False)
class PreviewPatch:
    """Pixels to show over the photo for a while, never to keep: `rgba` (uint8 [h, w, 4],
    alpha 0 where the photo shows through) stretched over `box` (x0, y0, x1, y1 in photo
    pixels; the patch may be smaller than the box, a cheap preview is)."""

    box: tuple[int, int, int, int]
    rgba: object  # numpy uint8 [h, w, 4]; `object` keeps numpy out of this module


@dataclass(frozen=True)
class Preview(Progress):
    """Progress with a look at the result so far: a removal's fill while it denoises."""

    patches: tuple[PreviewPatch, ...] = ()

    @classmethod
    def of(cls, progress: Progress, patches: tuple[PreviewPatch, ...]) -> Preview:
        return cls(progress.stage, progress.step, progress.total, progress.fraction,
                   progress.message, progress.ahead, patches)


@dataclass(frozen=True)
class Done(Generic[T]):
    result: T  # a RemovalResult for removals, a BatchSummary for batches, ...


@dataclass(frozen=True)
class Failed:
    message: str
    cancelled: bool = False
    # The engine error behind it, for callers that react to a kind (e.g. WeightsMissing:
    # offer the download); None for unexpected errors.
    error: MoebiusError | None = None

    def is_a(self, kind: type[MoebiusError]) -> bool:
        return isinstance(self.error, kind)


@dataclass(frozen=True)
class Item(Generic[T]):
    """One finished item of a multi-item job (a file of a batch)."""

    outcome: T


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


class Returning(Generic[Y, T]):
    """Iterate a generator and keep what it returns:

        fill = Returning(engine.fill(...))
        for step in fill: ...
        image = fill.value
    """

    def __init__(self, gen: Generator[Y, Any, T]):
        self._gen = gen
        self._value: T | None = None
        self._done = False

    def __iter__(self) -> Iterator[Y]:
        self._value = yield from self._gen
        self._done = True

    @property
    def value(self) -> T:
        if not self._done:
            raise RuntimeError("the generator has not finished")
        return self._value  # type: ignore[return-value]


def drain(gen: Generator[Y, Any, T]) -> tuple[list[Y], T]:
    """Run a generator to its end: (everything it yielded, what it returned)."""
    run = Returning(gen)
    items = list(run)
    return items, run.value
