"""A kit-wrapped app with a login route, configured from READYKIT_* variables; run behind nginx."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from readykit import ReadyKit

kit = ReadyKit()
kit.add_check("database", lambda: True)


async def login(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def whoami(request: Request) -> PlainTextResponse:
    return PlainTextResponse(kit.proxies.client(request.scope) or "")


app = kit.wrap(
    Starlette(routes=[Route("/login", login, methods=["POST"]), Route("/whoami", whoami)])
)
