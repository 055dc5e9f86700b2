"""A text progress bar with an ETA for the command line (stderr)."""

from __future__ import annotations

import time
from typing import TextIO

from engine.events import Progress


def format_eta(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Eta:
    """Remaining time from the completion fraction, ignoring the model-loading phase."""

    def __init__(self):
        self.start: float | None = None
        self.start_fraction = 0.0

    def remaining(self, fraction: float, stage: str) -> float | None:
        now = time.monotonic()
        if stage == "loading" or self.start is None:
            self.start, self.start_fraction = now, fraction
            return None
        done = fraction - self.start_fraction
        if done <= 0.01:
            return None
        return (now - self.start) / done * (1.0 - fraction)


class ProgressBar:
    def __init__(self, stream: TextIO, width: int = 30, prefix: str = ""):
        self.stream, self.width, self.prefix = stream, width, prefix
        self.eta = Eta()
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.last_printed = -1
        self.shown = False

    def update(self, event: Progress, prefix: str | None = None) -> None:
        if prefix is not None:
            self.prefix = prefix
        fill = int(self.width * event.fraction)
        bar = "#" * fill + "." * (self.width - fill)
        step = f" {event.step}/{event.total}" if event.total > 1 else ""
        eta = self.eta.remaining(event.fraction, event.stage)
        tail = f" ETA {format_eta(eta)}" if eta is not None else ""
        line = f"{self.prefix}[{bar}] {event.fraction:4.0%} {event.message}{step}{tail}"
        if self.tty:
            self.stream.write("\r" + line.ljust(100)[:120])
            self.shown = True
        else:  # logs and pipes: one line per 10 %
            decile = int(event.fraction * 10)
            if decile != self.last_printed:
                self.last_printed = decile
                self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()
        self.shown = False
        self.eta = Eta()
        self.last_printed = -1
