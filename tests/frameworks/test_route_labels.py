"""Route labels on every supported framework: docs routes, mounts, static files, refused
requests, and a hook for any other ASGI app. Cardinality stays bounded by the route table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from litestar import Litestar, get
from litestar.params import FromPath
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from readykit import ReadyKit, Settings
from readykit._types import Receive, Scope, Send
from readykit.record import ROUTE_UNMATCHED
from readykit.testing import RecordCollector, asgi_request, lifespan

pytestmark = pytest.mark.anyio
LIMITED = {"GET /items/{item_id}": "1/minute"}


def kit_for(**extra: Any) -> tuple[ReadyKit, RecordCollector]:
    settings = Settings(
        records=False, configure_logging=False, access_log=False, rate_limits=LIMITED
    )
    kit = ReadyKit(settings, **extra)
    collector = RecordCollector()
    kit.add_recorder(collector)
    return kit, collector


async def labels(app: Any, collector: RecordCollector, paths: list[str]) -> list[tuple[int, str]]:
    out = []
    for path in paths:
        response = await asgi_request(app, "GET", path)
        out.append((response.status, collector.records[-1].route))
    return out


async def test_fastapi_docs_mounts_static_files_and_refusals(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hi")
    api = FastAPI()

    @api.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    sub = FastAPI()

    @sub.get("/orders/{order_id}")
    async def order(order_id: str) -> dict[str, str]:
        return {"id": order_id}

    async def deep(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x")

    api.mount("/static", StaticFiles(directory=tmp_path), name="static")
    api.mount("/shop", sub)
    api.mount("/v1", Starlette(routes=[Mount("/inner", routes=[Route("/z/{q}", deep)])]))
    kit, collector = kit_for()
    app = kit.wrap(api)
    got = await labels(
        app,
        collector,
        ["/docs", "/openapi.json", "/static/a.txt", "/shop/orders/9", "/v1/inner/z/5",
         "/items/1", "/items/2", "/nope/1"],
    )  # fmt: skip
    assert got == [
        (200, "/docs"),
        (200, "/openapi.json"),
        (200, "/static/{path}"),
        (200, "/shop/orders/{order_id}"),
        (200, "/v1/inner/z/{q}"),
        (200, "/items/{item_id}"),
        (429, "/items/{item_id}"),  # refused before the app ran: still its route
        (404, ROUTE_UNMATCHED),
    ]


async def test_starlette_refused_and_method_not_allowed_keep_the_route() -> None:
    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x")

    kit, collector = kit_for()
    app = kit.wrap(Starlette(routes=[Route("/items/{item_id}", item)]))
    assert await labels(app, collector, ["/items/1", "/items/2"]) == [
        (200, "/items/{item_id}"),
        (429, "/items/{item_id}"),
    ]
    response = await asgi_request(app, "DELETE", "/items/3")
    assert (response.status, collector.records[-1].route) == (405, "/items/{item_id}")


async def test_a_mount_with_a_path_parameter_is_labelled_by_its_template() -> None:
    """Under `Mount("/users/{uid}")` the scope's prefix is the path as sent: one label per user
    id, which any client could multiply until the route table's cap pushed real routes out."""

    async def profile(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["uid"])

    kit, collector = kit_for()
    users = Mount("/users/{uid}", routes=[Route("/profile", profile)])
    docs = Mount("/docs", routes=[Route("/{page}", lambda request: PlainTextResponse("doc"))])
    app = kit.wrap(Starlette(routes=[users, docs]))
    got = await labels(app, collector, ["/users/1/profile", "/users/x-2/profile", "/docs/a"])
    assert got == [(200, "/users/{uid}/profile")] * 2 + [(200, "/docs/{page}")]


async def test_litestar_refused_requests_keep_the_route() -> None:
    @get("/items/{item_id:int}")
    async def item(item_id: FromPath[int]) -> dict[str, int]:
        return {"id": item_id}

    kit, collector = kit_for()
    app = kit.wrap(Litestar([item]))
    assert await labels(app, collector, ["/items/1", "/items/2", "/nope"]) == [
        (200, "/items/{item_id}"),
        (429, "/items/{item_id}"),
        (404, ROUTE_UNMATCHED),
    ]


