"""Sweeps: the knee and the concurrency-collapse verdict."""

from __future__ import annotations

import pytest

from readykit.load import run_sweep, run_sweep_async, sweep
from readykit.load.result import LoadResult, SweepResult
from readykit.load.stats import new_histogram, record
from readykit.load.sweep import conclude, find_collapse, find_knee
from readykit.load.workers import StepPlan, Target
from virtual_time import known_server, run_virtual


def sweep_virtual(path: str, users: list[int], **plan: object) -> SweepResult:
    """A single-worker sweep against `known_server` on virtual time (exact, host-independent)."""

    async def main(loop: object) -> SweepResult:
        async with known_server() as base:
            step = StepPlan(Target(base + path), workers=1, **plan)  # type: ignore[arg-type]
            return await sweep.run_async(step, users=users, clock=loop.time)  # type: ignore[attr-defined]

    return run_virtual(main)


def test_blocking_call_in_an_async_handler_is_a_collapse() -> None:
    result = sweep_virtual("/serial?ms=20", [1, 4, 16], duration_s=1.0)
    assert result.collapse is True
    assert "blocking I/O" in (result.collapse_reason or "")
    assert [s.users for s in result.steps] == [1, 4, 16]
    assert result.knee == 1
    data = result.to_dict()
    assert data["collapse"] is True
    assert [s["users"] for s in data["steps"]] == [1, 4, 16]
    assert data["knee"]["users"] == 1


def test_healthy_async_app_does_not_collapse() -> None:
    result = sweep_virtual("/delay?ms=20", [1, 4, 16], duration_s=1.0)
    assert result.collapse is False
    assert result.knee is None
    assert result.steps[-1].rps > 5 * result.steps[0].rps  # 16 users each at 50 req/s


@pytest.mark.anyio
async def test_async_sweep_api_for_readykit_check(target) -> None:
    result = await run_sweep_async(f"{target.url}/delay?ms=10", users=[1, 4], duration_s=0.6)
    assert [(s.users, s.error_rate) for s in result.steps] == [(1, 0.0), (4, 0.0)]
    assert all(s.requests > 0 and s.p95_ms > 0 and s.rps > 0 for s in result.steps)


def test_blocking_sweep_api(target) -> None:
    result = run_sweep(f"{target.url}/", users=[1, 2], duration_s=0.5, max_requests=20)
    assert [s.users for s in result.steps] == [1, 2]
    assert all(s.errors == 0 and s.requests > 0 for s in result.steps)


def test_every_step_has_its_own_request_budget() -> None:
    # the old sweep spent a small cap in the first step's warm-up: every step measured 0
    result = sweep_virtual("/delay?ms=1", [1, 4, 16], duration_s=1.0, max_requests=200)
    assert [s.users for s in result.steps] == [1, 4, 16]
    assert all(s.requests >= 200 for s in result.steps)


def test_a_step_with_too_few_requests_is_marked_and_never_judged() -> None:
    steps = [_step(1, 100, 10), _step(4, 0, 0), _step(16, 0, 0)]
    steps[1].requests = steps[2].requests = 0
    assert find_collapse(steps) is None
    assert find_knee(steps) is None
    sweep = conclude(StepPlan(Target(url="http://127.0.0.1:9/")), steps)
    assert sweep.collapse is False
    assert any("too few requests to judge" in w for w in sweep.steps[1].warnings)
    assert not any("too few" in w for w in sweep.steps[0].warnings)


def test_flat_throughput_from_a_saturated_generator_is_not_a_collapse() -> None:
    steps = [_step(1, 1000, 1), _step(16, 1100, 15)]
    assert find_collapse(steps) is not None
    steps[-1].generator_cpu = 0.97
    assert find_collapse(steps) is None


def _step(users: int, rps: float, p95_ms: float) -> LoadResult:
    hist = new_histogram()
    record(hist, p95_ms / 1000)
    return LoadResult(
        config={"users": users, "rate": None},
        requests=int(rps * 10),
        errors_by_kind={},
        measured_s=10.0,
        latency=hist,
        service=None,
        intervals=[],
        interval_s=0.25,
    )


def test_knee_is_where_throughput_stops_growing_while_latency_climbs() -> None:
    steps = [_step(1, 100, 10), _step(10, 950, 11), _step(50, 1000, 50), _step(100, 1010, 100)]
    assert find_knee(steps) == 10
    assert find_collapse(steps) is None  # throughput grew 10x: saturation, not collapse


def test_no_knee_while_throughput_keeps_up() -> None:
    assert find_knee([_step(1, 100, 10), _step(10, 990, 10.5), _step(50, 4900, 11)]) is None
