"""Response caching: hits, per-principal keys, Vary, ETag/304, what is never stored."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from readykit import ReadyKit, Settings
from readykit._types import Scope
from readykit.testing import asgi_request
from support import settle

pytestmark = pytest.mark.anyio


CACHED = ("GET /rates", "GET /me", "GET /cookie", "GET /nostore", "GET /missing", "GET /big")


class Counter:
    def __init__(self) -> None:
        self.n = 0


def build(**settings: Any) -> tuple[ReadyKit, Any, Counter]:
    calls = Counter()
    gate = asyncio.Event()
    gate.set()

    async def rates(request: Request) -> JSONResponse:
        calls.n += 1
        await gate.wait()
        lang = request.headers.get("accept-language", "")
        return JSONResponse(
            {"call": calls.n, "q": request.url.query, "lang": lang},
            headers={"Vary": "Accept-Language"},
        )

    async def me(request: Request) -> JSONResponse:
        calls.n += 1
        return JSONResponse({"user": request.headers.get("x-user"), "call": calls.n})

    async def cookie(request: Request) -> Response:
        calls.n += 1
        response = PlainTextResponse("x")
        response.set_cookie("s", "1")
        return response

    async def nostore(request: Request) -> Response:
        calls.n += 1
        return PlainTextResponse("x", headers={"Cache-Control": "no-store"})

    async def missing(request: Request) -> Response:
        calls.n += 1
        return PlainTextResponse("no", status_code=404)

    async def big(request: Request) -> StreamingResponse:
        calls.n += 1

        async def chunks() -> Any:
            for _ in range(4):
                yield b"x" * 600_000

        return StreamingResponse(chunks())

    routes = [
        Route("/rates", rates, methods=["GET", "POST"]),
        Route("/me", me),
        Route("/cookie", cookie),
        Route("/nostore", nostore),
        Route("/missing", missing),
        Route("/big", big),
    ]

    def principal(scope: Scope) -> str | None:
        user = dict(scope["headers"]).get(b"x-user")
        return user.decode() if user else None

    kit = ReadyKit(
        Settings(
            configure_logging=False,
            access_log=False,
            cache_routes={
                p: 60
                for p in (
                    "GET /rates",
                    "GET /me",
                    "GET /cookie",
                    "GET /nostore",
                    "GET /missing",
                    "GET /big",
                )
            },
            cache_route_tags={"GET /rates": ["rates"]},
            **settings,
        ),
        principal=principal,
    )
    app = kit.wrap(Starlette(routes=routes))
    app.gate = gate  # type: ignore[attr-defined]
    return kit, app, calls


async def test_second_get_is_a_hit_with_etag_and_cache_control() -> None:
    _, app, calls = build()
    first = await asgi_request(app, "GET", "/rates")
    second = await asgi_request(app, "GET", "/rates")
    assert calls.n == 1
    assert (first.header("x-cache"), second.header("x-cache")) == ("MISS", "HIT")
    assert first.body == second.body
    assert second.header("etag") == first.header("etag")
    assert second.header("cache-control") == "public, max-age=60"
    assert second.header("x-content-type-options") == "nosniff"  # guards still dress hits
    head = await asgi_request(app, "HEAD", "/rates")
    assert (head.status, head.body, calls.n) == (200, b"", 1)


async def test_if_none_match_gives_304() -> None:
    _, app, _ = build()
    etag = (await asgi_request(app, "GET", "/rates")).header("etag")
    assert etag is not None
    r = await asgi_request(app, "GET", "/rates", headers=[("If-None-Match", etag)])
    assert (r.status, r.body) == (304, b"")
    r = await asgi_request(app, "GET", "/rates", headers=[("If-None-Match", '"other"')])
    assert r.status == 200


async def test_query_vary_and_principal_are_part_of_the_key() -> None:
    _, app, calls = build()
    await asgi_request(app, "GET", "/rates", query_string=b"code=USD")
    await asgi_request(app, "GET", "/rates", query_string=b"code=EUR")
    assert calls.n == 2
    en = await asgi_request(app, "GET", "/rates", headers=[("Accept-Language", "en")])
    ru = await asgi_request(app, "GET", "/rates", headers=[("Accept-Language", "ru")])
    assert en.json()["lang"] == "en"
    assert ru.json()["lang"] == "ru"
    alice = await asgi_request(app, "GET", "/me", headers=[("X-User", "alice")])
    bob = await asgi_request(app, "GET", "/me", headers=[("X-User", "bob")])
    anon = await asgi_request(app, "GET", "/me")
    assert (alice.json()["user"], bob.json()["user"], anon.json()["user"]) == ("alice", "bob", None)
    again = await asgi_request(app, "GET", "/me", headers=[("X-User", "alice")])
    assert again.json() == alice.json()
    assert again.header("cache-control") == "private, max-age=60"


@pytest.mark.parametrize("path", ["/cookie", "/nostore", "/missing"])
async def test_never_stored(path: str) -> None:
    _, app, calls = build()
    for _ in range(2):
        r = await asgi_request(app, "GET", path)
        assert r.header("x-cache") is None
    assert calls.n == 2


async def test_post_and_no_cache_requests_skip_the_cache() -> None:
    _, app, calls = build()
    await asgi_request(app, "GET", "/rates")
    await asgi_request(app, "POST", "/rates")
    r = await asgi_request(app, "GET", "/rates", headers=[("Cache-Control", "no-cache")])
    assert r.header("x-cache") == "MISS"
    assert calls.n == 3


async def test_big_streamed_bodies_pass_through_uncached() -> None:
    _, app, calls = build()
    for _ in range(2):
        r = await asgi_request(app, "GET", "/big")
        assert len(r.body) == 2_400_000
    assert calls.n == 2


async def test_stampede_on_a_cold_response_computes_once() -> None:
    _, app, calls = build()
    app.gate.clear()
    tasks = [asyncio.create_task(asgi_request(app, "GET", "/rates")) for _ in range(20)]
    await settle()  # every request is inside the kit, the first one at the gate
    assert calls.n == 1
    app.gate.set()
    responses = await asyncio.gather(*tasks)
    assert calls.n == 1
    assert len({r.body for r in responses}) == 1


async def test_invalidate_drops_tagged_responses() -> None:
    kit, app, calls = build()
    await asgi_request(app, "GET", "/rates")
    assert await kit.invalidate("rates") == 1
    r = await asgi_request(app, "GET", "/rates")
    assert r.header("x-cache") == "MISS"
    assert calls.n == 2


async def test_hits_are_recorded_under_their_route() -> None:
    from readykit.testing import RecordCollector

    kit, app, _ = build()
    records = RecordCollector()
    kit.add_recorder(records)
    await asgi_request(app, "GET", "/rates")
    await asgi_request(app, "GET", "/rates")
    assert [r.route for r in records.records] == ["/rates", "/rates"]
