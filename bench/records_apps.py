"""The app the records bench serves: every POST answered 201 (and audited when asked)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from readykit import ReadyKit, Settings
from readykit._types import ASGIApp


async def create(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True}, status_code=201)


def records_app() -> ASGIApp:
    """The minimal kit plus records; READYKIT_AUDIT_MUTATIONS switches auto-audit."""
    settings = Settings(
        service_name="bench", configure_logging=False, access_log=False, metrics=False,
        security_headers=False, max_body_bytes=None, request_timeout_s=None,
    )  # fmt: skip
    return ReadyKit(settings).wrap(Starlette(routes=[Route("/quotes", create, methods=["POST"])]))
