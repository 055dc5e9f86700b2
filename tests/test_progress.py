"""Progress people believe (issue 19, item 5): the estimator against synthetic event
streams on a fake clock, the runner's stages and steps, and what the status bar says."""

from __future__ import annotations

import numpy as np
import pytest

from engine.eta import TYPICAL_SECONDS, ProgressEstimator, WorkPlan
from engine.events import Done, Progress
from engine.removal.job import RemovalJob
from engine.removal.run import EngineHost, run_removal
from engine.removal.settings import RemovalSettings
from tests.photos import scene, with_object

# What a 20-step removal costs on some machine 1.7x slower than the reference CPU.
SLOW = {stage: seconds * 1.7 for stage, seconds in TYPICAL_SECONDS.items()}


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def job_stream(steps=20, loading=True, regions=1, strength=0.99):
    """The events of one removal in the runner's order, each with the seconds of work that
    follow it (by stage)."""
    calls = min(int(steps * strength), steps)
    skipped = steps - calls
    plan = WorkPlan(([("loading", 1)] if loading else [])
                    + [("encoding", 1), ("denoising", calls), ("decoding", 1),
                       ("compositing", 1)] * regions)
    out = []
    if loading:
        out.append(plan.progress("loading", 0, 1))
    for _ in range(regions):
        out.append(plan.progress("encoding", 0, 1))
        out += [plan.progress("denoising", skipped + i, steps) for i in range(calls + 1)]
        out.append(plan.progress("decoding", 0, 1))
        out.append(plan.progress("compositing", 0, 1))
    out.append(plan.progress("compositing", 1, 1))
    return out


def run_stream(events, costs, remembered=None, tick=0.25, jitter=None):
    """Play the stream on a fake clock, asking for an estimate every `tick` seconds.
    Returns [(time, true seconds left, Estimate, event)] and the estimator."""
    clock = Clock()
    est = ProgressEstimator(remembered, clock=clock)
    durations = [(costs[e.stage] if e.step < e.total else 0.0) for e in events]
    if jitter is not None:  # uneven network steps
        durations = [d * (jitter(i) if e.stage == "denoising" else 1.0)
                     for i, (d, e) in enumerate(zip(durations, events, strict=True))]
    start = clock.now
    total = sum(durations)
    samples = []
    for event, seconds in zip(events, durations, strict=True):
        est.update(event)
        end = clock.now + seconds
        while True:
            samples.append((clock.now - start, start + total - clock.now, est.estimate(), event))
            if clock.now + tick > end:
                break
            clock.now += tick
        clock.now = end
    return samples, est


def test_work_plan_fractions_follow_stage_costs():
    events = job_stream()
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    first_step = next(e for e in events if e.stage == "denoising")
    decode = next(e for e in events if e.stage == "decoding")
    # Loading and encoding are a sixth of the work, decoding about a sixth: a bar that
    # counts steps alone said 5 % and 95 % there.
    assert 0.10 < first_step.fraction < 0.20
    assert 0.78 < decode.fraction < 0.90
    assert decode.ahead == (("compositing", 1),)
    assert first_step.ahead == (("decoding", 1), ("compositing", 1))


def test_no_estimate_is_invented_and_the_bar_moves_before_the_first_step():
    samples, _ = run_stream(job_stream(), SLOW)
    loading = [s for s in samples if s[3].stage == "loading"]
    encoding = [s for s in samples if s[3].stage == "encoding"]
    assert all(s[2].remaining is None for s in loading)  # nothing measured, nothing said
    bar = [s[2].fraction for s in loading + encoding]
    assert bar == sorted(bar)
    # Between events (25 s of loading and encoding here) the bar keeps moving: never
    # stuck on one value for more than a second.
    stuck = max(sum(1 for _ in group) for group in _runs(bar)) * 0.25
    assert stuck <= 1.0
    assert bar[-1] > 0.08


def _runs(values):
    from itertools import groupby

    return [list(g) for _, g in groupby(values)]


def test_time_left_is_close_once_one_stage_is_measured_and_never_jumps():
    samples, _ = run_stream(job_stream(), SLOW)
    known = [(t, truth, e.remaining) for t, truth, e, ev in samples if e.remaining is not None]
    assert known and known[0][0] < SLOW["loading"] + SLOW["encoding"] + 1  # after encoding
    for t, truth, shown in known:
        assert abs(shown - truth) <= max(0.12 * truth, 3.0), (t, truth, shown)
    # It counts down: from one refresh to the next it never goes up by more than a second.
    shown = [k[2] for k in known]
    assert all(b <= a + 1.0 for a, b in zip(shown, shown[1:], strict=False))


