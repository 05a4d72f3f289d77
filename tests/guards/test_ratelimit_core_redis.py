"""The rate limiter's core on a real Redis: concurrent hits coalesced into one round trip, with
exactly `limits`' counts, answers and keys; outages and a lost script cache handled."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from limits.aio.storage import RedisStorage
from limits.aio.strategies import STRATEGIES as LIMITS_STRATEGIES
from limits.aio.strategies import RateLimiter
from prometheus_client import CollectorRegistry
from redis.asyncio import Connection, ConnectionPool, SSLConnection
from redis.exceptions import DataError

from limits_reference import limits_pick
from readykit import ReadyKit, Settings
from readykit.guards import ratelimit_redis
from readykit.guards.ratelimit import Policy, RateLimiterCore, RateLimitMetrics, parse_policies
from readykit.guards.ratelimit_redis import PackedConnection
from readykit.serve import free_port, wait_for_port
from readykit.testing import FakeClock, asgi_request
from support import need, need_binary

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

ALL = ["fixed-window", "moving-window", "sliding-window-counter"]
REDIS_URL = "redis://127.0.0.1:6379/15"  # db 15: tests elsewhere flush db 0
CLOSED = "redis://127.0.0.1:1/15"


@pytest.fixture
def redis_db() -> Iterator[str]:
    """A key tag unique to the test; its `limits` keys in db 15 are deleted afterwards."""
    try:
        socket.create_connection(("127.0.0.1", 6379), 1.0).close()
    except OSError:
        need("Redis not reachable at 127.0.0.1:6379")
    tag = f"rk-core-{uuid.uuid4().hex[:12]}"
    yield tag
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{tag}*"))
    if keys:
        client.delete(*keys)
    client.close()


def make_core(
    strategy: str, url: str = REDIS_URL, *, fail_open: bool = True
) -> tuple[RateLimiterCore, RateLimitMetrics]:
    metrics = RateLimitMetrics(CollectorRegistry())
    return RateLimiterCore(url, strategy, fail_open=fail_open, metrics=metrics), metrics


def policy(text: str) -> Policy:
    default, _ = parse_policies({"default": text})
    assert default is not None
    return default


def round_trips(core: RateLimiterCore) -> int:
    assert core.batcher is not None
    return core.batcher.round_trips


@pytest.fixture
async def limits_limiter() -> AsyncIterator[dict[str, RateLimiter]]:
    """`limits`' own async limiters on the same Redis, one per strategy."""
    pool = ConnectionPool.from_url(REDIS_URL)
    options: dict[str, Any] = {"connection_pool": pool}
    storage = RedisStorage("async+" + REDIS_URL, implementation="redispy", **options)
    yield {name: strategy(storage) for name, strategy in LIMITS_STRATEGIES.items()}
    await pool.aclose()


async def limits_answer(
    limiter: RateLimiter, policy: Policy, key: str
) -> tuple[bool, str, int, float]:
    """What `limits` itself says: per item a hit then its window stats; the first violated
    item decides, else the one with the fewest left."""
    outcomes = []
    for item_name, item in zip(policy.names, policy.items, strict=True):
        ok = await limiter.hit(item, item_name, key)
        outcomes.append((ok, await limiter.get_window_stats(item, item_name, key)))
    return limits_pick(policy, outcomes)


@pytest.mark.parametrize("strategy", ALL)
async def test_concurrent_hits_share_one_round_trip_each_with_its_own_answer(
    redis_db: str, strategy: str
) -> None:
    core, _ = make_core(strategy)
    limit = policy("50/minute")
    try:
        before = round_trips(core)
        answers = await asyncio.gather(*(core.hit(limit, redis_db) for _ in range(20)))
        assert round_trips(core) - before == 1
        assert all(a is not None and a[0] for a in answers)
        # each caller saw the counter just after its own hit
        assert sorted(a[2] for a in answers if a) == list(range(30, 50))
        # two policies' items (two per policy) of concurrent callers: still one round trip
        both = policy("50/minute;100/hour")
        answers = await asyncio.gather(
            *(core.hit(p, f"{redis_db}-{i}") for i, p in enumerate([limit, both] * 5))
        )
        assert round_trips(core) - before == 2
        assert [a[:3] for a in answers if a] == [(True, "default", 49)] * 10
    finally:
        await core.aclose()


