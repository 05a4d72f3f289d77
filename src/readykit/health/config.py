"""The health endpoints' section of the settings (see readykit.section)."""

from __future__ import annotations

from pydantic import Field

from readykit.section import Section


class HealthConfig(Section):
    """The service's name and version, and readykit.health's endpoints."""

    service_name: str = Field(
        default="app",
        min_length=1,
        description="The service's name: the health body's `description`.",
    )
    service_version: str | None = Field(
        default=None,
        description="The service's version, shown as `version` in the detailed health body.",
    )
    health_cache_s: float = Field(
        default=1.0, ge=0, description="How long a check's result is reused by later probes."
    )
    health_prefix: str = Field(
        default="/health",
        pattern=r"^/[A-Za-z0-9/_.-]*[^/]$",
        description="Where the health endpoints live: <prefix>, <prefix>/live, <prefix>/ready.",
    )
    liveness_max_lag_ms: float = Field(
        default=5000.0, gt=0, description="Event-loop lag above which /health/live fails."
    )
