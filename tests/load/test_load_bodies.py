"""Huge response bodies cost the load engine time, never memory: each is read and dropped."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from readykit.load import scenario as sc
from readykit.load.engine import KEEP_BODY, Engine, RunSpec
from readykit.load.stats import Interval

BODY = 48 * 1024 * 1024  # far above any bound below: a body kept whole shows at once
PIECE = b"A" * (256 * 1024)
BOUND = 8 * 1024 * 1024  # the traced peak of one whole run, server side included


def _head(path: bytes) -> bytes:
    if path.startswith(b"/len"):
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BODY
    if path.startswith(b"/chunked"):  # one chunk as long as the whole body
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % BODY
    return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"  # delimited by the close


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ")[1]
            writer.write(_head(path))
            for _ in range(BODY // len(PIECE)):
                writer.write(PIECE)
                await writer.drain()
            if path.startswith(b"/chunked"):
                writer.write(b"\r\n0\r\n\r\n")
            await writer.drain()
            if path.startswith(b"/close"):
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


@pytest.fixture
async def huge() -> AsyncIterator[str]:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()


async def _peak(run: Callable[[], Awaitable[object]]) -> int:
    tracemalloc.start()
    try:
        await run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _engine(scenario: sc.Scenario, seen: list[Interval], requests: int = 2) -> Engine:
    spec = RunSpec(users=1, duration_s=600.0, max_requests=requests, timeout_s=600.0)
    return Engine(scenario, spec, seen.append)


def _answered(seen: list[Interval], engine: Engine) -> tuple[int, dict[str, int]]:
    """Requests answered and the errors counted, over every interval the engine emitted."""
    return engine.done_requests, {k: v for i in seen for k, v in i.errors.items()}


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/len", "/chunked", "/close"])
async def test_the_fast_path_drops_a_huge_body_as_it_reads_it(huge: str, path: str) -> None:
    seen: list[Interval] = []
    engine = _engine(sc.from_url(huge + path), seen)
    assert engine._raw is not None  # the raw HTTP/1.1 fast path serves plain http
    peak = await _peak(engine.run)
    assert _answered(seen, engine) == (2, {})
    assert peak < BOUND


@pytest.mark.anyio
async def test_the_aiohttp_get_path_drops_a_huge_body(huge: str) -> None:
    seen: list[Interval] = []
    engine = _engine(sc.from_url(huge + "/len"), seen)
    engine._raw = None  # what an https URL gets: aiohttp's GET fast path
    peak = await _peak(engine.run)
    assert _answered(seen, engine) == (2, {})
    assert peak < BOUND


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/len", "/close"])
async def test_a_scenario_keeps_only_the_head_of_a_huge_body(huge: str, path: str) -> None:
    kept: list[int] = []

    async def script(user: object) -> None:
        resp = await user.get(path)  # type: ignore[attr-defined]
        kept.append(len(resp.body))

    scenario = sc.Scenario("python", "inline", huge, "inline", script=script)
    seen: list[Interval] = []
    engine = _engine(scenario, seen)
    peak = await _peak(engine.run)
    assert _answered(seen, engine) == (2, {})
    assert kept == [KEEP_BODY, KEEP_BODY]
    assert peak < BOUND
