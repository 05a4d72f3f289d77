"""One contract, every framework: FastAPI (mounts, dependencies), Starlette, Litestar, plain ASGI.

Each app answers `GET /me` per user with a mixed-case `X-Frame-Options` of its own, and
`POST /items`. The kit must: send every security header once with the app's value winning,
never serve one user's cached page to another, echo and log the request id, and audit the
mutation with its actor. (Django runs the same contract under uvicorn: test_django.py.)
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Header
from litestar import Litestar, Response, get, post
from litestar.params import HeaderParameter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route

from readykit import ReadyKit, Settings
from readykit._types import Receive, Scope, Send
from readykit.headers import get_header
from readykit.logging import configure_logging

pytestmark = pytest.mark.anyio
FRAME = {"X-Frame-Options": "SAMEORIGIN"}
app_log = logging.getLogger("contract.app")  # the app's own stdlib logger


def who(scope: Scope) -> str | None:
    user = get_header(scope["headers"], b"x-user")
    return user.decode() if user else None


async def current_user(x_user: Annotated[str | None, Header()] = None) -> str:
    """A FastAPI dependency (module level: annotations are resolved in the module)."""
    return x_user or "anonymous"


def fastapi_app() -> Any:
    api = FastAPI()

    @api.get("/me")
    async def me(user: Annotated[str, Depends(current_user)]) -> JSONResponse:
        return JSONResponse({"user": user}, headers=FRAME)

    @api.post("/items", status_code=201)
    async def create() -> dict[str, bool]:
        app_log.info("item created")
        return {"created": True}

    api.mount("/sub", Starlette(routes=[Route("/x", lambda r: PlainTextResponse("x"))]))
    return api


def starlette_app() -> Any:
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.headers.get("x-user", "anonymous")}, headers=FRAME)

    async def create(request: Request) -> JSONResponse:
        app_log.info("item created")
        return JSONResponse({"created": True}, status_code=201)

    return Starlette(
        routes=[
            Route("/me", me),
            Mount("/", routes=[Route("/items", create, methods=["POST"])]),
        ]
    )


def litestar_app() -> Any:
    @get("/me")
    async def me(
        x_user: Annotated[str | None, HeaderParameter(name="x-user")] = None,
    ) -> Response[dict[str, str]]:
        return Response({"user": x_user or "anonymous"}, headers=FRAME)

    @post("/items")
    async def create() -> dict[str, bool]:
        app_log.info("item created")
        return {"created": True}

    return Litestar([me, create])


def plain_app() -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "POST":
            app_log.info("item created")
            status, body = 201, b'{"created": true}'
        else:
            user = (get_header(scope["headers"], b"x-user") or b"anonymous").decode()
            status, body = 200, json.dumps({"user": user}).encode()
        headers = [(b"Content-Type", b"application/json"), (b"X-Frame-Options", b"SAMEORIGIN")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


APPS: dict[str, Callable[[], Any]] = {
    "fastapi": fastapi_app,
    "starlette": starlette_app,
    "litestar": litestar_app,
    "plain": plain_app,
}


@pytest.fixture(params=sorted(APPS))
def served(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[ReadyKit, Any]:
    settings = Settings(
        service_name=request.param,
        configure_logging=False,
        store_url=f"sqlite:///{tmp_path}/r.db",
        cache_routes={"GET /me": 60},
        privacy_key_path=str(tmp_path / "privacy.key"),
    )
    kit = ReadyKit(settings, principal=who)
    return kit, kit.wrap(APPS[request.param]())


async def call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 123))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


async def test_headers_once_each_and_the_apps_own_value_wins(served: tuple[ReadyKit, Any]) -> None:
    _, app = served
    response = await call(app, "GET", "/me")
    counts = Counter(k.lower() for k, _ in response.headers.raw)
    assert [k for k, n in counts.items() if n > 1] == []
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


async def test_cached_pages_are_kept_per_user(served: tuple[ReadyKit, Any]) -> None:
    _, app = served
    alice = [await call(app, "GET", "/me", headers={"x-user": "alice"}) for _ in range(2)]
    bob = [await call(app, "GET", "/me", headers={"x-user": "bob"}) for _ in range(2)]
    assert [r.json()["user"] for r in alice + bob] == ["alice", "alice", "bob", "bob"]
    assert [r.headers["x-cache"] for r in alice + bob] == ["MISS", "HIT", "MISS", "HIT"]
    assert alice[1].headers["cache-control"] == "private, max-age=60"


async def test_request_ids_are_echoed_logged_and_mutations_audited_with_their_actor(
    served: tuple[ReadyKit, Any],
) -> None:
    kit, app = served
    out = StringIO()
    configure_logging(Settings(log_format="json"), stream=out)
    created = await call(
        app, "POST", "/items", headers={"x-user": "alice", "x-request-id": "rid-contract-1"}
    )
    assert created.status_code == 201
    assert created.headers["x-request-id"] == "rid-contract-1"
    logged = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    [line] = [e for e in logged if e.get("event") == "item created"]
    assert line["request_id"] == "rid-contract-1"  # the app's own log line carries it
    [access] = [e for e in logged if e.get("event") == "request"]
    route = "UNMATCHED" if kit.settings.service_name == "plain" else "/items"  # no router
    assert (access["request_id"], access["route"]) == ("rid-contract-1", route)
    assert kit.records is not None
    await kit.records.writer.flush()
    [event] = await kit.records.store.audit()
    assert (event["actor"], event["request_id"], event["status"]) == (
        "alice",
        "rid-contract-1",
        201,
    )
