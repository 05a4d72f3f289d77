"""The metrics' section of the settings (see readykit.section)."""

from __future__ import annotations

from pydantic import Field

from readykit.section import Section


class MetricsConfig(Section):
    """readykit.metrics: the Prometheus exposition and the HTTP metrics."""

    metrics: bool = Field(default=True, description="Serve /metrics and record HTTP metrics.")
    metrics_public: bool = Field(
        default=False, description="Serve /metrics to anyone, not only the ops token/loopback."
    )
    metrics_path: str = Field(
        default="/metrics",
        pattern=r"^/[A-Za-z0-9/_.-]*$",
        description="Where the Prometheus exposition is served.",
    )
    metrics_max_routes: int = Field(
        default=200, gt=0, description="Distinct http_route label values before OVERFLOW."
    )
