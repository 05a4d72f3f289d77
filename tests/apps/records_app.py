"""A kit-wrapped app whose POSTs are audited; configured from READYKIT_* variables."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from readykit import ReadyKit


async def create(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True}, status_code=201)


app = ReadyKit().wrap(Starlette(routes=[Route("/quotes", create, methods=["POST"])]))
