"""Measured latency against servers whose latency is known, on virtual time.

The server runs in the engine's own event loop on a virtual clock (see `virtual_time.py`), so a
handler that waits 50 ms takes exactly 50 ms and the assertions are exact up to the histogram's
resolution (three significant digits), whatever the host's load. How close the numbers are on
real time is measured by `bench/load_accuracy.py`.
"""

from __future__ import annotations

import pytest

from readykit.load import run_load_async
from readykit.load.result import LoadResult
from readykit.load.workers import StepPlan, Target, run_step_async
from virtual_time import known_server, run_virtual

RESOLUTION_MS = 0.05  # an HdrHistogram with three significant digits, around 50 ms


def measure(path: str, **plan: object) -> LoadResult:
    """One single-worker run against `known_server` on virtual time."""

    async def main(loop: object) -> LoadResult:
        async with known_server() as base:
            step = StepPlan(Target(base + path), workers=1, **plan)  # type: ignore[arg-type]
            return await run_step_async(step, clock=loop.time)  # type: ignore[attr-defined]

    return run_virtual(main)


def test_closed_model_measures_the_servers_delay() -> None:
    result = measure("/delay?ms=50", users=4, duration_s=1.5)
    assert result.errors == 0
    assert result.requests > 0
    assert result.latency.get_total_count() == result.requests
    for name in ("p50", "p99", "max"):
        assert result.latency_ms[name] == pytest.approx(50.0, abs=RESOLUTION_MS), name


def test_open_model_keeps_the_asked_rate_and_the_delay() -> None:
    result = measure("/delay?ms=50", rate=100, duration_s=1.5)
    assert result.p50_ms == pytest.approx(50.0, abs=RESOLUTION_MS)
    assert result.scheduled == round(100 * result.measured_s)  # every send of the schedule
    assert not result.generator_behind
    data = result.to_dict()
    assert data["missed_sends"] == 0
    assert data["service_ms"]["p99"] == pytest.approx(50.0, abs=RESOLUTION_MS)


def test_corrected_p99_shows_a_one_second_stall_that_service_time_hides() -> None:
    # Two connections, like wrk2 -c2: during the stall the schedule keeps running, so requests
    # queue; measured from their intended send times they waited, measured from the moment
    # they got a connection (what a closed-loop tool reports) they did not.
    result = measure("/stall?at=100&ms=1000", rate=200, duration_s=2.5, connections=2)
    data = result.to_dict()
    assert data["latency_ms"]["p99"] >= 700.0
    assert data["service_ms"]["p99"] < 1.0  # the server answers at once but for the stall
    assert data["service_ms"]["max"] == pytest.approx(1000.0, abs=1.0)  # the stalled request
    assert data["missed_sends"] == 0  # the generator kept its schedule all along


def test_a_generator_that_cannot_keep_the_rate_says_so() -> None:
    # every request keeps the loop busy for 5 ms: at most 200 sends a second fit, 1000 are asked
    result = measure("/busy?ms=5", rate=1000, duration_s=1.0, warmup_s=0)
    assert result.generator_behind
    assert result.missed_sends > 0
    assert any("fell behind" in w for w in result.warnings)


def test_transport_errors_are_counted_by_kind_not_raised() -> None:
    result = measure("/delay?ms=400", users=2, duration_s=1.0, timeout_s=0.1)
    assert result.errors == result.requests > 0
    assert set(result.errors_by_kind) == {"timeout"}


@pytest.mark.anyio
async def test_async_api_runs_inside_a_running_event_loop(target) -> None:
    result = await run_load_async(f"{target.url}/delay?ms=20", users=2, duration_s=1.0)
    assert result.errors == 0
    assert result.requests > 0
    assert result.latency.get_total_count() == result.requests
