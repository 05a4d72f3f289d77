"""A real server for the performance probe's real-time path (run as a child process).

`GET /work` awaits `asyncio.sleep(--delay-ms)`; `GET /` answers at once. Verdicts on timings are
tested on virtual time (`virtual_time.py`); this server only shows the real path works.
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def build(delay_ms: float) -> Starlette:
    async def work(request: Request) -> Response:
        await asyncio.sleep(delay_ms / 1000)
        return JSONResponse({"ok": True})

    async def root(request: Request) -> Response:
        return JSONResponse({"service": "perf-target"})

    return Starlette(routes=[Route("/", root), Route("/work", work)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    uvicorn.run(
        build(args.delay_ms),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
