"""Time left for a running job, shared by the command line's bar and the app's status bar."""

from __future__ import annotations

import time


def format_eta(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Eta:
    """Remaining time from the completion fraction, ignoring the model-loading phase."""

    def __init__(self) -> None:
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
