"""A kit-wrapped app that tells which worker served it; served by real multi-worker servers."""

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from readykit import ReadyKit, Settings


async def pid(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(os.getpid()))


app = ReadyKit(Settings(service_name="workers")).wrap(Starlette(routes=[Route("/pid", pid)]))
