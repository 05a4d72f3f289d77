"""`@kit.cached`: computed once under a stampede, JSON only, tags, metrics, a Redis outage."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from readykit import ConfigurationError, ReadyKit, Settings

pytestmark = pytest.mark.anyio


def make_kit(**settings: Any) -> ReadyKit:
    return ReadyKit(Settings(configure_logging=False, **settings))


def sample(kit: ReadyKit, name: str, cache: str) -> float:
    return kit.metrics.registry.get_sample_value(name, {"cache": cache}) or 0.0


@pytest.mark.parametrize("url", ["memory://", "redis"])
async def test_stampede_computes_once_and_tags_invalidate(
    url: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if url == "redis":
        url = request.getfixturevalue("redis_url")
        # 50 first connections at once on a loaded 2-core machine can pass the 0.25 s budget,
        # and the cache then rightly computes fresh; this test is about single-flight
        monkeypatch.setattr("readykit.cache.store.REDIS_TIMEOUT_S", 5.0)
    kit = make_kit(cache_url=url)
    calls = 0
    gate = asyncio.Event()

    @kit.cached(ttl=60, tags=("rates",))
    async def rates(code: str) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await gate.wait()
        return {"code": code, "value": 81.5, "call": calls}

    tasks = [asyncio.create_task(rates("USD")) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    assert all(r == {"code": "USD", "value": 81.5, "call": 1} for r in results)
    assert await rates("USD") == results[0]  # from the cache
    assert await rates("EUR") != results[0]  # other arguments, other entry
    assert calls == 2
    assert await kit.invalidate("rates") == 2
    assert (await rates("USD"))["call"] == 3
    label = f"{__name__}.test_stampede_computes_once_and_tags_invalidate.<locals>.rates"
    assert sample(kit, "readykit_cache_misses_total", label) == 3
    assert sample(kit, "readykit_cache_hits_total", label) >= 1
    await kit.cache.backend.aclose()


async def test_exceptions_are_not_cached() -> None:
    kit = make_kit()
    calls = 0

    @kit.cached(ttl=60)
    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("upstream down")
        return calls

    with pytest.raises(RuntimeError):
        await flaky()
    assert await flaky() == 2
    assert await flaky() == 2


async def test_non_json_results_and_sync_functions_are_refused() -> None:
    kit = make_kit()

    @kit.cached(ttl=60)
    async def odd() -> Any:
        return object()

    with pytest.raises(ConfigurationError, match="not JSON"):
        await odd()
    with pytest.raises(ConfigurationError, match="not an async function"):
        kit.cached(ttl=60)(lambda: 1)  # type: ignore[arg-type]


async def test_redis_down_computes_fresh() -> None:
    kit = make_kit(cache_url="redis://127.0.0.1:1/0")
    calls = 0

    @kit.cached(ttl=60)
    async def value() -> int:
        nonlocal calls
        calls += 1
        return 7

    assert [await value() for _ in range(3)] == [7, 7, 7]
    assert calls == 3
    await kit.cache.backend.aclose()


class Session:
    """Stands for an injected database session: an object whose repr differs per instance."""


async def new_session() -> Session:
    return Session()  # a new object per request, as SQLAlchemy's are


async def test_arguments_without_a_stable_key_are_refused_with_the_fix() -> None:
    kit = make_kit()

    @kit.cached(ttl=60)
    async def rate(session: Session, code: str) -> float:
        return 81.5

    with pytest.raises(ConfigurationError, match=r"called with a Session, .*key="):
        await rate(Session(), "USD")


async def test_key_names_what_matters_and_a_fastapi_dependency_then_hits() -> None:
    kit = make_kit()
    computed = 0

    @kit.cached(ttl=60, key=lambda session, code: code)
    async def rate(session: Session, code: str) -> dict[str, float]:
        nonlocal computed
        computed += 1
        return {"value": 81.5}

    api = FastAPI()

    @api.get("/rates/{code}")
    async def get_rate(
        code: str, session: Annotated[Session, Depends(new_session)]
    ) -> dict[str, float]:
        return await rate(session, code)

    transport = httpx.ASGITransport(app=kit.wrap(api))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(5):
            assert (await client.get("/rates/USD")).json() == {"value": 81.5}
    assert computed == 1
    label = (
        f"{__name__}.test_key_names_what_matters_and_a_fastapi_dependency_then_hits.<locals>.rate"
    )
    assert sample(kit, "readykit_cache_hits_total", label) == 4


async def test_values_make_keys_without_key() -> None:
    import datetime
    import uuid

    kit = make_kit()
    calls = 0

    @kit.cached(ttl=60)
    async def report(day: datetime.date, ids: list[uuid.UUID], opts: dict[str, int]) -> int:
        nonlocal calls
        calls += 1
        return calls

    args = (datetime.date(2026, 12, 3), [uuid.UUID(int=1)], {"limit": 5})
    assert await report(*args) == await report(*args) == 1


async def test_a_cancelled_first_caller_cancels_nobody_waiting_on_it() -> None:
    """The caller computing an entry is cancelled (its time limit): the callers waiting on it
    compute again, once for all of them, instead of being cancelled with it."""
    kit = make_kit()
    calls = 0
    gate = asyncio.Event()

    @kit.cached(ttl=60)
    async def report(day: str) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.Event().wait()  # the first computation never ends by itself
        await gate.wait()
        return {"day": day, "call": calls}

    first = asyncio.create_task(report("mon"))
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(report("mon")) for _ in range(3)]
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiters)
    assert first.cancelled()
    assert results == [{"day": "mon", "call": 2}] * 3
    assert calls == 2
