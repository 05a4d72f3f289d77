"""The scrape-time HTTP metrics render exactly what prometheus_client's own histograms would."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from readykit.metrics.http import (
    DURATION_BUCKETS,
    SIZE_BUCKETS,
    FileBackedHttpMetrics,
    HttpMetrics,
)
from readykit.record import RequestRecord


def record(method: str, route: str, status: int, duration: float, sizes: tuple[int, int]):
    return RequestRecord(
        request_id="r",
        method=method,
        route=route,
        path=route,
        status=status,
        started_at=0.0,
        duration_s=duration,
        request_bytes=sizes[0],
        response_bytes=sizes[1],
        client=None,
        user_agent=None,
        scheme="http",
        principal=None,
    )


# bucket bounds themselves are the edge a hand-written histogram gets wrong (le is inclusive)
durations = st.one_of(st.sampled_from(DURATION_BUCKETS), st.floats(0, 20, allow_nan=False))
sizes = st.one_of(st.sampled_from(SIZE_BUCKETS), st.integers(0, 200_000_000))
records = st.lists(
    st.builds(
        record,
        st.sampled_from(["GET", "POST", "BREW", "get"]),
        st.sampled_from(["/a", "/b/{id}", "/c", "/d"]),
        st.sampled_from([200, 404, 500, 42, 600, -1]),
        durations,
        st.tuples(sizes, sizes),
    ),
    max_size=60,
)


def both(
    max_routes: int,
) -> tuple[CollectorRegistry, HttpMetrics, CollectorRegistry, FileBackedHttpMetrics]:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    return (
        ours,
        HttpMetrics(ours, max_routes=max_routes),
        theirs,
        FileBackedHttpMetrics(theirs, max_routes=max_routes),
    )


def lines(text: bytes) -> list[str]:
    """The exposition's lines, without the optional `_created` series (ours has none)."""
    return sorted(line for line in text.decode().splitlines() if "_created" not in line)


@settings(max_examples=60, deadline=None)
@given(records, st.integers(1, 5))
def test_same_exposition_as_prometheus_client(batch: list[RequestRecord], max_routes: int) -> None:
    ours, aggregates, theirs, histograms = both(max_routes)
    active = random.Random(len(batch)).randint(0, 3)
    for _ in range(active):  # requests in progress at the scrape
        aggregates.active_for("GET").inc()
        histograms.active_for("GET").inc()
    for item in batch:
        aggregates(item)
        histograms(item)
    assert lines(generate_latest(ours)) == lines(generate_latest(theirs))
    assert lines(generate_openmetrics(ours)) == lines(generate_openmetrics(theirs))


def test_made_up_methods_share_one_active_series() -> None:
    ours, aggregates, _, _ = both(10)
    for method in ("BREW", "WHEN", "GET"):
        aggregates.active_for(method).inc()
    aggregates.active_for("BREW").dec()
    text = generate_latest(ours).decode()
    assert 'http_server_active_requests{http_request_method="_OTHER"} 1.0' in text
    assert 'http_server_active_requests{http_request_method="GET"} 1.0' in text


def test_a_status_no_client_could_get_is_labelled_other() -> None:
    """An app can send 42 or 1000 as a status; the server drops the connection: no series
    per made-up number."""
    ours, aggregates, _, _ = both(10)
    for status in (42, 600, 1000, -1, 599):
        aggregates(record("GET", "/a", status, 0.1, (0, 0)))
    text = generate_latest(ours).decode()
    statuses = {
        line.split('http_response_status_code="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("http_server_request_duration_seconds_count")
    }
    assert statuses == {"_OTHER", "599"}


def test_a_new_method_per_request_grows_no_memory_in_multiprocess_mode() -> None:
    """h11 passes any token as the method: 20,000 made-up 1 KB methods were 20,000 cached
    gauge children (25 MB) in the file-backed (multiprocess) metrics."""
    import tracemalloc

    _, _, _, histograms = both(10)
    histograms.active_for("BREW")  # the _OTHER child exists before measuring
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(20_000):
        histograms.active_for(f"M{n:05d}" + "X" * 1000)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 1_000_000
