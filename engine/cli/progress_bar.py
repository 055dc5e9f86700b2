"""A text progress bar with an ETA for the command line (stderr)."""

from __future__ import annotations

from typing import TextIO

from engine.eta import Eta, format_eta
from engine.events import Progress


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
