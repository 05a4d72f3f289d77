"""Cache backends by URI: `memory://` (a bounded LRU) and `redis://` — and the facade that
keeps a dead backend from ever failing a request.

Values are bytes with a TTL and tags; `invalidate(tag)` drops every entry carrying the tag.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from readykit.errors import require_extra
from readykit.section import MEMORY_OR_REDIS, url_scheme

logger = logging.getLogger("readykit.cache")

REDIS_TIMEOUT_S = 0.25
NEVER_HITS_AFTER = 20  # lookups without one hit before the dashboard flags a cache
RETRY_AFTER_S = 1.0
PREFIX = "readykit:cache:"


class CacheBackend(ABC):
    """Where cached bytes live. Errors escape; `Cache` decides what they mean."""

    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl: float, tags: Iterable[str] = ()) -> None:
        """Store `value` for `ttl` seconds under `key`, findable by each of `tags`."""

    @abstractmethod
    async def invalidate(self, tag: str) -> int:
        """Drop every entry carrying `tag`; the number dropped."""

    @abstractmethod
    async def check(self) -> None:
        """Raise if the backend cannot be reached."""

    async def aclose(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release connections."""


class MemoryCache(CacheBackend):
    """An LRU in this process, bounded by entry count and by bytes.

    Args:
        on_evict: called once per entry pushed out by the bounds (not by expiry).
        clock: monotonic seconds; tests pass a fake one.
    """

    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        on_evict: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._on_evict = on_evict
        self._clock = clock
        self._entries: OrderedDict[str, tuple[bytes, float, tuple[str, ...]]] = OrderedDict()
        self._tags: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: str) -> None:
        value, _, tags = self._entries.pop(key)
        self.bytes -= len(value)
        for tag in tags:
            keys = self._tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tags[tag]

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[0]

    async def set(self, key: str, value: bytes, ttl: float, tags: Iterable[str] = ()) -> None:
        if len(value) > self.max_bytes:
            return  # could never fit; storing it would only flush everything else
        if key in self._entries:
            self._drop(key)
        tags = tuple(tags)
        self._entries[key] = (value, self._clock() + ttl, tags)
        self.bytes += len(value)
        for tag in tags:
            self._tags.setdefault(tag, set()).add(key)
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))
            self._on_evict()

    async def invalidate(self, tag: str) -> int:
        keys = list(self._tags.get(tag, ()))
        for key in keys:
            self._drop(key)
        return len(keys)

    async def check(self) -> None:
        return None


class RedisCache(CacheBackend):
    """Entries in Redis with PX expiry; each tag is a set of keys, so invalidation is exact.

    `namespace` (the service's name) keeps services that share a Redis database apart: two
    services behind one host name would otherwise answer each other's routes from the cache.
    """

    def __init__(self, url: str, namespace: str = "") -> None:
        from redis.asyncio import Redis

        self.prefix = f"{PREFIX}{namespace}:" if namespace else PREFIX
        self._redis = Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
        )

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(self.prefix + key)
        if value is None:
            return None
        return value if isinstance(value, bytes) else value.encode()

    async def set(self, key: str, value: bytes, ttl: float, tags: Iterable[str] = ()) -> None:
        ttl_ms = max(1, int(ttl * 1000))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.prefix + key, value, px=ttl_ms)
            for tag in tags:
                tag_key = f"{self.prefix}tag:{tag}"
                pipe.sadd(tag_key, key)
                # a tag set outlives its members a little; stale members cost one DEL each
                pipe.pexpire(tag_key, ttl_ms + 60_000, gt=True)
                pipe.pexpire(tag_key, ttl_ms + 60_000, nx=True)
            await pipe.execute()

    async def invalidate(self, tag: str) -> int:
        tag_key = f"{self.prefix}tag:{tag}"
        keys = await self._redis.smembers(tag_key)
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.delete(self.prefix + (key.decode() if isinstance(key, bytes) else key))
            pipe.delete(tag_key)
            results = await pipe.execute()
        return int(sum(results[:-1]))

    async def check(self) -> None:
        await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()


