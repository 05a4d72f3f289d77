"""HTTP server metrics in OpenTelemetry's semantic conventions, Prometheus form, fed by records."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram

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
LABELS = ("http_request_method", "http_route", "http_response_status_code")


def normalise_method(method: str) -> str:
    """OTel: known methods as they are, anything else `_OTHER` (bounded cardinality)."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


class HttpMetrics:
    """The four OTel HTTP server instruments, with labelled children cached per label set.

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
        if route not in self._routes:
            if len(self._routes) < self.max_routes:
                self._routes.add(route)
            else:
                if OVERFLOW_ROUTE not in self._routes:
                    self._routes.add(OVERFLOW_ROUTE)
                    logger.warning(
                        "metrics: more than %d distinct routes; further ones are labelled %s "
                        "(raise READYKIT_METRICS_MAX_ROUTES if this is expected)",
                        self.max_routes,
                        OVERFLOW_ROUTE,
                    )
                route = OVERFLOW_ROUTE
        labels = (normalise_method(method), route, str(status))
        return (
            self.duration.labels(*labels),
            self.request_size.labels(*labels),
            self.response_size.labels(*labels),
        )
