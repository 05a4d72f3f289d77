"""Builds readykit's own guards from Settings and puts them on a kit, in their fixed order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from readykit.guards import (
    ORDER_BODY_LIMIT,
    ORDER_CORS,
    ORDER_RATE_LIMIT,
    ORDER_SECURITY_HEADERS,
    ORDER_TIMEOUT,
)
from readykit.guards.config import CorsConfig, LimitsConfig, RateLimitConfig, SecurityHeadersConfig
from readykit.guards.cors import Cors
from readykit.guards.headers import SecurityHeaders
from readykit.guards.limits import BodyLimit, TimeLimit
from readykit.health.observation import Observation
from readykit.route_table import RouteTable

if TYPE_CHECKING:
    from readykit.feature import Setup
    from readykit.guards.ratelimit import RateLimiterCore


def install_guards(setup: Setup) -> RateLimiterCore | None:
    """Add every guard (as a stage) the settings switch on; returns the rate limiter, if any.

    The values were validated by the guards' sections (readykit.guards.config) when the
    settings were read; a missing install extra (Redis) raises ConfigurationError here.
    """
    headers = setup.section(SecurityHeadersConfig)
    limits = setup.section(LimitsConfig)
    rate = setup.section(RateLimitConfig)
    if headers.security_headers:
        setup.add_stage(
            ORDER_SECURITY_HEADERS,
            SecurityHeaders(config=headers, proxies=setup.proxies),
            ops=True,
        )
    cors = setup.section(CorsConfig)
    if cors.cors_allow_origins:
        setup.add_stage(ORDER_CORS, Cors(config=cors))
    if limits.max_body_bytes is not None or limits.body_limits:
        body_routes = RouteTable(limits.body_limits, setting="body_limits")
        setup.add_stage(
            ORDER_BODY_LIMIT,
            BodyLimit(limit=limits.max_body_bytes, routes=body_routes),
            ops=True,  # the kit's own routes (/ops/login) are held to the same limits
        )
    if limits.request_timeout_s is not None or limits.request_timeouts:
        time_routes = RouteTable(limits.request_timeouts, setting="request_timeouts")
        setup.add_stage(
            ORDER_TIMEOUT,
            TimeLimit(timeout_s=limits.request_timeout_s, routes=time_routes),
            ops=True,
        )
    if not rate.rate_limits:
        return None
    # the `limits` library is imported only where rate limits are configured
    from readykit.guards.ratelimit import (
        RateLimit,
        RateLimiterCore,
        RateLimitMetrics,
        parse_policies,
    )

    default, routes = parse_policies(rate.rate_limits)
    core = RateLimiterCore(
        rate.rate_limit_storage,
        rate.rate_limit_strategy,
        fail_open=rate.rate_limit_fail_open,
        metrics=RateLimitMetrics(setup.metrics.registry),
    )
    setup.add_stage(
        ORDER_RATE_LIMIT,
        RateLimit(core=core, default=default, routes=routes, key=setup.client_key),
        # the kit's own endpoints are limited only where a route key names them
        ops=RateLimit(core=core, default=None, routes=routes, key=setup.client_key),
    )
    setup.on_shutdown(core.aclose)
    if not rate.rate_limit_storage.startswith("memory"):

        async def storage() -> Observation:
            if await core.check():
                return Observation()
            effect = "limits are off until it is back" if core.fail_open else "requests refused"
            return Observation(status="fail", output=f"rate-limit storage unreachable; {effect}")

        # failing open, the service still serves without its storage: a warning, not a failure
        setup.add_check(
            "ratelimit", storage, critical=not core.fail_open, component_type="datastore"
        )
    return core


class GuardsFeature:
    """readykit's guards as a kit feature; `rate_limiter` is None without rate limits."""

    name = "guards"
    rate_limiter: RateLimiterCore | None = None

    def install(self, setup: Setup) -> None:
        self.rate_limiter = install_guards(setup)
