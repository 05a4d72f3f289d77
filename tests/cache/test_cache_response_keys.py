"""Response cache keys: what must keep one caller's response from another (credentials other
than Authorization/Cookie, Host and forwarded origin, Vary under a stampede, HEAD, GET bodies)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from readykit import ReadyKit, Settings
from readykit.testing import asgi_request
from support import settle

pytestmark = pytest.mark.anyio

KEYS = {"alice-key": "alice", "bob-key": "bob"}


class State:
    def __init__(self) -> None:
        self.calls = 0
        self.kit: ReadyKit | None = None
        self.gate = asyncio.Event()
        self.gate.set()


def build(**settings: Any) -> tuple[Any, State]:
    state = State()

    async def account(request: Request) -> Response:
        state.calls += 1
        key = request.headers.get("x-api-key") or request.headers.get("x-badge")
        user = KEYS.get(key or "")
        if user is None:
            return JSONResponse({"detail": "unauthorized"}, status_code=401)
        return JSONResponse({"user": user})

    async def public(request: Request) -> Response:
        state.calls += 1
        return JSONResponse({"call": state.calls})

    async def links(request: Request) -> Response:
        state.calls += 1
        return JSONResponse({"reset": str(request.base_url) + "reset-password"})

    async def tenant(request: Request) -> Response:
        state.calls += 1
        await state.gate.wait()
        name = request.headers.get("x-tenant", "")
        return JSONResponse({"tenant": name}, headers={"Vary": "X-Tenant"})

    async def report(request: Request) -> Response:
        state.calls += 1
        body = b"quarterly report"
        if request.method == "HEAD":  # like FileResponse: headers only
            return Response(b"", headers={"content-length": str(len(body))})
        return Response(body)

    async def search(request: Request) -> Response:
        state.calls += 1
        return JSONResponse({"q": json.loads(await request.body() or b"{}")})

    routes = [
        Route("/account", account),
        Route("/public", public),
        Route("/links", links),
        Route("/tenant", tenant),
        Route("/report", report, methods=["GET", "HEAD"]),
        Route("/search", search),
    ]
    paths = ("/account", "/public", "/links", "/tenant", "/report", "/search")
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            access_log=False,
            cache_routes={f"GET {p}": 60 for p in paths},
            **settings,
        )
    )
    state.kit = kit
    return kit.wrap(Starlette(routes=routes)), state


async def test_an_api_key_response_is_never_served_to_anyone_else() -> None:
    app, _ = build()
    alice = await asgi_request(app, "GET", "/account", headers=[("X-API-Key", "alice-key")])
    assert alice.json() == {"user": "alice"}
    assert alice.header("cache-control") == "private, max-age=60"
    anon = await asgi_request(app, "GET", "/account")
    bob = await asgi_request(app, "GET", "/account", headers=[("X-API-Key", "bob-key")])
    assert anon.status == 401
    assert bob.json() == {"user": "bob"}
    again = await asgi_request(app, "GET", "/account", headers=[("X-API-Key", "alice-key")])
    assert (again.json(), again.header("x-cache")) == ({"user": "alice"}, "HIT")


@pytest.mark.parametrize("header", ["X-Auth-Token", "Api-Key", "X-Access-Token"])
async def test_every_credential_like_header_keys_the_entry(header: str) -> None:
    app, state = build()
    await asgi_request(app, "GET", "/public", headers=[(header, "one")])
    other = await asgi_request(app, "GET", "/public", headers=[(header, "two")])
    anon = await asgi_request(app, "GET", "/public")
    assert (other.header("x-cache"), anon.header("x-cache"), state.calls) == ("MISS", "MISS", 3)


async def test_every_line_of_a_credential_header_keys_the_entry() -> None:
    app, state = build()
    alice = [("Cookie", "consent=yes"), ("Cookie", "sessionid=alice")]
    bob = [("Cookie", "consent=yes"), ("Cookie", "sessionid=bob")]
    await asgi_request(app, "GET", "/public", headers=alice)
    other = await asgi_request(app, "GET", "/public", headers=bob)
    assert (other.header("x-cache"), state.calls) == ("MISS", 2)


async def test_a_header_made_sensitive_by_redact_keys_is_a_credential() -> None:
    app, _ = build(redact_keys=["badge"])
    alice = await asgi_request(app, "GET", "/account", headers=[("X-Badge", "alice-key")])
    assert alice.json() == {"user": "alice"}
    anon = await asgi_request(app, "GET", "/account")
    assert anon.status == 401


@pytest.mark.parametrize(
    "header", ["Host", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Forwarded-Prefix"]
)
async def test_host_and_forwarded_origin_are_part_of_the_key(header: str) -> None:
    app, state = build()
    base = [("Host", "shop.example")]
    evil = [*base, (header, "evil.example")] if header != "Host" else [(header, "evil.example")]
    await asgi_request(app, "GET", "/links", headers=evil)
    victim = await asgi_request(app, "GET", "/links", headers=base)
    assert victim.header("x-cache") == "MISS"
    assert victim.json() == {"reset": "http://shop.example/reset-password"}
    assert state.calls == 2
    again = await asgi_request(app, "GET", "/links", headers=base)
    assert again.header("x-cache") == "HIT"


async def test_the_scheme_is_part_of_the_key() -> None:
    app, state = build()
    await asgi_request(app, "GET", "/links", headers=[("Host", "shop.example")], scheme="http")
    tls = await asgi_request(
        app, "GET", "/links", headers=[("Host", "shop.example")], scheme="https"
    )
    assert tls.json() == {"reset": "https://shop.example/reset-password"}
    assert state.calls == 2


async def test_a_stampede_waiter_gets_only_the_variant_of_its_own_headers() -> None:
    app, state = build()
    state.gate.clear()
    acme = asyncio.create_task(asgi_request(app, "GET", "/tenant", headers=[("X-Tenant", "acme")]))
    globex = [
        asyncio.create_task(asgi_request(app, "GET", "/tenant", headers=[("X-Tenant", "globex")]))
        for _ in range(2)
    ]
    same = asyncio.create_task(asgi_request(app, "GET", "/tenant", headers=[("X-Tenant", "acme")]))
    await settle()  # all four wait on the one computation, which waits at the gate
    assert state.calls == 1
    state.gate.set()
    first, *others, shared = await asyncio.gather(acme, *globex, same)
    assert first.json() == {"tenant": "acme"}
    assert [r.json() for r in others] == [{"tenant": "globex"}] * 2
    assert (shared.json(), shared.header("x-cache")) == ({"tenant": "acme"}, "HIT")


async def test_a_head_response_never_becomes_the_get_entry() -> None:
    app, state = build()
    head = await asgi_request(app, "HEAD", "/report")
    assert (head.status, head.body) == (200, b"")
    get = await asgi_request(app, "GET", "/report")
    assert (get.body, get.header("x-cache")) == (b"quarterly report", "MISS")
    head = await asgi_request(app, "HEAD", "/report")  # answered from the GET entry
    assert (head.body, head.header("x-cache"), head.header("content-length")) == (b"", "HIT", "16")
    assert state.calls == 2


@pytest.mark.parametrize(
    "framing", [[("Content-Length", "16")], [("Transfer-Encoding", "chunked")]]
)
async def test_a_get_with_a_body_skips_the_cache(framing: list[tuple[str, str]]) -> None:
    app, state = build()
    await asgi_request(app, "GET", "/search")  # an entry a body must not be answered from
    alice = await asgi_request(app, "GET", "/search", body=b'{"user":"alice"}', headers=framing)
    bob = await asgi_request(app, "GET", "/search", body=b'{"user":"bob"}', headers=framing)
    assert (alice.json(), bob.json()) == ({"q": {"user": "alice"}}, {"q": {"user": "bob"}})
    assert (alice.header("x-cache"), bob.header("x-cache"), state.calls) == (None, None, 3)
    plain = await asgi_request(app, "GET", "/search")
    assert plain.header("x-cache") == "HIT"


def build_raw(headers: list[tuple[bytes, bytes]], *, gzip: bool = False) -> tuple[Any, State]:
    """A route answering the same body with these raw header lines (repeats kept)."""
    from starlette.middleware import Middleware
    from starlette.middleware.gzip import GZipMiddleware

    state = State()

    async def page(request: Request) -> Response:
        state.calls += 1
        tenant = request.headers.get("x-tenant", "")
        response = Response(json.dumps({"tenant": tenant, "pad": "x" * 600}))
        response.raw_headers.extend(headers)
        return response

    middleware = [Middleware(GZipMiddleware)] if gzip else []
    kit = ReadyKit(
        Settings(configure_logging=False, access_log=False, cache_routes={"GET /page": 60})
    )
    return kit.wrap(Starlette(routes=[Route("/page", page)], middleware=middleware)), state


async def test_vary_star_behind_gzip_middleware_is_never_stored() -> None:
    """Starlette's GZipMiddleware turns the app's `Vary: *` into `Vary: *, Accept-Encoding`."""
    app, state = build_raw([(b"vary", b"*")], gzip=True)
    gzip = [("Accept-Encoding", "gzip")]
    first = await asgi_request(app, "GET", "/page", headers=gzip)
    assert first.header("content-encoding") == "gzip"
    assert "*" in first.header("vary").split(", ")  # what the cache saw
    second = await asgi_request(app, "GET", "/page", headers=gzip)
    assert (second.header("x-cache"), state.calls) == (None, 2)


async def test_a_private_on_a_second_cache_control_line_is_not_shared() -> None:
    app, state = build_raw([(b"Cache-Control", b"max-age=60"), (b"Cache-Control", b"private")])
    await asgi_request(app, "GET", "/page")
    second = await asgi_request(app, "GET", "/page")
    assert (second.header("x-cache"), state.calls) == (None, 2)


async def test_every_vary_line_keys_the_entry() -> None:
    app, state = build_raw([(b"Vary", b"Accept-Language"), (b"vary", b"X-Tenant")])
    english = [("Accept-Language", "en")]
    await asgi_request(app, "GET", "/page", headers=[*english, ("X-Tenant", "acme")])
    globex = await asgi_request(app, "GET", "/page", headers=[*english, ("X-Tenant", "globex")])
    assert json.loads(globex.body)["tenant"] == "globex"
    assert (globex.header("x-cache"), state.calls) == ("MISS", 2)
    again = await asgi_request(app, "GET", "/page", headers=[*english, ("X-Tenant", "globex")])
    assert (again.header("x-cache"), json.loads(again.body)["tenant"]) == ("HIT", "globex")


async def test_the_names_of_the_vary_headers_key_the_entry_not_only_their_values() -> None:
    """Another path of the route varying on another header must not let `Accept-Language:
    acme` find the entry stored for `X-Tenant: acme`."""
    state = State()

    async def page(request: Request) -> Response:
        state.calls += 1
        if request.path_params["name"] == "report":
            tenant = request.headers.get("x-tenant", "")
            return Response(f"report of {tenant}", headers={"Vary": "X-Tenant"})
        return Response("localized", headers={"Vary": "Accept-Language"})

    kit = ReadyKit(
        Settings(configure_logging=False, access_log=False, cache_routes={"GET /p/{name}": 60})
    )
    app = kit.wrap(Starlette(routes=[Route("/p/{name}", page)]))
    await asgi_request(app, "GET", "/p/report", headers=[("X-Tenant", "acme")])
    await asgi_request(app, "GET", "/p/other", headers=[("Accept-Language", "en")])
    probe = [("X-Tenant", "evil"), ("Accept-Language", "acme")]
    evil = await asgi_request(app, "GET", "/p/report", headers=probe)
    assert evil.body == b"report of evil"
    again = await asgi_request(app, "GET", "/p/report", headers=[("X-Tenant", "acme")])
    assert again.body == b"report of acme"


async def test_two_services_on_one_redis_never_answer_each_others_routes(redis_url: str) -> None:
    """Instances of one service share entries in Redis; another service behind the same host
    name (a path-prefix ingress that strips its prefix) has its own."""
    orders, orders_state = build(cache_url=redis_url, service_name="orders")
    orders_too, too_state = build(cache_url=redis_url, service_name="orders")
    users, users_state = build(cache_url=redis_url, service_name="users")
    headers = [("Host", "api.example")]
    try:
        await asgi_request(orders, "GET", "/public", headers=headers)
        shared = await asgi_request(orders_too, "GET", "/public", headers=headers)
        assert shared.header("x-cache") == "HIT"
        other = await asgi_request(users, "GET", "/public", headers=headers)
        assert (other.header("x-cache"), orders_state.calls, users_state.calls) == ("MISS", 1, 1)
    finally:
        for state in (orders_state, too_state, users_state):
            assert state.kit is not None
            await state.kit.cache.backend.aclose()


async def test_instances_behind_one_host_share_entries() -> None:
    """Two instances (their own listening addresses) behind one name share a Redis entry: the
    key holds the `Host`, not the address the server listens on."""
    app, state = build()
    headers = [("Host", "api.example")]
    await asgi_request(app, "GET", "/public", headers=headers, server=("10.0.0.2", 8000))
    other = await asgi_request(app, "GET", "/public", headers=headers, server=("10.0.0.3", 8000))
    assert (other.header("x-cache"), state.calls) == ("HIT", 1)
    # without a Host the address is what links are built from: its own entry
    await asgi_request(app, "GET", "/links", headers=[], server=("10.0.0.2", 8000))
    bare = await asgi_request(app, "GET", "/links", headers=[], server=("10.0.0.3", 8000))
    assert bare.json() == {"reset": "http://10.0.0.3:8000/reset-password"}
