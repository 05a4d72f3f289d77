"""Checks of network dependencies: Redis and HTTP services."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from readykit.errors import ConfigurationError, require_extra
from readykit.health.observation import Observation

if TYPE_CHECKING:
    import aiohttp
    import redis.asyncio

from readykit.health.checks._common import (
    _CLIENT_TIMEOUT_S,
    _SAFE_METHODS,
    ClosableCheck,
    _is_int,
    _ms_since,
)


def redis_ping(target: str | redis.asyncio.Redis) -> ClosableCheck:
    """Check that Redis answers PING; `target` is a redis:// URL or a redis.asyncio client.

    A client built from a URL is created on first use and closed by `aclose()`; a client you
    pass in stays yours to close.
    """
    try:
        import redis.asyncio as aioredis
        from redis.asyncio.connection import parse_url
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError as exc:
        raise ConfigurationError(
            "redis_ping() needs the redis client: pip install 'readykit[redis]'"
        ) from exc
    if isinstance(target, aioredis.Redis):
        return _RedisPing(target, None)
    if not isinstance(target, str):
        raise ConfigurationError(
            "redis_ping() takes a URL like 'redis://localhost:6379/0' or a redis.asyncio.Redis "
            f"client (not a blocking redis.Redis), got {type(target).__name__}"
        )
    try:
        parse_url(target)
    except ValueError as exc:
        raise ConfigurationError(
            f"redis_ping() needs a redis://, rediss:// or unix:// URL: {exc}"
        ) from exc

    def connect() -> redis.asyncio.Redis:
        # No retries: a health check should report a dead Redis now, not after backoff.
        return aioredis.Redis.from_url(
            target,
            socket_connect_timeout=_CLIENT_TIMEOUT_S,
            socket_timeout=_CLIENT_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )

    return _RedisPing(None, connect)


class _RedisPing:
    measurement = "responseTime"
    component_type = "datastore"

    def __init__(
        self,
        client: redis.asyncio.Redis | None,
        connect: Callable[[], redis.asyncio.Redis] | None,
    ) -> None:
        self._client = client
        self._connect = connect  # None when the caller owns the client

    async def __call__(self) -> Observation:
        if self._client is None:
            assert self._connect is not None
            self._client = self._connect()
        start = time.perf_counter()
        await self._client.ping()
        return Observation(value=_ms_since(start), unit="ms")

    async def aclose(self) -> None:
        if self._connect is not None and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


# --- HTTP ----------------------------------------------------------------------------------------


def http_dependency(
    url: str,
    *,
    expect_status: int | Iterable[int] = range(200, 400),
    timeout: float = 2.0,
    method: str = "GET",
) -> ClosableCheck:
    """Check that an HTTP dependency answers `url` with an expected status (value: the status).

    Redirects are not followed, so a 3xx is judged as itself. One session is created on first
    use and reused; `aclose()` closes it.
    """
    # refused here, at registration, not by every readiness probe after startup
    require_extra("aiohttp", None, "http_dependency()")
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # raises ValueError for a port out of range
    except (TypeError, ValueError, AttributeError):
        valid = False
    if not valid:
        raise ConfigurationError(
            f"http_dependency() needs an http:// or https:// URL with a host, got {url!r}"
        )
    method = method.upper() if isinstance(method, str) else method
    if method not in _SAFE_METHODS:
        raise ConfigurationError(
            f"http_dependency(method=...) must be one of {', '.join(_SAFE_METHODS)} (a probe "
            f"must not change anything), got {method!r}"
        )
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout > 0:
        raise ConfigurationError(f"http_dependency(timeout=...) must be > 0 s, got {timeout!r}")
    statuses = _statuses(expect_status)
    # Shown in outputs: no credentials, no query string (it may carry tokens).
    host = parts.netloc.rpartition("@")[2]
    shown = f"{method} {parts.scheme}://{host}{parts.path or '/'}"
    return _HttpDependency(url, method, statuses, timeout, shown)


class _HttpDependency:
    measurement = "status"
    component_type = "component"

    def __init__(
        self, url: str, method: str, statuses: frozenset[int], timeout: float, shown: str
    ) -> None:
        self._url = url
        self._method = method
        self._statuses = statuses
        self._timeout = timeout
        self._shown = shown
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self) -> Observation:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": "readykit-health-check"},
            )
        try:
            async with self._session.request(
                self._method, self._url, allow_redirects=False
            ) as response:
                status = response.status
        except TimeoutError:
            output = f"{self._shown} timed out after {self._timeout:g} s"
            return Observation(status="fail", output=output)
        if status not in self._statuses:
            output = f"{self._shown} returned {status}, expected {_describe(self._statuses)}"
            return Observation(value=status, status="fail", output=output)
        return Observation(value=status)

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _statuses(expect_status: int | Iterable[int]) -> frozenset[int]:
    try:
        statuses = frozenset((expect_status,) if isinstance(expect_status, int) else expect_status)
    except TypeError:
        statuses = frozenset()
    if not statuses or not all(_is_int(s) and 100 <= s <= 599 for s in statuses):
        raise ConfigurationError(
            "http_dependency(expect_status=...) takes a status or a collection of statuses "
            f"between 100 and 599, e.g. range(200, 300) or {{200, 204}}, got {expect_status!r}"
        )
    return statuses


def _describe(statuses: frozenset[int]) -> str:
    low, high = min(statuses), max(statuses)
    if len(statuses) > 2 and high - low + 1 == len(statuses):
        return f"{low}-{high}"
    return " or ".join(str(s) for s in sorted(statuses))
