"""A kit-wrapped app configured from READYKIT_* variables; served by real server processes."""

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from readykit import ReadyKit


async def pid(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(os.getpid()))


app = ReadyKit().wrap(Starlette(routes=[Route("/pid", pid)]))
