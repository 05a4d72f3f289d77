"""Measured latency against servers whose latency is known."""

from __future__ import annotations

import pytest

from readykit.load import run_load, run_load_async


def test_p50_is_within_10_percent_of_a_known_server_delay(target) -> None:
    result = run_load(f"{target.url}/delay?ms=50", users=4, duration_s=1.5, workers=1)
    assert result.errors == 0
    assert result.requests > 50
    assert 45.0 <= result.p50_ms <= 55.0


def test_open_model_keeps_the_asked_rate_and_the_delay(target) -> None:
    result = run_load(f"{target.url}/delay?ms=50", rate=100, duration_s=1.5, workers=1)
    assert 45.0 <= result.p50_ms <= 55.0
    assert 80 <= result.rps <= 120
    assert not result.generator_behind
    data = result.to_dict()
    assert data["missed_sends"] == 0
    assert set(data["service_ms"]) >= {"p50", "p99"}


def test_corrected_p99_shows_a_one_second_stall_that_service_time_hides(fresh_target) -> None:
    # Two connections, like wrk2 -c2: during the stall the schedule keeps running, so requests
    # queue; measured from their intended send times they waited, measured from the moment
    # they got a connection (what a closed-loop tool reports) they did not.
    result = run_load(
        f"{fresh_target.url}/stall?at=100&ms=1000",
        rate=200,
        duration_s=2.5,
        workers=1,
        connections=2,
    )
    data = result.to_dict()
    assert data["latency_ms"]["p99"] >= 700.0
    assert data["service_ms"]["p99"] < 100.0
    assert data["service_ms"]["max"] >= 900.0  # the stalled request itself was seen


def test_a_generator_that_cannot_keep_the_rate_says_so(target) -> None:
    result = run_load(target.url + "/", rate=500_000, duration_s=1.0, workers=1, warmup_s=0)
    assert result.generator_behind
    assert result.missed_sends > 0
    assert any("fell behind" in w for w in result.warnings)


def test_transport_errors_are_counted_by_kind_not_raised(target) -> None:
    result = run_load(
        f"{target.url}/delay?ms=400", users=2, duration_s=1.0, workers=1, timeout_s=0.1
    )
    assert result.errors == result.requests > 0
    assert set(result.errors_by_kind) == {"timeout"}


@pytest.mark.anyio
async def test_async_api_runs_inside_a_running_event_loop(target) -> None:
    result = await run_load_async(f"{target.url}/delay?ms=20", users=2, duration_s=1.0)
    assert result.requests > 10
    assert 18.0 <= result.p50_ms <= 24.0
