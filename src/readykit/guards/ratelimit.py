"""Rate limits on the `limits` library's async API, with draft-ietf-httpapi-ratelimit-headers.

`"default"` counts every request of a client; a route key (`"POST /login"`) adds a limit of its
own for that route, so a login attempt counts against both. Every response of a limited route
carries `RateLimit-Policy` and `RateLimit`; a rejection is a 429 problem+json with `Retry-After`
and `violated-policies`. When the storage is unreachable the guard fails open (or closed, by
setting), logs one warning per outage, and skips the storage for a second between attempts so
no request waits on a dead Redis more than once a second.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.errors import StorageError
from limits.storage import storage_from_string
from prometheus_client import CollectorRegistry, Counter

from readykit._types import Scope
from readykit.errors import ConfigurationError, require_extra
from readykit.route_table import RouteMatch, RouteTable
from readykit.stage import Answer, Exchange, Headers

logger = logging.getLogger("readykit.ratelimit")

STRATEGIES: dict[str, type[RateLimiter]] = {
    "fixed-window": FixedWindowRateLimiter,
    "moving-window": MovingWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
}
QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
STORAGE_TIMEOUT_S = 0.25
RETRY_STORAGE_AFTER_S = 1.0

KeyFunc = Callable[[Scope], str | None]


@dataclass(frozen=True, slots=True)
class Policy:
    """One configured limit: its name (the settings key) and the parsed `limits` items."""

    name: str
    items: tuple[RateLimitItem, ...]

    def names(self) -> list[str]:
        """One name per item: the key, suffixed `#2`, `#3` ... when a key has several limits."""
        return [self.name if i == 0 else f"{self.name}#{i + 1}" for i in range(len(self.items))]

    def header(self) -> str:
        """This policy's members of the `RateLimit-Policy` field."""
        return ", ".join(
            f'"{name}";q={item.amount};w={item.get_expiry()}'
            for name, item in zip(self.names(), self.items, strict=True)
        )


def parse_policies(rate_limits: dict[str, str]) -> tuple[Policy | None, RouteTable[Policy]]:
    """The default policy and the per-route ones; a malformed limit names its key."""
    policies: dict[str, Policy] = {}
    for key, text in rate_limits.items():
        try:
            items = tuple(parse_many(text))
        except (ValueError, LimitsConfigurationError) as exc:
            raise ConfigurationError(
                f"rate_limits[{key!r}]: {text!r} is not a limit; write e.g. '5/minute' or "
                "'100/hour;1000/day'"
            ) from exc
        if not items:
            raise ConfigurationError(f"rate_limits[{key!r}]: no limit given")
        policies[key] = Policy(key, items)
    return policies.get("default"), RouteTable(policies, setting="rate_limits")


def storage_uri(url: str) -> tuple[str, dict[str, Any]]:
    """Map readykit's `memory://` / `redis://` URLs to limits' async storage URIs."""
    scheme = url.split("://", 1)[0]
    if scheme == "memory":
        return "async+memory://", {}
    if scheme in ("redis", "rediss"):
        require_extra("redis", "redis", "rate_limit_storage")
        from redis.asyncio import ConnectionPool

        # our own pool, so the kit can close it at shutdown; short timeouts, so a dead Redis
        # costs a request a quarter of a second at most
        pool = ConnectionPool.from_url(
            url, socket_connect_timeout=STORAGE_TIMEOUT_S, socket_timeout=STORAGE_TIMEOUT_S
        )
        return f"async+{url}", {"implementation": "redispy", "connection_pool": pool}
    raise ConfigurationError(
        f"rate_limit_storage: unknown scheme {scheme!r} in {url!r}; use memory:// or redis://"
    )


