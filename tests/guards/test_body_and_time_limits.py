"""Body and time limits: 413 before reading, chunked bodies cut off, 504 before the response."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from readykit import ReadyKit, Settings
from readykit._types import Message, Receive, Scope, Send
from readykit.testing import asgi_request

pytestmark = pytest.mark.anyio


class Echo:
    """Reads the whole body and answers its length; remembers how much it read."""

    def __init__(self) -> None:
        self.read = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            self.read += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(self.read).encode()})


CHUNKED = [("Transfer-Encoding", "chunked")]


def kit(**settings: Any) -> ReadyKit:
    return ReadyKit(Settings(configure_logging=False, access_log=False, **settings))


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    echo = Echo()
    app = kit(max_body_bytes=100).wrap(echo)
    r = await asgi_request(app, "POST", "/up", headers=[("Content-Length", "101")], body=b"x" * 101)
    assert r.status == 413
    assert r.header("content-type") == "application/problem+json"
    assert "100 bytes" in r.json()["detail"]
    assert echo.read == 0


@pytest.mark.parametrize("content_length", [None, "-5", "abc"])
async def test_body_without_a_usable_length_is_cut_off_as_it_passes(
    content_length: str | None,
) -> None:
    echo = Echo()
    app = kit(max_body_bytes=100).wrap(echo)
    headers = (
        [("Content-Length", content_length)]
        if content_length
        else [("Transfer-Encoding", "chunked")]
    )
    chunks = [b"x" * 60] * 10  # 600 bytes in all
    r = await asgi_request(app, "POST", "/up", headers=headers, body=chunks)
    assert r.status == 413
    assert echo.read == 60  # the second chunk was never handed to the app


async def test_body_within_the_limit_passes() -> None:
    app = kit(max_body_bytes=100).wrap(Echo())
    r = await asgi_request(app, "POST", "/up", headers=CHUNKED, body=[b"x" * 50, b"y" * 50])
    assert (r.status, r.body) == (200, b"100")


async def test_per_route_body_limit_overrides_the_default() -> None:
    app = kit(max_body_bytes=10, body_limits={"POST /upload": 1000}).wrap(Echo())
    length = [("Content-Length", "500")]
    assert (
        await asgi_request(app, "POST", "/upload", headers=length, body=b"x" * 500)
    ).status == 200
    assert (
        await asgi_request(app, "POST", "/other", headers=length, body=b"x" * 500)
    ).status == 413


async def test_framework_reading_the_body_gets_413_not_500() -> None:
    api = FastAPI()

    @api.post("/items")
    async def create(request: Request) -> dict[str, int]:
        return {"n": len(await request.body())}

    app = kit(max_body_bytes=100).wrap(api)
    r = await asgi_request(app, "POST", "/items", headers=CHUNKED, body=[b"x" * 80, b"x" * 80])
    assert r.status == 413
    r = await asgi_request(app, "POST", "/items", headers=CHUNKED, body=b"x" * 80)
    assert (r.status, r.json()) == (200, {"n": 80})


async def test_http2_bodies_without_a_length_are_counted() -> None:
    echo = Echo()
    app = kit(max_body_bytes=100).wrap(echo)
    scope_app = _with_http_version(app, "2")
    r = await asgi_request(scope_app, "POST", "/up", body=[b"x" * 60] * 3)
    assert r.status == 413
    assert echo.read == 60


def _with_http_version(app: Any, version: str) -> Any:
    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "http_version": version}, receive, send)

    return call


async def slow(request: Any) -> PlainTextResponse:
    await asyncio.sleep(3600)
    return PlainTextResponse("never")


async def stream(request: Any) -> StreamingResponse:
    async def chunks() -> Any:
        yield b"first "
        await asyncio.sleep(0.05)  # past the 0.01 s limit, but the response has started
        yield b"second"

    return StreamingResponse(chunks())


def timed_app(**settings: Any) -> Any:
    return kit(**settings).wrap(
        Starlette(routes=[Route("/slow", slow), Route("/stream", stream), Route("/report", slow)])
    )


async def test_no_response_in_time_is_504() -> None:
    r = await asgi_request(timed_app(request_timeout_s=0.01), "GET", "/slow")
    assert r.status == 504
    assert r.json()["title"] == "Gateway Timeout"


async def test_started_response_is_not_cut() -> None:
    r = await asgi_request(timed_app(request_timeout_s=0.01), "GET", "/stream")
    assert (r.status, r.body) == (200, b"first second")


async def test_per_route_timeout() -> None:
    app = timed_app(request_timeout_s=3600, request_timeouts={"GET /report": 0.01})
    assert (await asgi_request(app, "GET", "/report")).status == 504


async def test_limits_can_be_switched_off() -> None:
    echo = Echo()
    app = kit(max_body_bytes=None).wrap(echo)
    r = await asgi_request(app, "POST", "/", headers=CHUNKED, body=b"x" * 2_000_000)
    assert r.status == 200


async def test_receive_message_types_pass_through() -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = kit(max_body_bytes=5).wrap(app)
    assert (await asgi_request(wrapped, "POST", "/", headers=CHUNKED, body=b"abc")).status == 204
    assert seen == [{"type": "http.request", "body": b"abc", "more_body": False}]


async def stubborn(request: Any) -> PlainTextResponse:
    # a bare `except BaseException`, a retry loop: the cancellation is lost
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(3600)
    if request.query_params.get("then") == "raise":
        raise RuntimeError("went on after its time limit")
    return PlainTextResponse("stubborn answer", status_code=201)


@pytest.mark.parametrize("then", ["answer", "raise"])
@pytest.mark.parametrize("method", ["GET", "POST"])  # a POST is audited: its answer is held
async def test_a_handler_that_swallows_the_cancellation_still_gets_its_504(
    tmp_path: Any, method: str, then: str
) -> None:
    """The handler cannot be stopped, but the limit fired before its response started: the
    client gets the 504 (with the request id, once), not the late answer nor the server's bare
    500, and the audit records the 504."""
    from readykit.records import store_from_url
    from readykit.testing import lifespan

    store = f"sqlite:///{tmp_path}/records.db"
    app = kit(request_timeout_s=0.01, store_url=store, spill_path=str(tmp_path / "s.jsonl")).wrap(
        Starlette(routes=[Route("/stubborn", stubborn, methods=["GET", "POST"])])
    )
    async with lifespan(app):
        r = await asgi_request(
            app, method, "/stubborn", query_string=f"then={then}".encode(),
            headers=[("X-Request-ID", "rid-late")],
        )  # fmt: skip
    assert r.status == 504
    assert r.json()["title"] == "Gateway Timeout"
    assert r.header("x-request-id") == "rid-late"
    assert b"stubborn answer" not in r.body
    assert [m["type"] for m in r.messages].count("http.response.start") == 1
    if method == "POST":
        records = store_from_url(store)
        await records.open()
        try:
            assert [e["status"] for e in await records.audit()] == [504]
        finally:
            await records.close()


async def test_a_late_answers_trailers_are_dropped_with_it() -> None:
    """Past the limit, nothing of the late answer reaches the server: trailers (or a
    pathsend) with no start of their own would break the connection instead of the 504."""

    async def with_trailers(scope: Scope, receive: Receive, send: Send) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"late"})
        await send({"type": "http.response.trailers", "headers": [], "more_trailers": False})

    r = await asgi_request(kit(request_timeout_s=0.01).wrap(with_trailers), "GET", "/")
    assert [m["type"] for m in r.messages] == ["http.response.start", "http.response.body"]
    assert r.status == 504


async def test_a_cached_routes_response_started_in_time_is_not_cut() -> None:
    """The response cache holds the start while it buffers the body to store it; the app's
    answer has started all the same, and runs past the limit untouched."""
    app = timed_app(request_timeout_s=0.01, cache_routes={"GET /stream": 60})
    first = await asgi_request(app, "GET", "/stream")
    assert (first.status, first.body, first.header("x-cache")) == (200, b"first second", "MISS")
    again = await asgi_request(app, "GET", "/stream")
    assert (again.body, again.header("x-cache")) == (b"first second", "HIT")
