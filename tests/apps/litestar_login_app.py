"""A kit-wrapped Litestar app with a limited login route (READYKIT_* variables configure it)."""

from litestar import Litestar, post

from readykit import ReadyKit


@post("/login", status_code=200)
async def login() -> str:
    return "ok"


app = ReadyKit().wrap(Litestar(route_handlers=[login]))
