"""Servers with fixed performance behaviour for the performance probe (run as a child process).

`--mode blocking`: `GET /work` calls time.sleep(0.02) inside `async def` (serialises the loop);
`--mode healthy`: the same 20 ms with asyncio.sleep; `--mode slow`: asyncio.sleep(0.4);
`--mode flaky`: 503 whenever another request is in flight (errors only under concurrency);
`--mode cpu`: 15 ms of pure-Python work inside `async def`; `--mode delay --delay-ms N`:
asyncio.sleep(N ms); `--mode pool3`: a pool of three "connections" held 80 ms each (slow only
under concurrency). `GET /` is always fast.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

inflight = {"n": 0}


def build(mode: str, delay_ms: float = 0.0) -> Starlette:
    pool = asyncio.Semaphore(3)

    async def work(request: Request) -> Response:
        inflight["n"] += 1
        try:
            if mode == "blocking":
                time.sleep(0.02)  # the defect: blocks the event loop
            elif mode == "healthy":
                await asyncio.sleep(0.02)
            elif mode == "slow":
                await asyncio.sleep(0.4)
            elif mode == "flaky":
                busy = inflight["n"] > 1
                await asyncio.sleep(0.005)
                if busy:
                    return JSONResponse({"error": "busy"}, 503)
            elif mode == "pool3":
                async with pool:
                    await asyncio.sleep(0.08)
            elif mode == "delay":
                await asyncio.sleep(delay_ms / 1000)
            elif mode == "cpu":
                end = time.process_time() + 0.015
                while time.process_time() < end:
                    pass
            return JSONResponse({"ok": True})
        finally:
            inflight["n"] -= 1

    async def root(request: Request) -> Response:
        return JSONResponse({"service": mode})

    return Starlette(routes=[Route("/", root), Route("/work", work)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    uvicorn.run(
        build(args.mode, args.delay_ms),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
