"""Threshold syntax and evaluation."""

from __future__ import annotations

import pytest

from readykit.load.result import LoadResult
from readykit.load.stats import new_histogram, record
from readykit.load.thresholds import BadThreshold, evaluate, parse
from readykit.load.workers import StepPlan, Target, run_step_async
from virtual_time import known_server, run_virtual


def result(latencies_ms: list[float], errors: int = 0) -> LoadResult:
    hist = new_histogram()
    for ms in latencies_ms:
        record(hist, ms / 1000)
    return LoadResult(
        config={},
        requests=len(latencies_ms),
        errors_by_kind={"http_500": errors} if errors else {},
        measured_s=2.0,
        latency=hist,
        service=None,
        intervals=[],
        interval_s=0.25,
    )


@pytest.mark.parametrize(
    ("text", "metric", "value"),
    [
        ("p95<200ms", "p95", 200.0),
        ("p99 <= 1.5s", "p99", 1500.0),
        ("p50<800us", "p50", 0.8),
        ("max<300", "max", 300.0),
        ("errors<1%", "error_rate", 0.01),
        ("errors<=3", "errors", 3.0),
        ("rps>500", "rps", 500.0),
    ],
)
def test_parse(text: str, metric: str, value: float) -> None:
    t = parse(text)
    assert (t.metric, t.value) == (metric, pytest.approx(value))


@pytest.mark.parametrize("text", ["p95", "p95<", "p97<10ms", "rps>5ms", "errors<2s", "p95<1%"])
def test_bad_syntax(text: str) -> None:
    with pytest.raises(BadThreshold, match="bad threshold"):
        parse(text)


def test_evaluate() -> None:
    r = result([10.0] * 99 + [400.0], errors=2)
    ok, lines = evaluate([parse("p50<20ms"), parse("rps>40")], r)
    assert ok
    assert all("pass" in line for line in lines)
    ok, lines = evaluate([parse("max<100ms"), parse("errors<1%")], r)
    assert not ok
    assert lines == ["max<100ms: 400.1 ms (FAIL)", "errors<1%: 2.00% (FAIL)"]


@pytest.mark.parametrize(("text", "ms"), [("p95<1m", 60_000.0), ("p99<250µs", 0.25)])
def test_latency_units_are_the_duration_parsers(text: str, ms: float) -> None:
    assert parse(text).value == pytest.approx(ms)


def never_answered(**plan: object) -> LoadResult:
    """A single-worker run, on virtual time, against a server slower than the run + drain."""

    async def main(loop: object) -> LoadResult:
        async with known_server() as base:
            step = StepPlan(  # type: ignore[arg-type]
                Target(base + "/delay?ms=600000"), workers=1, timeout_s=60.0, **plan
            )
            return await run_step_async(step, clock=loop.time)  # type: ignore[attr-defined]

    return run_virtual(main)


@pytest.mark.parametrize("plan", [{"users": 3}, {"rate": 2.0}])
def test_a_server_that_never_answers_fails_latency_and_error_thresholds(plan) -> None:
    r = never_answered(duration_s=2.0, warmup_s=0.0, **plan)
    assert r.requests == 0
    assert r.unfinished >= 3  # closed model too: every user was stuck in a request
    ok, lines = evaluate([parse("p95<200ms"), parse("errors<1%"), parse("errors<=0")], r)
    assert not ok
    assert all("FAIL" in line for line in lines), lines
    assert "no requests measured" in lines[0]


def test_unfinished_requests_fail_latency_limits_and_count_as_errors() -> None:
    r = result([10.0] * 100)
    r.unfinished = 1
    ok, lines = evaluate([parse("p95<200ms")], r)
    assert not ok
    assert lines == ["p95<200ms: 10.0 ms, 1 requests unfinished (FAIL)"]
    assert evaluate([parse("errors<=0")], r)[0] is False
    assert evaluate([parse("errors<2%")], r)[0] is True
    assert evaluate([parse("rps>1")], r)[0] is True
