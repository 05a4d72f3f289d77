"""Security headers on every response (errors and ops endpoints included), per-route overrides."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Route

from readykit import ReadyKit, Settings
from readykit.testing import Response, asgi_request

pytestmark = pytest.mark.anyio

API_CSP = "default-src 'none'; frame-ancestors 'none'"


async def data(request: Request) -> JSONResponse:
    return JSONResponse({"a": 1})


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse("<h1>hi</h1>")


async def own(request: Request) -> PlainTextResponse:
    return PlainTextResponse(
        "x", headers={"X-Frame-Options": "SAMEORIGIN", "Server": "gunicorn/21.2.0"}
    )


async def boom(request: Request) -> None:
    raise RuntimeError("boom")


def app(**settings: Any) -> Any:
    kit = ReadyKit(Settings(configure_logging=False, access_log=False, **settings))
    routes = [Route("/data", data), Route("/page", page), Route("/own", own), Route("/boom", boom)]
    return kit.wrap(Starlette(routes=routes))


def assert_base(r: Response) -> None:
    assert r.header("x-content-type-options") == "nosniff"
    assert r.header("referrer-policy") == "no-referrer"
    assert r.header("x-frame-options") == "DENY"
    assert r.header("cross-origin-opener-policy") == "same-origin"
    assert r.header("cross-origin-resource-policy") == "same-origin"


@pytest.mark.parametrize("path", ["/data", "/nowhere", "/boom", "/health/live", "/metrics"])
async def test_every_response_gets_them(path: str) -> None:
    r = await asgi_request(app(), "GET", path)
    assert_base(r)
    assert r.header("content-security-policy") == API_CSP
    assert r.header("strict-transport-security") is None  # plain http


async def test_html_gets_the_html_policy() -> None:
    r = await asgi_request(app(), "GET", "/page")
    assert "default-src 'self'" in (r.header("content-security-policy") or "")


async def test_app_headers_win_and_server_version_is_cut() -> None:
    r = await asgi_request(app(), "GET", "/own")
    assert r.header("x-frame-options") == "SAMEORIGIN"
    assert r.header("server") == "gunicorn"


async def test_hsts_on_https_and_from_a_trusted_proxy_only() -> None:
    direct = await asgi_request(app(), "GET", "/data", scheme="https")
    assert direct.header("strict-transport-security") == "max-age=63072000; includeSubDomains"
    proto = [("X-Forwarded-Proto", "https")]
    spoofed = await asgi_request(app(), "GET", "/data", headers=proto, client=("8.8.8.8", 1))
    assert spoofed.header("strict-transport-security") is None
    proxied = await asgi_request(
        app(trusted_proxies=["10.0.0.0/8"]), "GET", "/data", headers=proto, client=("10.0.0.2", 1)
    )
    assert proxied.header("strict-transport-security") is not None


async def test_per_route_overrides_and_switch_off() -> None:
    overrides = {"GET /page": {"X-Frame-Options": "", "Content-Security-Policy": "default-src *"}}
    r = await asgi_request(app(security_header_overrides=overrides), "GET", "/page")
    assert r.header("x-frame-options") is None
    assert r.header("content-security-policy") == "default-src *"
    r = await asgi_request(app(security_headers=False), "GET", "/data")
    assert r.header("x-content-type-options") is None


def test_inline_script_hashes_extend_script_src() -> None:
    from readykit.guards.headers import with_script_hashes

    body = (
        b"<p>x</p><script>alert(1)</script><script src='/a.js'></script>"
        b"<SCRIPT type=module>b()</SCRIPT >"
    )
    policy = with_script_hashes(b"default-src 'self'; script-src 'self'; object-src 'none'", body)
    # base64(sha256("alert(1)")) and of "b()", as browsers compute them
    assert policy == (
        b"default-src 'self'; script-src 'self' "
        b"'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=' "
        b"'sha256-cf242PFc/kb7xD0Qzhsmd9vvRkc+cWFmbi+k+YvtdKc='; object-src 'none'"
    )
    no_script_src = with_script_hashes(b"default-src 'self'", b"<script>alert(1)</script>")
    alert = b"'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"
    assert no_script_src == b"default-src 'self'; script-src 'self' " + alert
    assert with_script_hashes(b"default-src 'self'", b"<p>no scripts</p>") == b"default-src 'self'"


async def test_html_pages_get_their_scripts_hashed_and_streams_pass_through() -> None:
    from readykit.guards.headers import HASH_MAX_BYTES

    async def app(scope: Any, receive: Any, send: Any) -> None:
        chunks = (
            [b"<script>alert(1)</script>"]
            if scope["path"] == "/small"
            else [b"x" * HASH_MAX_BYTES, b"<script>alert(1)</script>"]
        )
        headers = [(b"Content-Type", b"text/html; charset=utf-8")]
        if scope["path"] == "/own":
            headers.append((b"Content-Security-Policy", b"default-src 'none'"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i, chunk in enumerate(chunks):
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1}
            )

    listed = ["GET /small", "GET /big", "GET /own"]  # hashed on the csp_hash_routes only
    kit = ReadyKit(Settings(records=False, configure_logging=False, csp_hash_routes=listed))
    wrapped = kit.wrap(app)
    small = await asgi_request(wrapped, "GET", "/small")
    assert "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='" in (
        small.header("content-security-policy") or ""
    )
    assert small.body == b"<script>alert(1)</script>"
    big = await asgi_request(wrapped, "GET", "/big")
    assert "sha256" not in (big.header("content-security-policy") or "")  # past the limit: as set
    assert len(big.body) == HASH_MAX_BYTES + len(b"<script>alert(1)</script>")
    own = await asgi_request(wrapped, "GET", "/own")
    assert own.header("content-security-policy") == "default-src 'none'"  # the app's wins
