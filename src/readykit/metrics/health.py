"""Kit metrics for health checks: each check's last status and duration."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from readykit.health.registry import CheckResult

STATUS_VALUE = {"pass": 1.0, "warn": 0.5, "fail": 0.0}


class HealthCheckMetrics:
    """`readykit_health_check_status` (1 pass, 0.5 warn, 0 fail) and its duration, per check."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.status = Gauge(
            "readykit_health_check_status",
            "Last result of a health check: 1 pass, 0.5 warn, 0 fail.",
            ("check", "kind"),
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self.duration = Gauge(
            "readykit_health_check_duration_seconds",
            "Duration of the last run of a health check.",
            ("check", "kind"),
            multiprocess_mode="livemostrecent",
            registry=registry,
        )

    def __call__(self, result: CheckResult) -> None:
        """Result hook: called by the health registry for each fresh (not cached) result."""
        self.status.labels(result.name, result.kind).set(STATUS_VALUE[result.status])
        self.duration.labels(result.name, result.kind).set(result.duration_ms / 1000)
