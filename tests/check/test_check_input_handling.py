"""input-handling: malformed input must get a 4xx, never a 5xx or a stack trace."""

from __future__ import annotations

import json
import traceback

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from readykit.check.discovery import Endpoint, Param, Target
from readykit.check.probes import input_handling

OPENAPI = {
    "openapi": "3.1.0",
    "paths": {
        "/items": {
            "post": {"requestBody": {"content": {"application/json": {}}}},
            "get": {
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}]
            },
        },
        "/items/{item_id}": {
            "get": {
                "parameters": [{"name": "item_id", "in": "path", "schema": {"type": "integer"}}]
            },
            "delete": {},
        },
    },
}


def fragile() -> Starlette:
    """Trusts its input: json.loads and int() without a guard, tracebacks in the response."""

    async def create(request: Request) -> Response:
        doc = json.loads(await request.body())
        return JSONResponse({"name": doc["name"]}, 201)

    async def get_item(request: Request) -> Response:
        try:
            return JSONResponse({"id": int(request.path_params["item_id"])})
        except ValueError:
            return PlainTextResponse(traceback.format_exc(), 400)

    async def list_items(request: Request) -> Response:
        return JSONResponse(
            [], headers={"X-Limit": str(int(request.query_params.get("limit", 10)))}
        )

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    return Starlette(
        routes=[
            Route("/openapi.json", openapi),
            Route("/items", create, methods=["POST"]),
            Route("/items", list_items, methods=["GET"]),
            Route("/items/{item_id}", get_item),
        ]
    )


def robust(limit: int | None = 64 * 1024) -> Starlette:
    """Validates everything; refuses big bodies with 413 before reading them."""

    async def create(request: Request) -> Response:
        if limit is not None and int(request.headers.get("content-length", 0)) > limit:
            return JSONResponse({"title": "too large"}, 413)
        if request.headers.get("content-type") != "application/json":
            return JSONResponse({"title": "use application/json"}, 415)
        try:
            doc = json.loads(await request.body())
            return JSONResponse({"name": str(doc["name"])}, 201)
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"title": "invalid body"}, 422)

    async def get_item(request: Request) -> Response:
        item = request.path_params["item_id"]
        if not item.isdigit():
            return JSONResponse({"title": "id must be an integer"}, 422)
        return JSONResponse({"id": int(item)})

    async def list_items(request: Request) -> Response:
        if not request.query_params.get("limit", "1").isdigit():
            return JSONResponse({"title": "bad limit"}, 422)
        return JSONResponse([])

    return Starlette(
        routes=[
            Route("/items", create, methods=["POST"]),
            Route("/items", list_items, methods=["GET"]),
            Route("/items/{item_id}", get_item),
        ]
    )


def target() -> Target:
    return Target(
        endpoints=[
            Endpoint("POST", "/items", json_body=True),
            Endpoint("GET", "/items", (Param("limit", "query", "integer"),)),
            Endpoint("GET", "/items/{item_id}", (Param("item_id", "path", "integer", True),)),
        ],
        source="test",
    )


def test_fragile_service_has_blockers(serve_app, run_probe, check_ids) -> None:
    ctx = run_probe(serve_app(fragile()), input_handling.run)  # endpoints from /openapi.json
    assert ctx.target.source == "/openapi.json"
    found = check_ids(ctx)
    assert found["input-handling.server-error"] == "blocker"
    assert found["input-handling.stack-trace"] == "blocker"
    server_error = next(f for f in ctx.findings if f.check == "input-handling.server-error")
    assert server_error.evidence.status == 500
    assert server_error.evidence.request.startswith(("POST /items", "GET /items"))


def test_robust_service_passes(serve_app, run_probe, check_ids) -> None:
    ctx = run_probe(serve_app(robust()), input_handling.run, target=target())
    assert check_ids(ctx) == {"input-handling.ok": "info"}


def test_a_body_read_whole_is_a_warning(serve_app, run_probe, check_ids) -> None:
    ctx = run_probe(serve_app(robust(limit=None)), input_handling.run, target=target())
    assert check_ids(ctx) == {"input-handling.no-body-limit": "warning"}


def test_trace_echo_is_a_warning(serve_app, run_probe, check_ids) -> None:
    async def echo(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        if scope["method"] == "TRACE":
            lines = [f"{k.decode()}: {v.decode()}" for k, v in scope["headers"]]
            await PlainTextResponse("TRACE / HTTP/1.1\n" + "\n".join(lines))(scope, receive, send)
        else:
            await JSONResponse({"title": "not found"}, 404)(scope, receive, send)

    ctx = run_probe(serve_app(echo), input_handling.run, target=Target(source="test"))
    assert check_ids(ctx) == {"input-handling.trace-enabled": "warning"}


def test_delete_is_never_sent(serve_app, run_probe) -> None:
    seen: list[str] = []

    async def record(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            seen.append(scope["method"])
            await JSONResponse({"title": "no"}, 400)(scope, receive, send)

    target = Target(
        endpoints=[
            Endpoint("PUT", "/items/{id}", json_body=True),
            Endpoint("POST", "/x", json_body=True),
        ]
    )
    run_probe(serve_app(record), input_handling.run, target=target)
    assert "DELETE" not in seen
    assert "PUT" not in seen
    assert "POST" in seen
