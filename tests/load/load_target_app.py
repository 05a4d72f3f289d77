"""A loopback server with known behaviour for the load tests (run as a child process).

Routes: `/` fast; `/delay?ms=N` async sleep (healthy); `/stall?at=K&ms=N` blocks the whole
server once, on the K-th request (used by `bench/load_accuracy.py`); `POST /login` + `GET /me`
for scenario captures. Tests that need exact timings use `virtual_time.py` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aiohttp import web

state = {"count": 0, "stalled": False}


async def root(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def delay(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("ms", "50")) / 1000)
    return web.Response(text="ok")


async def stall(request: web.Request) -> web.Response:
    state["count"] += 1
    if not state["stalled"] and state["count"] >= int(request.query.get("at", "100")):
        state["stalled"] = True
        time.sleep(float(request.query.get("ms", "1000")) / 1000)
    return web.Response(text="ok")


async def login(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response({"token": f"tok-{body.get('user', '')}"})


async def me(request: web.Request) -> web.Response:
    if request.headers.get("Authorization", "") != "Bearer tok-ann":
        return web.json_response({"error": "no"}, status=401)
    return web.json_response({"user": "ann"})


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/", root)
    app.router.add_get("/delay", delay)
    app.router.add_get("/stall", stall)
    app.router.add_post("/login", login)
    app.router.add_get("/me", me)
    app.router.add_get("/redirect", redirect)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
