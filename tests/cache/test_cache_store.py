"""Cache backends (memory and a real Redis, same suite), bounds, TTL, tags, outages."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from readykit import ConfigurationError
from readykit.cache import (
    Cache,
    CacheBackend,
    CacheMetrics,
    MemoryCache,
    RedisCache,
    backend_from_url,
)
from readykit.testing import FakeClock

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[CacheBackend]:
    if request.param == "memory":
        yield MemoryCache(max_entries=100, max_bytes=10_000)
        return
    url = request.getfixturevalue("redis_url")
    redis_backend = RedisCache(url)
    try:
        yield redis_backend
    finally:
        await redis_backend.aclose()


async def test_set_get_and_tags(backend: CacheBackend) -> None:
    await backend.set("a", b"1", 60, ("rates",))
    await backend.set("b", b"2", 60, ("rates", "eur"))
    await backend.set("c", b"3", 60)
    assert await backend.get("a") == b"1"
    assert await backend.invalidate("rates") == 2
    assert await backend.get("a") is None
    assert await backend.get("b") is None
    assert await backend.get("c") == b"3"
    assert await backend.invalidate("rates") == 0
    await backend.check()


async def test_memory_ttl_with_a_fake_clock() -> None:
    clock = FakeClock()
    cache = MemoryCache(max_entries=10, max_bytes=1000, clock=clock)
    await cache.set("k", b"v", 30)
    clock.advance(29.9)
    assert await cache.get("k") == b"v"
    clock.advance(0.2)
    assert await cache.get("k") is None
    assert len(cache) == 0


async def test_memory_is_bounded_by_entries_and_bytes_least_recent_first() -> None:
    evicted: list[int] = []
    cache = MemoryCache(max_entries=3, max_bytes=100, on_evict=lambda: evicted.append(1))
    for key in "abc":
        await cache.set(key, b"x", 60)
    await cache.get("a")  # now b is the least recently used
    await cache.set("d", b"x", 60)
    assert await cache.get("b") is None
    assert {k for k in "acd" if await cache.get(k)} == set("acd")
    await cache.set("big", b"y" * 98, 60)  # a 4th entry: the least recent (a) goes
    assert (len(cache), cache.bytes, len(evicted)) == (3, 100, 2)
    await cache.set("e", b"z" * 50, 60)  # bytes, not count, now push out c, d and big
    assert (len(cache), cache.bytes, len(evicted)) == (1, 50, 5)
    await cache.set("huge", b"z" * 101, 60)  # larger than the whole cache: not stored
    assert await cache.get("huge") is None
    assert await cache.get("e") is not None


def test_unknown_scheme_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="cache_url: unknown scheme 'memcached'"):
        backend_from_url("memcached://x", max_entries=1, max_bytes=1)


async def test_unreachable_redis_is_a_miss_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    clock = FakeClock()
    backend = RedisCache("redis://127.0.0.1:1/0")
    cache = Cache(backend, CacheMetrics(registry), clock=clock)
    caplog.set_level(logging.INFO, "readykit.cache")
    try:
        for _ in range(3):
            for _ in range(4):
                assert await cache.get("k") is None
                await cache.set("k", b"v", 60)
            clock.advance(2)
        assert await cache.invalidate("t") == 0
    finally:
        await backend.aclose()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    errors = registry.get_sample_value("readykit_cache_errors_total", {"cache": "RedisCache"})
    assert errors == 4  # one per retry window (3) and the invalidation