class RateLimitMetrics:
    """Rejections by route and policy, and storage errors."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.rejected = Counter(
            "readykit_rate_limit_rejections",
            "Requests refused with 429, by configured route key and policy.",
            ["route", "policy"],
            registry=registry,
        )
        self.storage_errors = Counter(
            "readykit_rate_limit_storage_errors",
            "Rate-limit storage calls that failed (the request was let through or refused).",
            registry=registry,
        )


class RateLimiterCore:
    """The limiter shared by the guard: storage, strategy, outage handling."""

    def __init__(
        self,
        storage_url: str,
        strategy: str,
        *,
        fail_open: bool,
        metrics: RateLimitMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ConfigurationError(
                f"rate_limit_strategy: unknown strategy {strategy!r}; "
                f"use one of {', '.join(STRATEGIES)}"
            )
        uri, options = storage_uri(storage_url)
        self._pool = options.get("connection_pool")
        storage = storage_from_string(uri, wrap_exceptions=True, **options)
        assert isinstance(storage, Storage)  # an async+ scheme gives an async storage
        self.storage = storage
        self.limiter = STRATEGIES[strategy](self.storage)
        self.fail_open = fail_open
        self.metrics = metrics
        self.clock = clock
        self._down_until = 0.0
        self._outage = False

    async def hit(self, policy: Policy, key: str) -> tuple[bool, str, int, float] | None:
        """Count one request: (allowed, item name, remaining, seconds to reset).

        The item reported is the first violated one, else the one with the fewest left.

        None when the storage is unreachable (the caller applies fail-open or fail-closed).
        """
        if self._outage and self.clock() < self._down_until:
            return None
        allowed, name, remaining, reset_in = True, policy.name, math.inf, 0.0
        try:
            for item_name, item in zip(policy.names(), policy.items, strict=True):
                ok = await self.limiter.hit(item, item_name, key)
                stats = await self.limiter.get_window_stats(item, item_name, key)
                left = max(0.0, stats.reset_time - time.time())
                if not ok and allowed:  # the first violated item decides
                    allowed, name, remaining, reset_in = False, item_name, stats.remaining, left
                elif allowed and stats.remaining < remaining:
                    name, remaining, reset_in = item_name, stats.remaining, left
        except StorageError as exc:
            self.metrics.storage_errors.inc()
            self._down_until = self.clock() + RETRY_STORAGE_AFTER_S
            if not self._outage:
                self._outage = True
                logger.warning(
                    "rate-limit storage unreachable (%s); requests are %s until it is back",
                    type(exc.storage_error).__name__,
                    "let through unlimited" if self.fail_open else "refused",
                )
            return None
        if self._outage:
            self._outage = False
            logger.info("rate-limit storage is back; limiting again")
        return allowed, name, int(remaining), reset_in

    async def check(self) -> bool:
        """True if the storage answers (a readiness check for Redis-backed limits)."""
        return bool(await self.storage.check())

    async def aclose(self) -> None:
        """Close the storage's connections (at the kit's shutdown)."""
        if self._pool is not None:
            await self._pool.aclose()

    async def reset(self) -> None:
        """Forget all counters (tests, and an operator's escape hatch)."""
        await self.storage.reset()


class RateLimit:
    """Stage: limits requests before the app reads a byte of the body.

    Args:
        default: the policy every request of a client counts against (None: none; the kit's
            own endpoints are limited only where a route key names them).
        routes: per-route policies.
        key: the client's key (address or principal) from the scope.
    """

    def __init__(
        self,
        *,
        core: RateLimiterCore,
        default: Policy | None,
        routes: RouteTable[Policy],
        key: KeyFunc,
    ) -> None:
        self.core = core
        self.default = default
        self.routes = routes
        self.key = key
        self._policy_headers: dict[str, str] = {}  # each policy's RateLimit-Policy members

    def request(self, ex: Exchange) -> Answer | Awaitable[Answer | None] | None:
        match = self.routes.match(ex.method, ex.path) if self.routes else None
        if match is None:
            if self.default is None:
                return None
            policies: tuple[Policy, ...] = (self.default,)
        elif self.default is None:
            policies = (match.value,)
        else:
            policies = (self.default, match.value)
        key = self.key(ex.scope) or "anonymous"
        if self.core.immediate:  # in memory: answered now, without an await
            return self._decide(ex, match, policies, [self.core.hit_now(p, key) for p in policies])
        return self._count(ex, match, policies, key)

    def response(self, ex: Exchange, status: int, headers: Headers) -> bool:
        return False  # its headers ride on Exchange.extra, which every answer carries

    async def _count(
        self,
        ex: Exchange,
        match: RouteMatch[Policy] | None,
        policies: tuple[Policy, ...],
        key: str,
    ) -> Answer | None:
        return self._decide(ex, match, policies, [await self.core.hit(p, key) for p in policies])

    def _decide(
        self,
        ex: Exchange,
        match: RouteMatch[Policy] | None,
        policies: tuple[Policy, ...],
        hits: list[tuple[bool, str, int, float] | None],
    ) -> Answer | None:
        """The answer to what the storage said of each policy (None: storage unreachable)."""
        results: list[tuple[str, bool, int, float]] = []
        header_policies: list[str] = []
        for policy, result in zip(policies, hits, strict=True):
            if result is None:
                if self.core.fail_open:
                    continue
                return Answer(
                    503,
                    "The rate limiter is unavailable; try again shortly.",
                    [(b"retry-after", b"1")],
                )
            allowed, name, remaining, reset_in = result
            results.append((name, allowed, remaining, reset_in))
            header = self._policy_headers.get(policy.name)
            if header is None:
                header = self._policy_headers[policy.name] = policy.header()
            header_policies.append(header)
        if not results:  # storage down, failing open: no headers we could vouch for
            return None
        violated = [r for r in results if not r[1]]
        name, _, remaining, reset_in = violated[0] if violated else min(results, key=lambda r: r[2])
        extra = [
            (b"ratelimit-policy", ", ".join(header_policies).encode()),
            (b"ratelimit", f'"{name}";r={remaining};t={math.ceil(reset_in)}'.encode()),
        ]
        if not violated:
            ex.extra = extra
            return None
        route = match.key if match is not None else "default"
        for r in violated:
            self.core.metrics.rejected.labels(route, r[0]).inc()
        seconds = max(1, math.ceil(max(r[3] for r in violated)))
        return Answer(
            429,
            f"Too many requests; retry after {seconds} s.",
            [*extra, (b"retry-after", str(seconds).encode())],
            {"type": QUOTA_EXCEEDED, "violated-policies": [r[0] for r in violated]},
        )
