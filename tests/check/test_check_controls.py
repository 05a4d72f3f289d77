"""Controls: healthy services that must get no blocker from the whole check.

A service without OpenAPI (found by crawling), a catch-all 200 SPA, and a service whose health
lives at a path of its own (Prometheus style).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from readykit.check.probe import ProbeOptions
from readykit.check.runner import CheckOptions, Report, check

FAST = ProbeOptions(load_users=(1, 4), load_step_s=0.4)
SAFE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Strict-Transport-Security": "max-age=63072000",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def run(url: str) -> Report:
    return asyncio.run(check(CheckOptions(url, probe=FAST, deadline_s=40)))


def blockers(report: Report) -> list[str]:
    return [f"{f.check}: {f.title}" for f in report.findings if f.severity == "blocker"]


def html_site() -> Starlette:
    async def page(request: Request) -> Response:
        links = '<a href="/about">About</a> <a href="/items?page=1">Items</a>'
        form = '<form method="post" action="/contact"><input name="email"></form>'
        return HTMLResponse(f"<h1>{request.url.path}</h1>{links}{form}", headers=SAFE_HEADERS)

    async def contact(request: Request) -> Response:
        await request.body()
        return PlainTextResponse("please send a form", 400, headers=SAFE_HEADERS)

    async def live(request: Request) -> Response:
        return JSONResponse({"status": "pass"}, headers=SAFE_HEADERS)

    return Starlette(
        routes=[
            Route("/", page),
            Route("/about", page),
            Route("/items", page),
            Route("/contact", contact, methods=["POST"]),
            Route("/healthz", live),
        ]
    )


def spa() -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = '<div id="root"></div><a href="/app/settings">Settings</a>'
        await HTMLResponse(body, headers=SAFE_HEADERS)(scope, receive, send)

    return app


def health_elsewhere() -> Starlette:
    async def ok(request: Request) -> Response:
        return PlainTextResponse("Service is Healthy.", headers=SAFE_HEADERS)

    async def api(request: Request) -> Response:
        return JSONResponse({"items": []}, headers=SAFE_HEADERS)

    return Starlette(routes=[Route("/-/healthy", ok), Route("/-/ready", ok), Route("/", api)])


@pytest.mark.parametrize("app", [html_site, spa, health_elsewhere])
def test_controls_get_no_blocker(serve_app, app: Any) -> None:
    report = run(serve_app(app()))
    assert blockers(report) == []
    assert report.verdict in ("ready", "warnings")
