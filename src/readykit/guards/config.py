"""The guards' sections of the settings: rate limits, body and time limits, security headers,
CORS (see readykit.section)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from readykit.guards.cors import cors_origins
from readykit.guards.headers import hash_routes
from readykit.section import (
    MEMORY_OR_REDIS,
    HeaderName,
    HeaderValue,
    Positive,
    PositiveInt,
    Section,
    parsed_by,
    route_keys,
    url_scheme,
)


def _policies(rate_limits: dict[str, str]) -> object:
    if not rate_limits:
        return None
    # the `limits` library is imported only where rate limits are configured
    from readykit.guards.ratelimit import parse_policies

    return parse_policies(rate_limits)


def rate_limit_scheme(url: str) -> str:
    """`memory`, `redis` or `rediss`; any other scheme is refused naming the setting."""
    return url_scheme(
        url, MEMORY_OR_REDIS, setting="rate_limit_storage", use="memory:// or redis://"
    )


class RateLimitConfig(Section):
    """readykit.guards.ratelimit."""

    rate_limits: Annotated[dict[str, str], AfterValidator(parsed_by(_policies))] = Field(
        default_factory=dict,
        description='Limits in `limits` notation: {"default": "600/minute", "POST /login": '
        '"5/minute"}; "default" counts every request of a client, route keys add their own.',
    )
    rate_limit_storage: Annotated[str, AfterValidator(parsed_by(rate_limit_scheme))] = Field(
        default="memory://", description="memory:// (one process) or redis://host:port/db."
    )
    rate_limit_strategy: Literal["fixed-window", "moving-window", "sliding-window-counter"] = Field(
        default="sliding-window-counter", description="The `limits` window algorithm."
    )
    rate_limit_fail_open: bool = Field(
        default=True, description="Serve requests unlimited while the storage is unreachable."
    )
    rate_limit_by: Literal["client", "principal"] = Field(
        default="client",
        description="Key limits by client address, or by the principal (address if anonymous).",
    )


class LimitsConfig(Section):
    """readykit.guards.limits: body and time limits."""

    max_body_bytes: int | None = Field(
        default=1_048_576, gt=0, description="Largest request body; None for no limit."
    )
    body_limits: Annotated[dict[str, PositiveInt], AfterValidator(route_keys("body_limits"))] = (
        Field(
            default_factory=dict, description='Per-route body limits: {"POST /upload": 50000000}.'
        )
    )
    request_timeout_s: float | None = Field(
        default=30.0, gt=0, description="Time until the response starts; None for no limit."
    )
    request_timeouts: Annotated[
        dict[str, Positive], AfterValidator(route_keys("request_timeouts"))
    ] = Field(default_factory=dict, description='Per-route timeouts: {"GET /report": 120}.')


class SecurityHeadersConfig(Section):
    """readykit.guards.headers."""

    security_headers: bool = Field(default=True, description="Add security headers.")
    content_security_policy: HeaderValue = Field(
        default="default-src 'none'; frame-ancestors 'none'",
        description="Content-Security-Policy for non-HTML responses.",
    )
    html_content_security_policy: HeaderValue = Field(
        default="default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: https:; font-src 'self' data:; worker-src 'self' blob:; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        description="Content-Security-Policy for HTML responses; on the csp_hash_routes only, "
        "each inline script's hash is added to it.",
    )
    csp_hash_routes: Annotated[list[str], AfterValidator(parsed_by(hash_routes))] = Field(
        default_factory=lambda: ["GET /docs", "GET /redoc", "GET /docs/oauth2-redirect"],
        description="Routes whose HTML pages get each inline script's hash added to their CSP "
        "(FastAPI's docs pages); list only pages without user input, [] for none.",
    )
    referrer_policy: HeaderValue = Field(
        default="no-referrer", description="Referrer-Policy on every response."
    )
    hsts_max_age_s: int = Field(default=63_072_000, ge=0, description="0 disables HSTS.")
    security_header_overrides: Annotated[
        dict[str, dict[HeaderName, HeaderValue]],
        AfterValidator(route_keys("security_header_overrides")),
    ] = Field(
        default_factory=dict,
        description='Per-route header values, "" to drop one: '
        '{"GET /embed": {"X-Frame-Options": ""}}.',
    )


class CorsConfig(Section):
    """readykit.guards.cors."""

    cors_allow_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; empty = no CORS headers."
    )
    cors_allow_credentials: bool = Field(
        default=False, description="Allow credentials for the listed origins (never with '*')."
    )
    cors_allow_methods: list[HeaderName] = Field(
        default_factory=lambda: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
        description="Methods a preflight may ask for.",
    )
    cors_allow_headers: list[HeaderName] = Field(
        default_factory=lambda: ["authorization", "content-type", "x-request-id"],
        description="Request headers a preflight may ask for.",
    )
    cors_max_age_s: int = Field(
        default=600, ge=0, description="How long browsers may cache a preflight answer."
    )

    @model_validator(mode="after")
    def _origins(self) -> CorsConfig:
        return parsed_by(cors_origins)(self)
