"""CORS through the kit: listed origins only, never an arbitrary Origin with credentials."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from readykit import ConfigurationError, ReadyKit, Settings
from readykit.testing import asgi_request

pytestmark = pytest.mark.anyio

GOOD = "https://app.example.com"
EVIL = "https://evil.example.net"


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hi")


def app(**settings: Any) -> Any:
    kit = ReadyKit(Settings(configure_logging=False, access_log=False, **settings))
    return kit.wrap(Starlette(routes=[Route("/", hello, methods=["GET", "POST"])]))


async def test_listed_origin_with_credentials() -> None:
    a = app(cors_allow_origins=[GOOD], cors_allow_credentials=True)
    r = await asgi_request(a, "GET", "/", headers=[("Origin", GOOD)])
    assert r.header("access-control-allow-origin") == GOOD
    assert r.header("access-control-allow-credentials") == "true"
    assert r.header("vary") == "Origin"


async def test_arbitrary_origin_is_never_echoed() -> None:
    a = app(cors_allow_origins=[GOOD], cors_allow_credentials=True)
    r = await asgi_request(a, "GET", "/", headers=[("Origin", EVIL)])
    assert r.status == 200
    assert r.header("access-control-allow-origin") is None
    assert r.header("access-control-allow-credentials") is None
    pre = await asgi_request(
        a, "OPTIONS", "/", headers=[("Origin", EVIL), ("Access-Control-Request-Method", "POST")]
    )
    assert pre.status == 403
    assert pre.header("access-control-allow-origin") is None


async def test_wildcard_answers_star_without_credentials() -> None:
    r = await asgi_request(app(cors_allow_origins=["*"]), "GET", "/", headers=[("Origin", EVIL)])
    assert r.header("access-control-allow-origin") == "*"
    assert r.header("access-control-allow-credentials") is None


def test_wildcard_with_credentials_is_refused_when_the_settings_are_read() -> None:
    with pytest.raises(ConfigurationError, match=r"^READYKIT_CORS_ALLOW_ORIGINS: '\*' cannot be"):
        Settings(cors_allow_origins=["*"], cors_allow_credentials=True)


async def test_preflight() -> None:
    a = app(cors_allow_origins=[GOOD])
    ok = await asgi_request(
        a,
        "OPTIONS",
        "/",
        headers=[
            ("Origin", GOOD),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "Content-Type, X-Request-ID"),
        ],
    )
    assert ok.status == 204
    assert ok.header("access-control-allow-origin") == GOOD
    assert "POST" in (ok.header("access-control-allow-methods") or "")
    assert ok.header("access-control-max-age") == "600"
    bad_header = await asgi_request(
        a,
        "OPTIONS",
        "/",
        headers=[
            ("Origin", GOOD),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "X-Secret-Thing"),
        ],
    )
    assert bad_header.status == 403


async def test_no_cors_headers_unless_configured() -> None:
    r = await asgi_request(app(), "GET", "/", headers=[("Origin", GOOD)])
    assert r.header("access-control-allow-origin") is None
