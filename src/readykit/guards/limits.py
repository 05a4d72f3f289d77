"""Body-size and time limits: 413 and 504 problem+json, with per-route overrides.

A declared `Content-Length` over the limit is refused before a byte is read; a body without one
(chunked, or a missing or malformed length) is counted as it arrives and cut off as soon as it
passes the limit, never buffered whole. The time limit runs until the response starts, so a
streamed response, once under way, is not cut.
"""

from __future__ import annotations

import asyncio

from readykit._types import ASGIApp, Message, Receive, Scope, Send
from readykit.problem import send_problem
from readykit.route_table import RouteTable


class _BodyTooLarge(Exception):
    """Raised into the app's `receive` when the body passes the limit."""


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """(the declared Content-Length if usable, whether the body must be counted as it comes).

    HTTP/1.x servers deliver exactly Content-Length bytes, and no body at all when neither it
    nor Transfer-Encoding is sent (most GETs): then nothing needs counting. A chunked body, a
    malformed length, or HTTP/2 (where the length is optional) is counted.
    """
    declared: int | None = None
    chunked = malformed = False
    for key, value in scope["headers"]:
        key = key.lower()
        if key == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                malformed = True
            else:
                if declared < 0:
                    declared, malformed = None, True
        elif key == b"transfer-encoding":
            chunked = True
    http1 = scope.get("http_version", "1.1") in ("1.1", "1.0")
    return declared, chunked or malformed or not http1


class BodyLimitGuard:
    """Refuses request bodies above `limit` bytes (or the route's own limit) with 413."""

    def __init__(
        self, app: ASGIApp, *, limit: int | None, routes: RouteTable[int] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.routes = routes or RouteTable[int]({}, setting="body_limits")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.routes.value_for(scope, self.limit)
        if limit is None:
            await self.app(scope, receive, send)
            return
        detail = f"The request body is larger than this endpoint accepts ({limit} bytes)."
        declared, count = _framing(scope)
        if declared is not None and declared > limit:
            await send_problem(send, 413, detail, headers=[(b"connection", b"close")])
            return
        if not count:  # the server delivers at most `declared` bytes, within the limit
            await self.app(scope, receive, send)
            return

        received = 0
        too_large = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:  # whatever the app answers to the cut-off body, the answer is 413
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not too_large:
                raise  # the app's own error; the kit's layer answers it
        if too_large and not started:
            await send_problem(send, 413, detail, headers=[(b"connection", b"close")])


class TimeoutGuard:
    """Answers 504 when the app has not started its response within `timeout_s` seconds."""

    def __init__(
        self, app: ASGIApp, *, timeout_s: float | None, routes: RouteTable[float] | None = None
    ) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.routes = routes or RouteTable[float]({}, setting="request_timeouts")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timeout_s = self.routes.value_for(scope, self.timeout_s)
        if timeout_s is None:
            await self.app(scope, receive, send)
            return
        started = False
        deadline = asyncio.timeout(timeout_s)

        async def send_started(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                deadline.reschedule(None)  # the response is under way: let it finish
            await send(message)

        try:
            async with deadline:
                await self.app(scope, receive, send_started)
        except TimeoutError:
            if started or not deadline.expired():
                raise
            await send_problem(
                send, 504, f"The server did not answer within {timeout_s:g} s; try again later."
            )