@pytest.mark.parametrize("strategy", ALL)
async def test_exactly_the_limit_is_allowed_under_concurrency(redis_db: str, strategy: str) -> None:
    # two instances (two cores, two pools), as two processes would be
    (one, _), (two, _) = make_core(strategy), make_core(strategy)
    limit = policy("50/minute")
    try:
        answers = await asyncio.gather(
            *(core.hit(limit, redis_db) for _ in range(50) for core in (one, two))
        )
        assert sum(1 for a in answers if a is not None and a[0]) == 50
        assert sum(1 for a in answers if a is not None and not a[0]) == 50
        assert round_trips(one) == round_trips(two) == 1
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_burst_of_thousands_goes_in_bounded_round_trips_and_holds_the_limit(
    redis_db: str,
) -> None:
    """5,000 concurrent requests were one pipeline of 20,000 commands, which outran the storage
    timeout: the late answer counted as an outage and fail-open let everything through (an
    attacker's load alone turned the limit off)."""
    from readykit.guards.ratelimit_redis import MAX_BATCH_COMMANDS

    core, metrics = make_core("fixed-window")
    limit = policy("5/minute;20/hour")  # two items: four commands a request
    try:
        answers = await asyncio.gather(*(core.hit(limit, redis_db) for _ in range(5_000)))
        assert round_trips(core) >= 5_000 * 4 // MAX_BATCH_COMMANDS
        assert metrics.storage_errors.collect()[0].samples[0].value == 0
        assert sum(1 for a in answers if a is not None and a[0]) == 5
        assert sum(1 for a in answers if a is not None and not a[0]) == 4_995
    finally:
        await core.aclose()


@pytest.mark.parametrize("strategy", ALL)
async def test_answers_equal_limits_own(
    redis_db: str, strategy: str, limits_limiter: dict[str, RateLimiter]
) -> None:
    core, _ = make_core(strategy)
    both = policy("3/minute;5/hour")
    try:
        for step in range(5):
            ours = await core.hit(both, f"{redis_db}-ours")
            theirs = await limits_answer(limits_limiter[strategy], both, f"{redis_db}-theirs")
            assert ours is not None
            assert ours[:3] == theirs[:3], step
            # Redis' clock runs between the two calls: TTLs in whole seconds may differ by one,
            # and the sliding window's reset (a TTL modulo the window) may wrap from 60 to 0
            assert min(abs(ours[3] - theirs[3]), 60 - abs(ours[3] - theirs[3])) <= 1, step
    finally:
        await core.aclose()


@pytest.mark.parametrize("strategy", ALL)
async def test_counters_are_shared_with_limits(
    redis_db: str, strategy: str, limits_limiter: dict[str, RateLimiter]
) -> None:
    core, _ = make_core(strategy)
    limit = policy("4/minute")
    theirs = limits_limiter[strategy]
    try:
        answers = []
        for _ in range(3):
            answers.append(await core.hit(limit, redis_db))
            answers.append(await limits_answer(theirs, limit, redis_db))
        assert [(a[0], a[2]) for a in answers if a] == [
            (True, 3), (True, 2), (True, 1), (True, 0), (False, 0), (False, 0),
        ]  # fmt: skip
    finally:
        await core.aclose()


async def test_an_outage_answers_none_once_per_round_trip_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core, metrics = make_core("fixed-window", CLOSED)
    core.clock = clock = FakeClock()
    caplog.set_level(logging.INFO, "readykit.ratelimit")
    limit = policy("1/minute")
    try:
        answers = await asyncio.gather(*(core.hit(limit, "k") for _ in range(10)))
        assert answers == [None] * 10
        assert round_trips(core) == 1
        assert await core.hit(limit, "k") is None  # in the pause: Redis is not tried
        assert round_trips(core) == 1
        clock.advance(2)
        assert await asyncio.gather(*(core.hit(limit, "k") for _ in range(3))) == [None] * 3
        assert round_trips(core) == 2
        errors = metrics.storage_errors.collect()[0].samples[0].value
        assert errors == 2  # one per failed round trip
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "ConnectionError" in warnings[0].getMessage()
        assert not await core.check()
    finally:
        await core.aclose()


