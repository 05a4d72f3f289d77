"""Rate limits on the `limits` library, with draft-ietf-httpapi-ratelimit-headers.

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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError as LimitsConfigurationError
from prometheus_client import CollectorRegistry, Counter

from readykit._types import Scope
from readykit.errors import ConfigurationError, require_extra
from readykit.guards.config import rate_limit_scheme
from readykit.guards.ratelimit_memory import STRATEGIES, MemoryCounter, WindowHit
from readykit.route_table import RouteMatch, RouteTable
from readykit.stage import Answer, Exchange, Headers

if TYPE_CHECKING:
    from readykit.guards.ratelimit_redis import RedisBatcher

logger = logging.getLogger("readykit.ratelimit")

QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
STORAGE_TIMEOUT_S = 0.25
RETRY_STORAGE_AFTER_S = 1.0

KeyFunc = Callable[[Scope], str | None]


@dataclass(frozen=True, slots=True)
class Policy:
    """One configured limit: its name (the settings key) and the parsed `limits` items."""

    name: str
    items: tuple[RateLimitItem, ...]
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """One name per item: the key, suffixed `#2`, `#3` ... when a key has several limits."""

    def __post_init__(self) -> None:
        names = tuple(
            self.name if i == 0 else f"{self.name}#{i + 1}" for i in range(len(self.items))
        )
        object.__setattr__(self, "names", names)

    def header(self) -> str:
        """This policy's members of the `RateLimit-Policy` field."""
        return ", ".join(
            f'"{name}";q={item.amount};w={item.get_expiry()}'
            for name, item in zip(self.names, self.items, strict=True)
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
        if any(item.amount < 1 for item in items):  # `0/minute` refuses every request
            raise ConfigurationError(
                f"rate_limits[{key!r}]: {text!r} admits no request; give at least 1 per window"
            )
        policies[key] = Policy(key, items)
    return policies.get("default"), RouteTable(policies, setting="rate_limits")


def storage_scheme(url: str) -> str:
    """`memory` or `redis`/`rediss` (with its extra installed); any other scheme is refused
    naming the setting."""
    scheme = rate_limit_scheme(url)
    if scheme != "memory":
        require_extra("redis", "redis", "rate_limit_storage")
    return scheme


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
    """The limiter shared by the guard: storage, strategy, outage handling.

    In memory (`immediate` is True) `hit_now` answers synchronously; on Redis, `await hit()`
    queues the hit and the hits of one loop iteration go to Redis in one round trip. `hit` works
    for both, so a caller may always await it.
    """

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
        self.memory: MemoryCounter | None = None
        self.batcher: RedisBatcher | None = None
        if storage_scheme(storage_url) == "memory":
            self.memory = MemoryCounter(strategy)
        else:
            from readykit.guards.ratelimit_redis import RedisBatcher

            # short timeouts, so a dead Redis costs a request a quarter of a second at most
            self.batcher = RedisBatcher(
                storage_url, strategy, timeout_s=STORAGE_TIMEOUT_S, on_error=self._failed
            )
        self.immediate = self.memory is not None
        self.fail_open = fail_open
        self.metrics = metrics
        self.clock = clock
        self._down_until = 0.0
        self._outage = False

    def hit_now(self, policy: Policy, key: str) -> tuple[bool, str, int, float] | None:
        """Count one request without awaiting (memory storage only): as `hit`."""
        if self.memory is None:
            raise RuntimeError("a Redis rate limit answers over the network: await hit()")
        names = policy.names
        count = self.memory.hit
        if len(names) == 1:  # one limit (the usual case): it is the one reported
            allowed, remaining, reset_at = count(policy.items[0], names[0], key)
            return allowed, names[0], remaining, max(0.0, reset_at - time.time())
        return pick(
            names, [count(item, name, key) for name, item in zip(names, policy.items, strict=True)]
        )

    async def hit(self, policy: Policy, key: str) -> tuple[bool, str, int, float] | None:
        """Count one request: (allowed, item name, remaining, seconds to reset).

        The item reported is the first violated one, else the one with the fewest left.

        None when the storage is unreachable (the caller applies fail-open or fail-closed).
        """
        if self.batcher is None:
            return self.hit_now(policy, key)
        if self._outage and self.clock() < self._down_until:
            return None
        names = policy.names
        hits = await self.batcher.hit(names, policy.items, key)
        if hits is None:
            return None
        if self._outage:
            self._outage = False
            logger.info("rate-limit storage is back; limiting again")
        return pick(names, hits)

    def _failed(self, exc: Exception) -> None:
        """One failed round trip: count it, pause the storage, warn once per outage."""
        self.metrics.storage_errors.inc()
        self._down_until = self.clock() + RETRY_STORAGE_AFTER_S
        if not self._outage:
            self._outage = True
            logger.warning(
                "rate-limit storage unreachable (%s); requests are %s until it is back",
                type(exc).__name__,
                "let through unlimited" if self.fail_open else "refused",
            )

    async def check(self) -> bool:
        """True if the storage answers (a readiness check for Redis-backed limits)."""
        return self.batcher is None or await self.batcher.check()

    async def aclose(self) -> None:
        """Close the storage's connections (at the kit's shutdown)."""
        if self.batcher is not None:
            await self.batcher.aclose()

    async def reset(self) -> None:
        """Forget all counters (tests, and an operator's escape hatch)."""
        if self.memory is not None:
            self.memory.reset()
        if self.batcher is not None:
            await self.batcher.reset()


def pick(names: Sequence[str], hits: list[WindowHit]) -> tuple[bool, str, int, float]:
    """A policy's answer from one hit per item (named `names`): the first violated item
    decides, else the one with the fewest left; its remaining count and seconds to reset."""
    allowed, name, remaining, reset_in = True, names[0], math.inf, 0.0
    now = time.time()
    for item_name, (ok, left_count, reset_at) in zip(names, hits, strict=True):
        if not ok and allowed:  # the first violated item decides
            allowed, name, remaining, reset_in = False, item_name, left_count, reset_at - now
        elif allowed and left_count < remaining:
            name, remaining, reset_in = item_name, left_count, reset_at - now
    return allowed, name, int(remaining), max(0.0, reset_in)


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

    def _policy_header(self, policy: Policy) -> str:
        """The policy's members of `RateLimit-Policy`, formatted once."""
        header = self._policy_headers.get(policy.name)
        if header is None:
            header = self._policy_headers[policy.name] = policy.header()
        return header

    def _decide(
        self,
        ex: Exchange,
        match: RouteMatch[Policy] | None,
        policies: tuple[Policy, ...],
        hits: list[tuple[bool, str, int, float] | None],
    ) -> Answer | None:
        """The answer to what the storage said of each policy (None: storage unreachable)."""
        if len(hits) == 1 and (hit := hits[0]) is not None and hit[0]:  # the usual case
            _, name, remaining, reset_in = hit
            ex.extra = _headers(self._policy_header(policies[0]), name, remaining, reset_in)
            return None
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
            header_policies.append(self._policy_header(policy))
        if not results:  # storage down, failing open: no headers we could vouch for
            return None
        violated = [r for r in results if not r[1]]
        name, _, remaining, reset_in = violated[0] if violated else min(results, key=lambda r: r[2])
        extra = _headers(", ".join(header_policies), name, remaining, reset_in)
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


def _headers(policies: str, name: str, remaining: int, reset_in: float) -> Headers:
    """`RateLimit-Policy` (the members of every policy counted) and `RateLimit` (the item
    reported)."""
    return [
        (b"ratelimit-policy", policies.encode()),
        (b"ratelimit", f'"{name}";r={remaining};t={math.ceil(reset_in)}'.encode()),
    ]
