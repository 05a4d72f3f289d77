"""Virtual time for tests of timing verdicts: an event loop whose clock jumps instead of waiting.

`VirtualTimeLoop.time()` starts at 0 and moves only when every task waits on a timer (it then
jumps to the earliest one) or when `advance()` says the loop was busy for that long. Real I/O
still happens: the target server runs in the same loop on loopback, so a request and its reply
take no virtual time and a handler's `asyncio.sleep(0.05)` takes exactly 50 ms. The load engine
(`clock=`) and `readykit check`'s client (`Client(clock=)`, `check(clock=)`) get the loop's `time`
as their clock, so every latency, rate and interval they measure is exact.

Routes of `known_server` (aiohttp):
  /                      answers at once
  /delay?ms=N            answers after N ms; requests are concurrent (a healthy async handler)
  /serial?ms=N           one request at a time, N ms each (blocking I/O in an async handler)
  /pool?size=K&ms=N      K requests at a time, N ms each (a pool of K connections)
  /flaky?ms=N            after N ms, 503 if another request was in flight when it arrived
  /stall?at=K&ms=N       the K-th request holds every request for N ms, once (a GC pause)
  /busy?ms=N             each request keeps the whole loop busy for N ms, generator included
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

# Loopback data is normally readable as soon as the peer's send() returns; this real wait, only
# taken when the loop would otherwise sleep, covers a kernel that delivers it a little later.
GRACE_S = 0.002


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Polls real I/O without blocking; a wait for a timer becomes a jump of the clock."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if events or timeout == 0:
            return list(events)
        events = super().select(GRACE_S if timeout is None else min(timeout, GRACE_S))
        if events:
            return list(events)
        if timeout is None:  # no timer at all: only real I/O can wake the loop
            return list(super().select(None))
        assert self.loop is not None
        self.loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time (see the module docstring)."""

    def __init__(self) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """The loop was busy for `seconds`: every task sees the time jump when it next runs."""
        self.now += seconds


def run_virtual(main: Callable[[VirtualTimeLoop], Awaitable[T]]) -> T:
    """Run `main(loop)` to the end on a fresh virtual-time loop."""

    async def wrapper() -> T:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        return await main(loop)

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(wrapper())


def _ms(request: web.Request, default: float) -> float:
    return float(request.query.get("ms", default)) / 1000


def known_app() -> web.Application:
    """The server's routes, with per-server state (counters, the serialising lock, the gate)."""
    lock = asyncio.Lock()
    pools: dict[int, asyncio.Semaphore] = {}
    gate = asyncio.Event()
    gate.set()
    seen = {"stall": 0, "inflight": 0}

    async def root(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def delay(request: web.Request) -> web.Response:
        await asyncio.sleep(_ms(request, 50))
        return web.Response(text="ok")

    async def serial(request: web.Request) -> web.Response:
        async with lock:
            await asyncio.sleep(_ms(request, 20))
        return web.Response(text="ok")

    async def pool(request: web.Request) -> web.Response:
        size = int(request.query.get("size", "3"))
        async with pools.setdefault(size, asyncio.Semaphore(size)):
            await asyncio.sleep(_ms(request, 80))
        return web.Response(text="ok")

    async def flaky(request: web.Request) -> web.Response:
        seen["inflight"] += 1
        try:
            crowded = seen["inflight"] > 1
            await asyncio.sleep(_ms(request, 5))
            return web.Response(status=503 if crowded else 200, text="busy" if crowded else "ok")
        finally:
            seen["inflight"] -= 1

    async def stall(request: web.Request) -> web.Response:
        seen["stall"] += 1
        if seen["stall"] == int(request.query.get("at", "100")):
            gate.clear()
            await asyncio.sleep(_ms(request, 1000))
            gate.set()
        await gate.wait()
        return web.Response(text="ok")

    async def busy(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        loop.advance(_ms(request, 5))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", root)
    app.router.add_get("/delay", delay)
    app.router.add_get("/serial", serial)
    app.router.add_get("/pool", pool)
    app.router.add_get("/flaky", flaky)
    app.router.add_get("/stall", stall)
    app.router.add_get("/busy", busy)
    return app


@asynccontextmanager
async def known_server(app: web.Application | None = None) -> AsyncIterator[str]:
    """`app` (default `known_app()`) on a free loopback port in the running loop; yields its
    base URL."""
    runner = web.AppRunner(app if app is not None else known_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
