"""Discovery: OpenAPI with examples, a bounded same-origin crawl, `--endpoint`; with sources."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from readykit.check.client import Client
from readykit.check.crawl import MAX_PAGES, shape
from readykit.check.discovery import (
    COMMON_PATHS,
    Endpoint,
    Target,
    discover,
    endpoints_from_openapi,
    parse_endpoint,
)

INDEX = """<!doctype html><html><head><link rel="stylesheet" href="/static/site.css"></head>
<body>
<a href="/items">Items</a> <a href="/items/1">One</a> <a href="/items/2">Two</a>
<a href="/search?q=tea&page=2">Search</a> <a href="https://elsewhere.example/x">away</a>
<a href="/items/1/delete">Delete</a> <a href="/logout">Log out</a> <a href="#top">top</a>
<form method="post" action="/contact"><input name="email"><textarea name="msg"></textarea></form>
</body></html>"""


def site(visits: list[str]) -> Starlette:
    async def page(request: Request) -> Response:
        visits.append(request.url.path)
        path = request.url.path
        if path == "/":
            return HTMLResponse(INDEX)
        if path == "/robots.txt":
            return PlainTextResponse("User-agent: *\nDisallow: /private/\nSitemap: /map.xml\n")
        if path == "/map.xml":
            base = str(request.base_url).rstrip("/")
            return Response(
                f"<urlset><url><loc>{base}/about</loc></url>"
                "<url><loc>http://127.0.0.1:1/elsewhere</loc></url></urlset>",
                media_type="application/xml",
            )
        if path in ("/items", "/items/1", "/items/2", "/search", "/about", "/private/"):
            return HTMLResponse(f"<p>{path}</p>")
        if path == "/contact" and request.method == "POST":
            return PlainTextResponse("thanks")
        return PlainTextResponse("not found", 404)

    return Starlette(
        routes=[Route("/{path:path}", page, methods=["GET", "POST"])],
    )


def discovered(url: str, extra: tuple[Endpoint, ...] = ()) -> Target:
    async def go() -> Target:
        async with Client(url) as client:
            return await discover(client.budget(60, 15), None, extra)

    return asyncio.run(go())


def test_crawl_finds_links_forms_robots_and_sitemap_with_their_sources(serve_app) -> None:
    visits: list[str] = []
    target = discovered(serve_app(site(visits)))
    found = {f"{e.method} {e.path}": e.source for e in target.endpoints}
    assert target.source == "crawl"
    assert found["GET /"] == "crawl (/)"
    assert found["GET /items"] == "crawl (link)"
    assert found["POST /contact"] == "crawl (form)"
    assert found["GET /private/"] == "robots.txt"
    assert found["GET /about"] == "sitemap.xml"
    search = next(e for e in target.endpoints if e.path == "/search")
    assert {p.name for p in search.params} == {"q", "page"}
    # one endpoint per shape; never another origin, an asset or a destructive link
    assert sum(1 for k in found if k.startswith("GET /items/")) == 1
    assert not any(
        "delete" in v or "logout" in v or "static" in v or "elsewhere" in v for v in visits
    )
    # pages + robots + 2 sitemaps + the unknown path + 4 OpenAPI paths + the common paths
    assert len(visits) <= MAX_PAGES + 3 + 5 + len(COMMON_PATHS)


def test_crawl_of_a_catch_all_spa_finds_only_the_page_itself(serve_app) -> None:
    async def spa(scope: Any, receive: Any, send: Any) -> None:
        body = '<div id="app"></div><a href="/dashboard">Dashboard</a><a href="/settings">S</a>'
        await HTMLResponse(body)(scope, receive, send)

    target = discovered(serve_app(spa))
    assert target.catch_all
    assert [e.path for e in target.endpoints if e.source.startswith("crawl")] == []


def test_endpoint_option_is_added_with_its_source(serve_app) -> None:
    extra = (parse_endpoint("GET /items/{id}"),)
    target = discovered(serve_app(site([])), extra)
    added = next(e for e in target.endpoints if e.path == "/items/{id}")
    assert added.source == "--endpoint"
    assert added.concrete() == "/items/readykit-check"


@pytest.mark.parametrize("bad", ["/items", "DELETE /items", "GET items", "GET //evil.example/"])
def test_bad_endpoint_option(bad: str) -> None:
    with pytest.raises(ValueError, match=r"METHOD|path|single"):
        parse_endpoint(bad)


def test_openapi_path_parameters_are_filled_from_examples_and_enums() -> None:
    doc = {
        "paths": {
            "/rates/{code}": {
                "get": {
                    "parameters": [
                        {"name": "code", "in": "path", "schema": {"enum": ["EUR", "USD"]}}
                    ]
                }
            },
            "/items/{id}": {
                "get": {
                    "parameters": [
                        {"name": "id", "in": "path", "example": 42, "schema": {"type": "integer"}}
                    ]
                }
            },
        }
    }
    found = {e.path: e for e in endpoints_from_openapi(doc)}
    assert found["/rates/{code}"].concrete() == "/rates/EUR"
    assert found["/items/{id}"].concrete() == "/items/42"
    assert found["/items/{id}"].concrete(bad=True) == "/items/not-a-number"
    assert all(e.source == "openapi" for e in found.values())


def test_shapes() -> None:
    assert shape("/items/42/notes") == shape("/items/7/notes") == "/items/{n}/notes"
    assert shape("/about") == "/about"
