"""Threshold syntax and evaluation."""

from __future__ import annotations

import pytest

from readykit.load.result import LoadResult
from readykit.load.stats import new_histogram, record
from readykit.load.thresholds import BadThreshold, evaluate, parse


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
