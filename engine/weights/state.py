"""What the store knows of one model: its `Status` and `ModelState`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from engine.weights.zoo import ModelEntry


class Status(StrEnum):
    MISSING = "missing"
    DOWNLOADING = "downloading"  # a partial download exists, or one is running
    READY = "ready"
    DAMAGED = "damaged"  # files exist but are unverified, changed or failed a check


@dataclass(frozen=True)
class ModelState:
    entry: ModelEntry
    status: Status
    folder: Path
    detail: str = ""  # why it is damaged, or how far a download got
    partial_bytes: int = 0

    @property
    def id(self) -> str:
        return self.entry.id