def test_the_end_is_not_one_second_left_at_95_percent():
    samples, _ = run_stream(job_stream(), SLOW)
    decoding = [s for s in samples if s[3].stage == "decoding"]
    first = decoding[0][2]
    assert first.remaining is not None and first.remaining > 0.8 * SLOW["decoding"]
    assert first.fraction < 0.9
    # Over the decode the bar still moves by more than a tenth of the whole job.
    assert decoding[-1][2].fraction - first.fraction > 0.1


def test_remembered_costs_give_a_right_estimate_from_the_first_event():
    events = job_stream(steps=30)
    samples, est = run_stream(events, SLOW, remembered=SLOW)
    truth, first = samples[0][1], samples[0][2]
    assert first.remaining is not None and abs(first.remaining - truth) < 0.05 * truth
    # What it measured is what the app remembers for next time.
    assert est.costs()["denoising"] == pytest.approx(SLOW["denoising"])
    assert est.costs()["decoding"] == pytest.approx(SLOW["decoding"])


def test_uneven_steps_are_smoothed():
    """Steps alternating 0.8x / 1.2x their mean: the shown time does not see-saw."""
    samples, _ = run_stream(job_stream(), SLOW, remembered=SLOW,
                            jitter=lambda i: 0.8 if i % 2 else 1.2)
    shown = [(truth, e.remaining) for _, truth, e, ev in samples if ev.stage == "denoising"]
    steps_up = [b[1] - a[1] for a, b in zip(shown, shown[1:], strict=False) if b[1] > a[1]]
    assert max(steps_up, default=0.0) < 0.5  # per refresh (a quarter of a second)
    assert all(abs(s - truth) < max(0.1 * truth, 3.0) for truth, s in shown)


def test_a_faster_machine_than_remembered_catches_up():
    fast = {k: v / 3 for k, v in SLOW.items()}
    samples, _ = run_stream(job_stream(), fast, remembered=SLOW)
    late = [(truth, e.remaining) for _, truth, e, ev in samples
            if ev.stage == "denoising" and ev.step > 8]
    assert all(abs(shown - truth) <= max(0.2 * truth, 3.0) for truth, shown in late)


# ---- the runner: stages, and steps in the person's terms ---------------------------------


@pytest.fixture
def tiny_host(tiny_inpainter):
    return EngineHost(loader=lambda variant, placement: tiny_inpainter)


@pytest.mark.parametrize("steps", [3, 20])
def test_removal_reports_every_stage_and_the_persons_steps(tiny_host, steps):
    img, mask = with_object(scene(200, 150, seed=4), (80, 60, 120, 100))
    job = RemovalJob(img, mask, RemovalSettings(steps=steps, device="cpu", seed=1))
    events = list(run_removal(job, None, tiny_host))
    assert isinstance(events[-1], Done)
    progress = [e for e in events if isinstance(e, Progress)]
    stages = [e.stage for e in progress]
    assert stages[:2] == ["loading", "encoding"]
    assert stages[-3:] == ["decoding", "compositing", "compositing"]
    denoising = [(e.step, e.total) for e in progress if e.stage == "denoising"]
    # 0.99 strength skips the schedule's first step: it counts as done, so the steps
    # shown are those the person asked for and end at steps/steps.
    assert denoising == [(s, steps) for s in range(1, steps + 1)]
    fractions = [e.fraction for e in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(e.ahead for e in progress if e.stage != "compositing")


# ---- the app: what the status bar says ----------------------------------------------------


@pytest.mark.gui
@pytest.mark.parametrize("steps", [3, 20])
def test_status_bar_counts_the_persons_steps(qtbot, tmp_path, tiny_store, steps):
    from PIL import Image
    from PySide6.QtCore import QSettings

    from app.settings import Settings
    from app.windows.main_window import MainWindow

    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    settings.engine_choice, settings.steps = "ft_places2", steps
    window = MainWindow(settings, store=tiny_store)
    img, mask = with_object(scene(240, 180, seed=5), (90, 70, 140, 120))
    Image.fromarray(img).save(tmp_path / "p.png")
    window.open_path(tmp_path / "p.png")
    window.canvas.setMaskArray(mask)
    texts = []
    window.jobs.progress.connect(lambda fraction, text: texts.append((fraction, text)))
    with qtbot.waitSignal(window.jobs.finished, timeout=60000):
        window.remove()
    step_texts = [t for _, t in texts if " step " in t]
    assert any(t.endswith(f"step {steps}/{steps}") or f"step {steps}/{steps} ·" in t
               for t in step_texts)
    assert all(f"/{steps}" in t for t in step_texts)
    bar = [f for f, _ in texts]
    assert bar == sorted(bar)  # the bar never goes back
    # What each stage cost is remembered for the next removal's estimate.
    costs = settings.stage_costs("moebius-auto-auto")
    assert costs["denoising"] > 0 and costs["decoding"] > 0
    window.photo.mark_saved()
    window.close()
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "p.png")), img)