async def test_route_template_hook_names_routes_of_any_asgi_app() -> None:
    async def plain(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def template(scope: Scope) -> str | None:
        parts = scope["path"].split("/")
        return "/items/{item_id}" if len(parts) == 3 and parts[1] == "items" else None

    kit, collector = kit_for(route_template=template)
    app = kit.wrap(plain)
    assert await labels(app, collector, ["/items/1", "/items/2", "/other/x"]) == [
        (200, "/items/{item_id}"),
        (429, "/items/{item_id}"),
        (200, ROUTE_UNMATCHED),
    ]


async def test_a_failing_hook_falls_back_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x")

    def broken(scope: Scope) -> str | None:
        raise KeyError("oops")

    kit, collector = kit_for(route_template=broken)
    app = kit.wrap(Starlette(routes=[Route("/items/{item_id}", item)]))
    assert await labels(app, collector, ["/items/1"]) == [(200, "/items/{item_id}")]
    assert "route_template hook failed" in caplog.text


@pytest.mark.parametrize(
    ("path", "fix"),
    [("/health", "READYKIT_HEALTH_PREFIX"), ("/metrics", "READYKIT_METRICS_PATH")],
)
async def test_an_app_route_the_kit_would_hide_stops_startup(path: str, fix: str) -> None:
    async def own(request: Request) -> PlainTextResponse:
        return PlainTextResponse("the app's")

    kit, _ = kit_for()
    app = kit.wrap(Starlette(routes=[Route(path, own)]))
    with pytest.raises(RuntimeError) as failed:
        async with lifespan(app):
            pass
    message = str(failed.value)
    assert message.startswith(f"the app's own route GET {path} would be hidden by readykit's")
    assert fix in message
    moved, _ = kit_for()
    catch_all = Starlette(routes=[Route("/{anything:path}", own)])  # an SPA: no collision
    async with lifespan(moved.wrap(catch_all)):
        pass


async def test_audit_actions_use_the_kits_route_names(tmp_path: Path) -> None:
    """The audit guard names routes with the same resolver as metrics: a plain ASGI app's
    hook, refused requests included."""

    async def plain(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def template(scope: Scope) -> str | None:
        return "/orders/{order_id}" if scope["path"].startswith("/orders/") else None

    settings = Settings(
        configure_logging=False,
        store_url=f"sqlite:///{tmp_path}/r.db",
        rate_limits={"POST /orders/{order_id}": "1/minute"},
    )
    kit = ReadyKit(settings, route_template=template)
    app = kit.wrap(plain)
    async with lifespan(app):
        statuses = [(await asgi_request(app, "POST", f"/orders/{i}")).status for i in (1, 2)]
        assert kit.records is not None
        await kit.records.writer.flush()
        events = await kit.records.store.audit()
    assert statuses == [201, 429]
    assert sorted((e["action"], e["status"]) for e in events) == [
        ("POST /orders/{order_id}", 201),
        ("POST /orders/{order_id}", 429),
    ]


@pytest.mark.parametrize(
    "settings", [{"metrics_path": "/health/ready"}, {"health_prefix": "/metrics"}]
)
async def test_two_of_the_kits_endpoints_at_one_path_stop_startup(settings: dict[str, str]) -> None:
    """Metrics at the readiness path answered every readiness probe with 401: refused."""
    kit = ReadyKit(Settings(configure_logging=False, **settings))  # type: ignore[arg-type]
    app = kit.wrap(Starlette(routes=[]))
    with pytest.raises(RuntimeError) as failed:
        async with lifespan(app):
            pass
    assert str(failed.value).startswith("readykit would serve two of its endpoints at ")
    assert "READYKIT_METRICS_PATH" in str(failed.value)
