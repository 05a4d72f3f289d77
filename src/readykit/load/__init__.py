"""`readykit load`: load tests with honest numbers, and the Python API other parts call.

Stable API (see docs/load.md)::

    from readykit.load import run_sweep, run_load
    sweep = run_sweep("http://127.0.0.1:8000/", users=[1, 4, 16], duration_s=2.0, workers=1)
    sweep.collapse, sweep.knee, [(s.users, s.p95_ms, s.rps, s.error_rate) for s in sweep.steps]

Submodules are imported on first use so `readykit --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from readykit.load.preflight import TargetUnreachable
    from readykit.load.result import LoadResult, SweepResult
    from readykit.load.scenario import ScenarioError
    from readykit.load.workers import LoadToolError, StepPlan

__all__ = [
    "LoadResult",
    "LoadToolError",
    "ScenarioError",
    "SweepResult",
    "TargetUnreachable",
    "run_load",
    "run_load_async",
    "run_sweep",
    "run_sweep_async",
]

_LAZY = {
    "LoadResult": "readykit.load.result",
    "SweepResult": "readykit.load.result",
    "ScenarioError": "readykit.load.scenario",
    "LoadToolError": "readykit.load.workers",
    "TargetUnreachable": "readykit.load.preflight",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'readykit.load' has no attribute {name!r}")


def _plan(
    url: str,
    *,
    scenario: str | None,
    users: int | None,
    rate: float | None,
    duration_s: float,
    workers: int,
    warmup_s: float | None,
    timeout_s: float,
    connections: int,
    max_requests: int | None,
) -> StepPlan:
    from readykit.load.workers import StepPlan, Target

    return StepPlan(
        target=Target(url=url, scenario_path=scenario),
        users=users,
        rate=rate,
        duration_s=duration_s,
        warmup_s=warmup_s,
        workers=workers,
        connections=connections,
        timeout_s=timeout_s,
        max_requests=max_requests,
    )


def run_load(
    url: str,
    *,
    users: int | None = None,
    rate: float | None = None,
    duration_s: float = 10.0,
    workers: int = 1,
    warmup_s: float | None = None,
    timeout_s: float = 10.0,
    connections: int = 256,
    max_requests: int | None = None,
    scenario: str | None = None,
) -> LoadResult:
    """One run against `url`: `users` concurrent users (closed) or `rate` req/s (open).

    Blocking; raises TargetUnreachable before the run when nothing listens at `url`.
    `max_requests` caps the measured requests (the warm-up comes on top); `scenario` is a YAML
    or Python file.
    """
    from readykit.load.preflight import check_reachable
    from readykit.load.workers import run_step

    if (users is None) == (rate is None):
        raise ValueError("give exactly one of users= or rate=")
    plan = _plan(
        url,
        scenario=scenario,
        users=users,
        rate=rate,
        duration_s=duration_s,
        workers=workers,
        warmup_s=warmup_s,
        timeout_s=timeout_s,
        connections=connections,
        max_requests=max_requests,
    )
    loaded = plan.target.load()
    check_reachable(loaded.base_url)
    return run_step(plan, scenario=loaded)


async def run_load_async(
    url: str,
    *,
    users: int | None = None,
    rate: float | None = None,
    duration_s: float = 10.0,
    workers: int = 1,
    warmup_s: float | None = None,
    timeout_s: float = 10.0,
    connections: int = 256,
    max_requests: int | None = None,
    scenario: str | None = None,
) -> LoadResult:
    """`run_load` for async callers (one worker runs in the current event loop)."""
    from readykit.load.preflight import check_reachable_async
    from readykit.load.workers import run_step_async

    if (users is None) == (rate is None):
        raise ValueError("give exactly one of users= or rate=")
    plan = _plan(
        url,
        scenario=scenario,
        users=users,
        rate=rate,
        duration_s=duration_s,
        workers=workers,
        warmup_s=warmup_s,
        timeout_s=timeout_s,
        connections=connections,
        max_requests=max_requests,
    )
    loaded = plan.target.load()
    await check_reachable_async(loaded.base_url)
    return await run_step_async(plan, loaded)


def run_sweep(
    url: str,
    *,
    users: Sequence[int] = (),
    rates: Sequence[float] = (),
    duration_s: float = 5.0,
    workers: int = 1,
    warmup_s: float | None = None,
    timeout_s: float = 10.0,
    connections: int = 256,
    max_requests: int | None = None,
    scenario: str | None = None,
) -> SweepResult:
    """A step per level of `users` (or of `rates`), each `duration_s` long; knee and collapse.

    Blocking. `max_requests` caps each step's measured requests (every step has its own).
    Raises TargetUnreachable before the first step.
    """
    from readykit.load import sweep
    from readykit.load.preflight import check_reachable

    if bool(users) == bool(rates):
        raise ValueError("give exactly one of users= or rates=")
    base = _plan(
        url,
        scenario=scenario,
        users=None,
        rate=None,
        duration_s=duration_s,
        workers=workers,
        warmup_s=warmup_s,
        timeout_s=timeout_s,
        connections=connections,
        max_requests=max_requests,
    )
    check_reachable(base.target.load().base_url)
    return sweep.run(base, users=users, rates=rates)


async def run_sweep_async(
    url: str,
    *,
    users: Sequence[int] = (),
    rates: Sequence[float] = (),
    duration_s: float = 5.0,
    workers: int = 1,
    warmup_s: float | None = None,
    timeout_s: float = 10.0,
    connections: int = 256,
    max_requests: int | None = None,
    scenario: str | None = None,
) -> SweepResult:
    """`run_sweep` for async callers (e.g. `readykit check`): runs in the current event loop."""
    from readykit.load import sweep
    from readykit.load.preflight import check_reachable_async

    if bool(users) == bool(rates):
        raise ValueError("give exactly one of users= or rates=")
    base = _plan(
        url,
        scenario=scenario,
        users=None,
        rate=None,
        duration_s=duration_s,
        workers=workers,
        warmup_s=warmup_s,
        timeout_s=timeout_s,
        connections=connections,
        max_requests=max_requests,
    )
    await check_reachable_async(base.target.load().base_url)
    return await sweep.run_async(base, users=users, rates=rates)
