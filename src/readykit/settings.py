"""The one settings object, read from `READYKIT_*` variables; runtime and CLI share it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """readykit's configuration. Every field can be set as `READYKIT_<FIELD NAME>`."""

    model_config = SettingsConfigDict(env_prefix="READYKIT_", extra="ignore", frozen=True)

    service_name: str = Field(default="app", min_length=1)
    service_version: str | None = None
    ops_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for /health details and ops endpoints; unset = loopback only.",
    )
    health_cache_s: float = Field(
        default=1.0, ge=0, description="How long a check's result is reused by later probes."
    )
    health_prefix: str = Field(default="/health", pattern=r"^/[A-Za-z0-9/_.-]*[^/]$")
    liveness_max_lag_ms: float = Field(
        default=5000.0, gt=0, description="Event-loop lag above which /health/live fails."
    )
    metrics: bool = Field(default=True, description="Serve /metrics and record HTTP metrics.")
    metrics_public: bool = Field(
        default=False, description="Serve /metrics to anyone, not only the ops token/loopback."
    )
    metrics_path: str = Field(default="/metrics", pattern=r"^/[A-Za-z0-9/_.-]*$")
    metrics_max_routes: int = Field(
        default=200, gt=0, description="Distinct http_route label values before OVERFLOW."
    )
    configure_logging: bool = Field(
        default=True, description="Install readykit's logging pipeline at startup."
    )
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = Field(default="INFO", pattern=r"(?i)^(debug|info|warning|error|critical)$")
    access_log: bool = Field(default=True, description="One access-log event per request.")
    redact_keys: list[str] = Field(
        default_factory=list, description="More key names whose values are always redacted."
    )
