"""Auto-audit against what clients and apps really send: a NUL in the path (PostgreSQL refuses
it in text), an app route under /privacy/, an app that raises after its response started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from readykit import ReadyKit, Settings
from readykit._types import ASGIApp, Message, Receive, Scope, Send
from readykit.testing import asgi_request, lifespan

pytestmark = pytest.mark.anyio


async def create(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True}, status_code=201)


def make(store_url: str, tmp_path: Path, app: ASGIApp | None = None) -> tuple[ReadyKit, ASGIApp]:
    kit = ReadyKit(
        Settings(
            configure_logging=False,
            access_log=False,
            store_url=store_url,
            spill_path=str(tmp_path / "spill.jsonl"),
        )
    )
    routes = [
        Route("/quotes/{id}", create, methods=["POST"]),
        Route("/privacy/consent", create, methods=["POST"]),
    ]
    return kit, kit.wrap(app if app is not None else Starlette(routes=routes))


async def audited(kit: ReadyKit) -> list[dict[str, Any]]:
    assert kit.records is not None
    await kit.records.writer.flush()
    return await kit.records.store.audit()


async def test_a_nul_in_the_path_cannot_make_a_mutation_unaudited(
    store_url: str, tmp_path: Path
) -> None:
    """`POST /quotes/ab%00`: the app carries it out; PostgreSQL refused the raw path in a text
    column, so the event was rejected and the mutation went unaudited."""
    kit, app = make(store_url, tmp_path)
    async with lifespan(app):
        r = await asgi_request(app, "POST", "/quotes/ab\x00")
        assert r.status == 201
        [row] = await audited(kit)
    assert row["resource"] == "/quotes/ab\ufffd"
    assert row["status"] == 201


async def test_an_app_route_under_privacy_is_audited(store_url: str, tmp_path: Path) -> None:
    """Only the kit's own privacy endpoints audit themselves; the app's `/privacy/...` routes
    are mutations like any other."""
    kit, app = make(store_url, tmp_path)
    async with lifespan(app):
        r = await asgi_request(app, "POST", "/privacy/consent")
        assert r.status == 201
        rows = await audited(kit)
    assert [(e["action"], e["status"]) for e in rows] == [("POST /privacy/consent", 201)]


async def test_an_app_that_raises_after_its_start_is_audited_as_a_500(
    store_url: str, tmp_path: Path
) -> None:
    """The client gets a 500 (the answer is cut or replaced), so the row says 500, not the
    status of the start the app sent before it failed."""

    async def half(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("failed midway")

    kit, app = make(store_url, tmp_path, half)
    async with lifespan(app):
        with pytest.raises(RuntimeError):
            await asgi_request(app, "POST", "/quotes/1")
        [row] = await audited(kit)
    assert row["status"] == 500


async def test_a_pathsend_or_trailers_answer_waits_for_the_commit(
    store_url: str, tmp_path: Path
) -> None:
    """Servers that offer `http.response.pathsend` or trailers: no message of such an answer
    goes out before the event is committed, and the trailers come after the body."""
    sent: list[tuple[str, int]] = []

    async def pathsend_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(tmp_path / "file")})

    async def trailers_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 201, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"ok", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [], "more_trailers": False})

    for inner in (pathsend_app, trailers_app):
        kit, app = make(store_url, tmp_path / inner.__name__, inner)
        assert kit.records is not None
        store = kit.records.store

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message, store: Any = store) -> None:
            sent.append((message["type"], len(await store.audit())))

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/quotes/1", "raw_path": b"/quotes/1",
                 "root_path": "", "query_string": b"", "headers": [], "client": ("127.0.0.1", 1),
                 "server": ("127.0.0.1", 80), "state": {}, "extensions": {
                     "http.response.pathsend": {}, "http.response.trailers": {}}}  # fmt: skip
        async with lifespan(app):
            sent.clear()
            before = len(await store.audit())
            await app(scope, receive, send)
        kinds = [kind for kind, _ in sent]
        # nothing of the answer goes out before its commit (the start is held too)
        assert [rows for _, rows in sent] == [before + 1] * len(sent), (inner.__name__, sent)
        assert kinds[0] == "http.response.start", sent
        if inner is trailers_app:
            assert kinds == ["http.response.start", "http.response.body", "http.response.trailers"]