def backend_from_url(
    url: str, *, max_entries: int, max_bytes: int, namespace: str = ""
) -> CacheBackend:
    """`memory://` or `redis://host:port/db` (also `rediss://`), its keys under `namespace`."""
    if cache_scheme(url) == "memory":
        return MemoryCache(max_entries=max_entries, max_bytes=max_bytes)
    require_extra("redis", "redis", "cache_url")
    return RedisCache(url, namespace)


def cache_scheme(url: str) -> str:
    """`memory`, `redis` or `rediss`; any other scheme is refused naming the setting."""
    return url_scheme(url, MEMORY_OR_REDIS, setting="cache_url", use="memory:// or redis://")


class CacheMetrics:
    """Hits, misses, evictions and backend errors, by cache name."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, ["cache"], registry=registry)

        self.hits = counter("readykit_cache_hits", "Lookups answered from the cache.")
        self.misses = counter("readykit_cache_misses", "Lookups that had to compute.")
        self.evictions = counter("readykit_cache_evictions", "Entries pushed out by the bounds.")
        self.errors = counter("readykit_cache_errors", "Backend calls that failed.")

    def snapshot(self) -> dict[str, dict[str, float]]:
        """Counts per cache name, and the hit rate: for the dashboard."""
        out: dict[str, dict[str, float]] = {}
        for kind, metric in (("hits", self.hits), ("misses", self.misses)):
            for sample in next(iter(metric.collect())).samples:
                if sample.name.endswith("_total"):
                    out.setdefault(sample.labels["cache"], {})[kind] = sample.value
        for counts in out.values():
            total = counts.get("hits", 0) + counts.get("misses", 0)
            counts["hit_rate"] = counts.get("hits", 0) / total if total else 0.0
            # looked up often and never hit: a key that differs per call, a TTL too short
            counts["never_hits"] = float(total >= NEVER_HITS_AFTER and not counts.get("hits"))
        return out


class Cache:
    """The kit's cache: a backend behind a fail-open policy.

    A backend error never reaches the caller: a read is a miss (compute fresh), a write or an
    invalidation is skipped. One warning per outage, one info when it is back; while down, the
    backend is tried again once a second, so requests do not each wait for a timeout.
    """

    def __init__(
        self,
        backend: CacheBackend,
        metrics: CacheMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        self.clock = clock
        self._down_until = 0.0
        self._outage = False
        if isinstance(backend, MemoryCache):
            backend._on_evict = metrics.evictions.labels("memory").inc

    def _available(self) -> bool:
        return not self._outage or self.clock() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        self.metrics.errors.labels(type(self.backend).__name__).inc()
        self._down_until = self.clock() + RETRY_AFTER_S
        if not self._outage:
            self._outage = True
            logger.warning(
                "cache backend unreachable (%s: %s); computing fresh until it is back",
                type(exc).__name__,
                exc,
            )

    def _ok(self) -> None:
        if self._outage:
            self._outage = False
            logger.info("cache backend is back")

    async def get(self, key: str) -> bytes | None:
        """The cached bytes, or None (absent, expired, or the backend is down)."""
        if not self._available():
            return None
        try:
            value = await self.backend.get(key)
        except Exception as exc:  # any backend failure is a miss, never the request's error
            self._failed(exc)
            return None
        self._ok()
        return value

    async def set(self, key: str, value: bytes, ttl: float, tags: Iterable[str] = ()) -> None:
        """Store, or skip silently while the backend is down."""
        if not self._available():
            return
        try:
            await self.backend.set(key, value, ttl, tags)
        except Exception as exc:
            self._failed(exc)
        else:
            self._ok()

    async def invalidate(self, tag: str) -> int:
        """Drop the entries tagged `tag`; 0 if the backend is down (their TTL still bounds them)."""
        try:
            dropped = await self.backend.invalidate(tag)
        except Exception as exc:
            self._failed(exc)
            return 0
        self._ok()
        return dropped

    async def check(self) -> Any:
        """Readiness: raises while the backend is unreachable."""
        await self.backend.check()
