"""Sweeps: run a step per load level, find the knee and flag a concurrency collapse.

Each step has its own request budget (`max_requests` counts that step's measured requests).
A step with fewer than `MIN_JUDGED_REQUESTS` measured requests is marked and never judged.

Knee: between two steps, throughput realised less than half of the growth the extra load asked
for while p95 rose by more than 20%; the knee is the step before. Collapse: from the lowest to
the highest step the load grew at least 4x, p95 grew at least `COLLAPSE_P95_RATIO` times, and
throughput grew less than 1.5x — the service serves requests one at a time.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from readykit.load.result import LoadResult, SweepResult
from readykit.load.workers import StepPlan, run_step, run_step_async

KNEE_GAIN = 0.5
KNEE_P95_RISE = 1.2
COLLAPSE_LOAD_RATIO = 4.0
COLLAPSE_P95_RATIO = 3.0
COLLAPSE_RPS_RATIO = 1.5
MIN_JUDGED_REQUESTS = 20
GENERATOR_BUSY = 0.8  # the generator's share of one core past which its numbers measure itself
COLLAPSE_HINT = (
    "this usually means blocking I/O in async code (a sync database driver, requests, "
    "time.sleep), a connection pool that is too small, or a lock serialising requests"
)


def judged(step: LoadResult) -> bool:
    """True if the step measured enough requests to say anything about the service."""
    return step.requests >= MIN_JUDGED_REQUESTS


def too_few_note(step: LoadResult) -> str:
    """The note a step with too few requests carries instead of a verdict."""
    return (
        f"too few requests to judge: {step.requests} measured (< {MIN_JUDGED_REQUESTS}); "
        "this step is left out of the knee and collapse verdicts"
    )


def find_knee(steps: Sequence[LoadResult]) -> float | None:
    """The load level after which throughput stops growing while latency climbs, or None."""
    steps = [s for s in steps if judged(s)]
    for a, b in itertools.pairwise(steps):
        if a.load <= 0 or a.rps <= 0 or a.p95_ms <= 0 or b.load <= a.load:
            continue
        wanted = b.load / a.load - 1.0
        gained = b.rps / a.rps - 1.0
        if gained < KNEE_GAIN * wanted and b.p95_ms > KNEE_P95_RISE * a.p95_ms:
            return a.load
    return None


def find_collapse(steps: Sequence[LoadResult]) -> str | None:
    """Why the sweep shows a concurrency collapse, or None when it does not.

    Not when the generator itself was saturated (its own CPU past `GENERATOR_BUSY` of a core):
    then flat throughput measures the generator, not the service.
    """
    steps = [s for s in steps if judged(s)]
    if len(steps) < 2:
        return None
    low, high = steps[0], steps[-1]
    if high.generator_cpu is not None and high.generator_cpu >= GENERATOR_BUSY:
        return None
    if low.load <= 0 or low.p95_ms <= 0 or low.rps <= 0:
        return None
    if high.load / low.load < COLLAPSE_LOAD_RATIO:
        return None
    p95_ratio = high.p95_ms / low.p95_ms
    if p95_ratio < COLLAPSE_P95_RATIO or high.rps / low.rps >= COLLAPSE_RPS_RATIO:
        return None
    unit = "users" if high.users is not None else "req/s offered"
    return (
        f"concurrency collapse: p95 went from {low.p95_ms:.1f} ms at {low.load:g} {unit} to "
        f"{high.p95_ms:.1f} ms at {high.load:g} ({p95_ratio:.0f}x) while throughput stayed "
        f"near {low.rps:.0f} req/s ({high.rps:.0f} at the top); {COLLAPSE_HINT}"
    )


def plans(base: StepPlan, users: Sequence[int] = (), rates: Sequence[float] = ()) -> list[StepPlan]:
    """One plan per sweep level, in increasing order."""
    if users:
        return [replace(base, users=u, rate=None) for u in sorted(users)]
    return [replace(base, users=None, rate=r) for r in sorted(rates)]


def conclude(base: StepPlan, steps: list[LoadResult]) -> SweepResult:
    """The SweepResult for `steps` as run."""
    config = dict(steps[0].config) if steps else {}
    config.pop("users", None)
    config.pop("rate", None)
    config["steps"] = [s.load for s in steps] if steps else []
    for s in steps:
        note = too_few_note(s)
        if not judged(s) and note not in s.warnings:
            s.warnings.append(note)
    reason = find_collapse(steps)
    return SweepResult(
        config=config,
        steps=steps,
        knee=find_knee(steps),
        collapse=reason is not None,
        collapse_reason=reason,
        interrupted=any(s.interrupted for s in steps),
    )


def run(
    base: StepPlan,
    users: Sequence[int] = (),
    rates: Sequence[float] = (),
    on_step: Callable[[StepPlan], Callable[..., None] | None] | None = None,
) -> SweepResult:
    """Run every step in turn (blocking); an interrupted step ends the sweep."""
    steps: list[LoadResult] = []
    scenario = base.target.load()
    for plan in plans(base, users, rates):
        on_interval = on_step(plan) if on_step is not None else None
        cpu = time.process_time(), time.monotonic()
        result = run_step(plan, on_interval, scenario)
        result.generator_cpu = _share(cpu) if plan.workers <= 1 else None
        steps.append(result)
        if result.interrupted:
            break
    return conclude(base, steps)


async def run_async(
    base: StepPlan,
    users: Sequence[int] = (),
    rates: Sequence[float] = (),
    *,
    clock: Callable[[], float] | None = None,
) -> SweepResult:
    """`run` for async callers: steps run in the current event loop (one worker).

    With a `clock` of its own (a virtual-time loop's, in tests) the generator's CPU share is
    not measured: only real time can say how busy the generator was.
    """
    scenario = base.target.load()
    steps = []
    for plan in plans(base, users, rates):
        cpu = time.process_time(), time.monotonic()
        if clock is None:
            result = await run_step_async(plan, scenario)
        else:
            result = await run_step_async(plan, scenario, clock=clock)
        result.generator_cpu = _share(cpu) if plan.workers <= 1 and clock is None else None
        steps.append(result)
    return conclude(base, steps)


def _share(since: tuple[float, float]) -> float:
    """This process's CPU time since `since` as a share of one core."""
    wall = time.monotonic() - since[1]
    return (time.process_time() - since[0]) / wall if wall > 0 else 0.0
