"""Progress and time left for a running job, shared by the command line and the app.

Two halves:

* `WorkPlan` (the job's side): the stages a job goes through, in order, each with its units
  of work: loading the model (1), the autoencoder's encode (1), the network steps (one per
  call), the decode (1), compositing (1), per region. The runner turns each point of its
  work into a `Progress` event that says which stages are still `ahead`, with a fraction
  weighted by typical stage costs (`TYPICAL_SECONDS`) rather than by counting steps: on a
  CPU the decode alone costs as much as five steps.
* `ProgressEstimator` (the viewer's side): turns those events and a clock into what people
  see. It measures what each stage costs on this machine while the job runs, starts from
  the costs of the last job (the app remembers them) or from typical costs scaled by the
  speed measured so far, lets the bar move with time between events (a CPU step takes
  seconds), and smooths the time left so it counts down instead of jumping.

Pure Python and clock-injected, so it is tested with synthetic event streams.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from engine.events import Progress

# Seconds per unit of each stage on the reference CPU (2-core AMD EPYC, fp32, 512 px; a
# whole 20-step removal takes 138 s there, 99 s of it network steps, and the autoencoder's
# encode and decode split the rest about 4:6). Before anything is measured only their
# ratios matter: `ProgressEstimator` scales them by the speed it measures. "denoising" is
# one network call (a batch of 2, with guidance).
TYPICAL_SECONDS = {
    "loading": 3.0,
    "encoding": 15.0,
    "denoising": 5.2,
    "decoding": 22.0,
    "compositing": 0.3,
    "filling": 0.3,  # the Quick engine's whole fill
}
_UNKNOWN_STAGE_SECONDS = 1.0
_LATE_FLOOR = 0.1  # a unit running late still has this share of its cost ahead
_PRIOR_WEIGHT = 2.0  # a remembered cost counts like two measured units


def format_eta(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


Stages = tuple[tuple[str, int], ...]  # (stage, units of work), in order


@dataclass
class WorkPlan:
    """The stages of one job and where it stands; makes its Progress events.

    Events must follow the plan's order; a stage the plan does not list is reported with
    whatever is left of the plan ahead of it."""

    stages: list[tuple[str, int]]
    _at: int = field(default=-1, init=False)
    _before: list[float] = field(default_factory=list, init=False)  # typical cost so far

    def __post_init__(self) -> None:
        self._before = [0.0]
        for stage, units in self.stages:
            self._before.append(self._before[-1] + units * _typical(stage))

    def progress(self, stage: str, step: int, total: int, message: str = "") -> Progress:
        """`step` of `total` units of `stage` are done (for network steps, in the
        person's terms: skipped schedule steps count as done)."""
        found = next((i for i in range(max(self._at, 0), len(self.stages))
                      if self.stages[i][0] == stage), None)
        if found is not None:
            self._at = found
        ahead = tuple(self.stages[self._at + 1:])
        weight = self._before[-1] or 1.0
        done = self._before[max(self._at, 0)]
        if found is not None:
            units = self.stages[found][1]
            done += max(units - max(total - step, 0), 0) * _typical(stage)
        return Progress(stage, step, total, min(done / weight, 1.0), message, ahead)


def _typical(stage: str) -> float:
    return TYPICAL_SECONDS.get(stage, _UNKNOWN_STAGE_SECONDS)


@dataclass(frozen=True)
class Estimate:
    fraction: float  # in [0, 1], never decreasing during a job
    remaining: float | None  # seconds, smoothed; None while there is nothing to go on


class ProgressEstimator:
    """What a person should see of a running job: a believable bar and time left.

    Feed every Progress event to `update`; ask `estimate()` whenever the display
    refreshes (the app does so four times a second, so the bar moves during a long step).
    `remembered` holds seconds per unit from an earlier job on this machine (see
    `costs()`); `clock` is injectable for tests.
    """

    def __init__(self, remembered: Mapping[str, float] | None = None,
                 clock: Callable[[], float] = time.monotonic, smoothing: float = 3.0):
        self.remembered = {k: float(v) for k, v in (remembered or {}).items()
                           if isinstance(v, int | float) and math.isfinite(v) and v > 0}
        self.clock = clock
        self.smoothing = smoothing  # seconds for the shown time left to follow a new figure
        self.start: float | None = None
        self.event: Progress | None = None
        self.unit_start = 0.0  # when the current stage's pending units began
        self.spent: dict[str, float] = {}
        self.units: dict[str, float] = {}
        self._fraction = 0.0
        self._shown: float | None = None
        self._shown_at = 0.0

    # -- measuring ------------------------------------------------------------------------

    def update(self, event: Progress) -> None:
        now = self.clock()
        if self.start is None:
            self.start = self.unit_start = now
        prev = self.event
        if prev is not None:
            if event.stage == prev.stage and event.step >= prev.step:
                finished = event.step - prev.step
            else:  # another stage (or the same stage of the next region) began
                finished = max(prev.total - prev.step, 0)
            if finished > 0:
                self.spent[prev.stage] = self.spent.get(prev.stage, 0.0) + now - self.unit_start
                self.units[prev.stage] = self.units.get(prev.stage, 0.0) + finished
            if finished > 0 or event.stage != prev.stage:
                self.unit_start = now
        self.event = event

    def costs(self) -> dict[str, float]:
        """Seconds per unit of each stage: measured in this job where it was, else what
        was remembered. What the app stores for the next job."""
        out = dict(self.remembered)
        for stage, units in self.units.items():
            if units > 0:
                out[stage] = self.spent[stage] / units
        return out

    def unit_cost(self, stage: str) -> float | None:
        """Expected seconds for one unit of `stage`; None when nothing measured or
        remembered says how fast this machine is.

        A stage measured in this job costs what it measured (a remembered cost weighs like
        two more units, so the first step does not decide alone). A stage not reached yet
        costs what was remembered, or else its typical cost, scaled by how much faster or
        slower than that the stages measured so far ran: a job on a GPU after one on the
        CPU corrects its decode estimate from its first steps."""
        prior = self.remembered.get(stage)
        units = self.units.get(stage, 0.0)
        if prior is not None:
            prior *= self._drift(self.remembered)
        if units > 0:
            if prior is None:
                return self.spent[stage] / units
            return (prior * _PRIOR_WEIGHT + self.spent[stage]) / (_PRIOR_WEIGHT + units)
        if prior is not None:
            return prior
        speed = self._speed()
        return None if speed is None else _typical(stage) * speed

    def _drift(self, reference: Mapping[str, float]) -> float:
        """Measured time over `reference` time, for the compute stages measured in this
        job that `reference` knows; 1 when there are none. (Loading is left out: it
        depends on the disk and on caches, not on how fast the network runs.)"""
        measured = [(s, u) for s, u in self.units.items()
                    if u > 0 and s in reference and s != "loading"]
        took = sum(self.spent[s] for s, _ in measured)
        expected = sum(u * reference[s] for s, u in measured)
        return took / expected if expected > 0 else 1.0

    def _speed(self) -> float | None:
        """This machine's time over the typical one: from what was measured in this job,
        else from what was remembered; None when there is neither."""
        if any(u > 0 and s != "loading" for s, u in self.units.items()):
            return self._drift({s: _typical(s) for s in self.units})
        if self.remembered:
            return (sum(self.remembered.values())
                    / sum(_typical(s) for s in self.remembered))
        return None

    # -- what to show ---------------------------------------------------------------------

    def remaining_raw(self, now: float | None = None) -> float | None:
        """Seconds left by the costs as they stand, without smoothing."""
        event = self.event
        if event is None:
            return None
        now = self.clock() if now is None else now
        cost = self.unit_cost(event.stage)
        if cost is None:
            return None
        units = max(event.total - event.step, 0)
        # The running unit has been going since `unit_start`; one running late still has
        # a little left, rather than a "0:00" that stays.
        left = max(units * cost - (now - self.unit_start), _LATE_FLOOR * cost) if units else 0.0
        for stage, n in event.ahead:
            cost = self.unit_cost(stage)
            if cost is None:
                return None
            left += n * cost
        return left

    def estimate(self) -> Estimate:
        now = self.clock()
        event = self.event
        if event is None or self.start is None:
            return Estimate(self._fraction, None)
        shown = self._smooth(self.remaining_raw(now), now)
        if shown is None:  # nothing measured yet: typical costs move the bar
            fraction = self._typical_fraction(now)
        else:
            elapsed = now - self.start
            fraction = elapsed / (elapsed + shown) if elapsed + shown > 0 else 0.0
        self._fraction = min(max(self._fraction, fraction), 0.995)
        return Estimate(self._fraction, shown)

    def _typical_fraction(self, now: float) -> float:
        event = self.event
        assert event is not None
        running = _typical(event.stage)
        # How far into the running unit, by its typical cost; approaching its end without
        # reaching it, so the bar keeps moving however slow this machine is.
        into = 1.0 - math.exp(-(now - self.unit_start) / running) \
            if event.total > event.step else 0.0
        return event.fraction + into * (1.0 - event.fraction) * _share(event, running)

    def _smooth(self, raw: float | None, now: float) -> float | None:
        if raw is None:
            self._shown = None
            return None
        if self._shown is None:
            shown = raw
        else:
            # Count down with the clock, then move part of the way to the new figure; up
            # more slowly than down (a time left that grows is what people distrust).
            dt = max(now - self._shown_at, 0.0)
            counted_down = max(self._shown - dt, 0.0)
            tau = self.smoothing * (3.0 if raw > counted_down else 1.0)
            follow = 1.0 - math.exp(-dt / tau) if tau > 0 else 1.0
            shown = counted_down + follow * (raw - counted_down)
        self._shown, self._shown_at = shown, now
        return max(shown, 0.0)


def _share(event: Progress, running: float) -> float:
    """The running unit's share of the work left, by typical costs."""
    left = running * max(event.total - event.step, 0)
    left += sum(n * _typical(s) for s, n in event.ahead)
    return running / left if left > 0 else 0.0


class Eta:
    """Remaining time from the completion fraction alone (for events without a plan, such
    as a batch's), ignoring the model-loading phase."""

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