@pytest.mark.parametrize(("fail_open", "status"), [(True, 200), (False, 503)])
async def test_concurrent_requests_fail_open_or_closed_on_a_closed_port(
    fail_open: bool, status: int
) -> None:
    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    kit = ReadyKit(
        Settings(
            configure_logging=False,
            access_log=False,
            rate_limits={"default": "1/minute"},
            rate_limit_storage=CLOSED,
            rate_limit_fail_open=fail_open,
        )
    )
    app = kit.wrap(ok)
    responses = await asyncio.gather(*(asgi_request(app, "GET", "/x") for _ in range(5)))
    assert [r.status for r in responses] == [status] * 5
    assert all(r.header("ratelimit") is None for r in responses)
    assert kit.rate_limiter is not None
    await kit.rate_limiter.aclose()


@pytest.fixture
def own_redis() -> Iterator[str]:
    """A Redis server of this test's own (its script cache and keys are the test's to wipe)."""
    binary = need_binary("redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        assert wait_for_port("127.0.0.1", port, time.monotonic() + 10), "redis did not start"
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize("strategy", ALL)
async def test_a_flushed_script_cache_costs_one_retry_not_a_wrong_count(
    own_redis: str, strategy: str
) -> None:
    core, metrics = make_core(strategy, own_redis)
    limit = policy("3/minute")
    admin = redis.Redis.from_url(own_redis)
    try:
        assert (await core.hit(limit, "k") or ())[:3] == (True, "default", 2)
        admin.script_flush()
        answers = await asyncio.gather(*(core.hit(limit, "k") for _ in range(3)))
        assert [a[:3] for a in answers if a] == [
            (True, "default", 1), (True, "default", 0), (False, "default", 0),
        ]  # fmt: skip
        assert round_trips(core) == 3  # the first, then the batch sent twice
        assert metrics.storage_errors.collect()[0].samples[0].value == 0
        await core.reset()
        assert admin.keys("LIMITS:*") == []
        assert (await core.hit(limit, "k") or ())[:3] == (True, "default", 2)
        assert await core.check()
    finally:
        admin.close()
        await core.aclose()


_arg = st.one_of(st.binary(max_size=40), st.text(max_size=20), st.integers(-(2**40), 2**40))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from([b"EVALSHA", b"TTL", "PING", "CLIENT", b"SCRIPT"]), args=st.lists(_arg))
def test_the_c_packer_writes_what_redis_py_writes(name: bytes | str, args: list[Any]) -> None:
    """The batches' connection packs with hiredis; the bytes are redis-py's own."""
    ours = PackedConnection()
    theirs = Connection()
    assert b"".join(ours.pack_command(name, *args)) == b"".join(theirs.pack_command(name, *args))
    # a command name holding a space is split by redis-py, as text or as bytes
    for script_load in ("SCRIPT LOAD", b"SCRIPT LOAD"):
        assert ours.pack_command(script_load, b"return 1") == theirs.pack_command(
            script_load, b"return 1"
        )
    # a value redis cannot take is redis-py's DataError (fail-open handles RedisError)
    for packer in (ours, theirs):
        with pytest.raises(DataError):
            packer.pack_command(b"GET", None)


async def test_the_batches_connection_packs_in_c() -> None:
    core = RateLimiterCore(
        REDIS_URL, "fixed-window", fail_open=True, metrics=RateLimitMetrics(CollectorRegistry())
    )
    try:
        assert core.batcher is not None
        assert core.batcher.pool.connection_class is PackedConnection
        assert ratelimit_redis._SERIALIZER is not None  # hiredis is in the redis extra
    finally:
        await core.aclose()
    # TLS stays TLS: rediss:// keeps redis-py's own SSL connection class
    tls = RateLimiterCore(
        "rediss://127.0.0.1:6380/0", "fixed-window", fail_open=True,
        metrics=RateLimitMetrics(CollectorRegistry()),
    )  # fmt: skip
    try:
        assert tls.batcher is not None
        assert issubclass(tls.batcher.pool.connection_class, SSLConnection)
    finally:
        await tls.aclose()
