"""Per-request cost of each variant in process: drive the ASGI app directly, no server, no wrk.

`python -m bench.inproc [--requests N] [--only VARIANT ...]` prints microseconds per request and
the cost over bare for each variant of `bench.apps`, so each piece's share of the request path
can be read off without the noise of sockets (the wrk bench, `bench.run`, has the real ratios).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.apps import VARIANTS
from readykit._types import ASGIApp, Message

CONCURRENCY = 32
_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/items/42",
    "raw_path": b"/items/42",
    "root_path": "",
    "query_string": b"",
    "headers": [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"wrk"),
        (b"accept", b"*/*"),
    ],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
    "state": {},
}


async def _drive(app: ASGIApp, requests: int) -> float:
    """Seconds per request over `requests` sequential requests."""
    request: Message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> Message:
        return request

    async def send(message: Message) -> None:
        pass

    async def one() -> None:
        scope = dict(_SCOPE)
        scope["state"] = {}
        await app(scope, receive, send)

    # 32 at a time, as wrk's 32 connections keep 32 requests in flight
    started = time.perf_counter()
    for _ in range(requests // CONCURRENCY):
        await asyncio.gather(*(one() for _ in range(CONCURRENCY)))
    return (time.perf_counter() - started) / (requests // CONCURRENCY * CONCURRENCY)


async def _startup(app: ASGIApp) -> Callable[[], Awaitable[None]]:
    """Run the app's lifespan startup; returns what runs its shutdown."""
    queue: asyncio.Queue[Message] = asyncio.Queue()
    await queue.put({"type": "lifespan.startup"})
    started, stopped = asyncio.Event(), asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()
        elif message["type"].startswith("lifespan.shutdown"):
            stopped.set()

    task = asyncio.get_running_loop().create_task(
        app({"type": "lifespan", "asgi": {}}, queue.get, send)
    )
    await asyncio.wait_for(started.wait(), 10)

    async def shutdown() -> None:
        await queue.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(stopped.wait(), 10)
        await task

    return shutdown


def measure(variant: str, requests: int, rounds: int) -> float:
    """Median microseconds per request of `variant` after a warm-up."""
    import uvloop

    async def run() -> float:
        app = VARIANTS[variant]()
        shutdown = await _startup(app)
        await _drive(app, requests // 10)
        us = statistics.median([await _drive(app, requests) for _ in range(rounds)])
        await shutdown()
        return us

    return uvloop.run(run()) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", action="append", choices=sorted(VARIANTS))
    args = parser.parse_args()
    variants = ["bare", *[v for v in args.only or VARIANTS if v not in ("bare",)]]
    bare = None
    for variant in variants:
        try:
            us = measure(variant, args.requests, args.rounds)
        except Exception as exc:  # a peer library not installed
            print(f"{variant:>26}: skipped ({type(exc).__name__}: {exc})")
            continue
        bare = us if bare is None else bare
        print(f"{variant:>26}: {us:7.1f} us/request  (+{us - bare:6.1f} over bare)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
