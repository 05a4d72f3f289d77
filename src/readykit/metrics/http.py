"""HTTP server metrics in OpenTelemetry's semantic conventions, Prometheus form, fed by records."""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from readykit.record import RequestRecord

logger = logging.getLogger("readykit")

# OTel's recommended boundaries for http.server.request.duration, in seconds
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
SIZE_BUCKETS = (0, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
OTHER_METHOD = "_OTHER"
OVERFLOW_ROUTE = "OVERFLOW"
OTHER_STATUS = "_OTHER"  # a status outside 100-599
# methods as sent whose gauge is remembered: past it, made-up methods are looked up each time
# (they share _OTHER), so a client sending a new method per request grows nothing
ACTIVE_METHODS_KEPT = 64
LABELS = ("http_request_method", "http_route", "http_response_status_code")


def normalise_method(method: str) -> str:
    """OTel: known methods as they are, anything else `_OTHER` (bounded cardinality)."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


class FileBackedHttpMetrics:
    """The four OTel HTTP server instruments as prometheus_client metrics, with labelled children
    cached per label set: for multiprocess mode, where each observation must reach the worker's
    value files so that one scrape can sum over workers.

    Args:
        registry: where the metrics are registered.
        max_routes: distinct `http_route` values kept; later ones are counted as `OVERFLOW`.
    """

    def __init__(self, registry: CollectorRegistry, *, max_routes: int = 200) -> None:
        self.max_routes = max_routes
        self.duration = Histogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests.",
            LABELS,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.request_size = Histogram(
            "http_server_request_body_size_bytes",
            "Size of HTTP server request bodies.",
            LABELS,
            buckets=SIZE_BUCKETS,
            registry=registry,
        )
        self.response_size = Histogram(
            "http_server_response_body_size_bytes",
            "Size of HTTP server response bodies.",
            LABELS,
            buckets=SIZE_BUCKETS,
            registry=registry,
        )
        self.active = Gauge(
            "http_server_active_requests",
            "Number of active HTTP server requests.",
            ("http_request_method",),
            multiprocess_mode="livesum",
            registry=registry,
        )
        self._routes: set[str] = set()
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._active_children: dict[str, Any] = {}

    def active_for(self, method: str) -> Any:
        """The active-requests gauge child for `method` (inc at start, dec at the end)."""
        child = self._active_children.get(method)
        if child is None:
            child = self.active.labels(normalise_method(method))
            if len(self._active_children) < ACTIVE_METHODS_KEPT:
                self._active_children[method] = child
        return child

    def __call__(self, record: RequestRecord) -> None:
        """Recorder: observe one finished request."""
        key = (record.method, record.route, record.status)
        children = self._children.get(key)
        if children is None:
            children = self._children_for(*key)
            if len(self._children) < 10_000:  # the label space is bounded; so is this cache
                self._children[key] = children
        duration, request_size, response_size = children
        duration.observe(record.duration_s)
        request_size.observe(record.request_bytes)
        response_size.observe(record.response_bytes)

    def _children_for(self, method: str, route: str, status: int) -> tuple[Any, Any, Any]:
        labels = _labels(self._routes, self.max_routes, method, route, status)
        return (
            self.duration.labels(*labels),
            self.request_size.labels(*labels),
            self.response_size.labels(*labels),
        )


def _labels(
    routes: set[str], max_routes: int, method: str, route: str, status: int
) -> tuple[str, str, str]:
    """The label values of a request: its route, or OVERFLOW past `max_routes` distinct ones."""
    if route not in routes:
        if len(routes) < max_routes:
            routes.add(route)
        else:
            if OVERFLOW_ROUTE not in routes:
                routes.add(OVERFLOW_ROUTE)
                logger.warning(
                    "metrics: more than %d distinct routes; further ones are labelled %s "
                    "(raise READYKIT_METRICS_MAX_ROUTES if this is expected)",
                    max_routes,
                    OVERFLOW_ROUTE,
                )
            route = OVERFLOW_ROUTE
    # an app can send any number as a status; the server then drops the connection (h11) or
    # sends a line no client reads as one: not a status any client got
    shown = str(status) if 100 <= status <= 599 else OTHER_STATUS
    return normalise_method(method), route, shown


_INSTRUMENTS = (
    (
        "http_server_request_duration_seconds",
        "Duration of HTTP server requests.",
        DURATION_BUCKETS,
    ),
    ("http_server_request_body_size_bytes", "Size of HTTP server request bodies.", SIZE_BUCKETS),
    (
        "http_server_response_body_size_bytes",
        "Size of HTTP server response bodies.",
        SIZE_BUCKETS,
    ),
)


class _Active:
    """The requests of one method in progress (what a Gauge child's inc/dec would count)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1


class HttpMetrics(Collector):
    """The four OTel HTTP server instruments, kept as plain per-(method, route, status) counts
    and rendered at scrape time (this object is the registry's collector for them).

    An observation is three bucket increments and three additions in lists, with no lock and no
    prometheus_client object per request. Each series is one list per instrument: the bucket
    counts (the last one +Inf) followed by the sum, so copying the list (one step under the GIL)
    gives a consistent snapshot even when a scrape renders in another thread.

    Args:
        registry: where the metrics are registered.
        max_routes: distinct `http_route` values kept; later ones are counted as `OVERFLOW`.
    """

    def __init__(self, registry: CollectorRegistry, *, max_routes: int = 200) -> None:
        self.max_routes = max_routes
        self._routes: set[str] = set()
        # (method, route, status) as recorded -> labels, and per instrument counts + sum
        self._series: dict[tuple[str, str, int], tuple[list[float], list[float], list[float]]] = {}
        self._by_labels: dict[
            tuple[str, str, str], tuple[list[float], list[float], list[float]]
        ] = {}
        self._active: dict[str, _Active] = {}  # by label: known methods and _OTHER
        self._active_for: dict[str, _Active] = {}  # by the method as sent
        registry.register(self)

    def active_for(self, method: str) -> _Active:
        """The active-requests count for `method` (inc at start, dec at the end)."""
        active = self._active_for.get(method)
        if active is None:
            active = self._active.setdefault(normalise_method(method), _Active())
            if len(self._active_for) < ACTIVE_METHODS_KEPT:
                self._active_for[method] = active
        return active

    def __call__(self, record: RequestRecord) -> None:
        """Recorder: count one finished request."""
        key = (record.method, record.route, record.status)
        series = self._series.get(key)
        if series is None:
            series = self._new_series(key)
        duration, request_size, response_size = series
        value: float = record.duration_s
        duration[bisect_left(DURATION_BUCKETS, value)] += 1
        duration[-1] += value
        value = record.request_bytes
        request_size[bisect_left(SIZE_BUCKETS, value)] += 1
        request_size[-1] += value
        value = record.response_bytes
        response_size[bisect_left(SIZE_BUCKETS, value)] += 1
        response_size[-1] += value

    def _new_series(
        self, key: tuple[str, str, int]
    ) -> tuple[list[float], list[float], list[float]]:
        labels = _labels(self._routes, self.max_routes, *key)
        series = self._by_labels.get(labels)
        if series is None:
            # len(buckets) + 1 counts (the last for +Inf), then the sum
            series = self._by_labels[labels] = (
                [0.0] * (len(DURATION_BUCKETS) + 2),
                [0.0] * (len(SIZE_BUCKETS) + 2),
                [0.0] * (len(SIZE_BUCKETS) + 2),
            )
        if len(self._series) < 10_000:  # the label space is bounded; so is this shortcut
            self._series[key] = series
        return series

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        """The instruments as Prometheus metric families (at scrape time)."""
        series = list(self._by_labels.items())
        for i, (name, documentation, buckets) in enumerate(_INSTRUMENTS):
            family = HistogramMetricFamily(name, documentation, labels=LABELS)
            bounds = [*(floatToGoString(b) for b in buckets), "+Inf"]  # type: ignore[no-untyped-call]
            for labels, lists in series:
                counts = lists[i][:]  # one consistent snapshot: the counts and the sum
                cumulative, total = [], 0.0
                for bound, count in zip(bounds, counts, strict=False):
                    total += count
                    cumulative.append((bound, total))
                family.add_metric(list(labels), cumulative, counts[-1])
            yield family
        active = GaugeMetricFamily(
            "http_server_active_requests",
            "Number of active HTTP server requests.",
            labels=("http_request_method",),
        )
        for method, in_progress in list(self._active.items()):
            active.add_metric([method], in_progress.value)
        yield active
