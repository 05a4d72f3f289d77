"""The one pure-ASGI layer: request id, timing, ops routes, error shape, one record per request."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from readykit._types import ASGIApp, Message, Receive, Scope, Send
from readykit.context import REQUEST_ID_HEADER, accept_request_id, request_id_var
from readykit.headers import media_type, without
from readykit.problem import send_problem
from readykit.record import RequestRecord
from readykit.routing import RouteResolver

if TYPE_CHECKING:
    from readykit.kit import ReadyKit

logger = logging.getLogger("readykit")


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    media = media_type(headers)
    return media == b"application/json" or media.endswith(b"+json")


def _with_request_id(
    headers: Iterable[tuple[bytes, bytes]], id_header: tuple[bytes, bytes]
) -> list[tuple[bytes, bytes]]:
    """The response headers with ours as the only x-request-id; reuses the app's list."""
    if type(headers) is not list:
        headers = list(headers)
    for key, _ in headers:
        if key.lower() == REQUEST_ID_HEADER:  # rare: the app set its own; ours is echoed
            headers = without(headers, (REQUEST_ID_HEADER,))
            break
    headers.append(id_header)
    return headers


class ReadyKitMiddleware:
    """Wraps any ASGI app; created by `ReadyKit.wrap`.

    A 500 response is held back until the app finishes: if the app then raises (as Starlette's
    ServerErrorMiddleware does after sending its plain-text or debug page), the held response is
    replaced by a problem+json 500 that carries the request id and no traceback. A JSON 500 from
    the app's own exception handler is kept.
    """

    def __init__(self, app: ASGIApp, kit: ReadyKit, routes: RouteResolver) -> None:
        self.app = app
        self.kit = kit
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the HTTP path is inline, not a method call: one coroutine frame less per request
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.kit._lifespan(self.app, scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = scope.get("root_path", "")  # routing may rewrite it; route names need it
        incoming = user_agent = None
        for key, value in scope["headers"]:
            key = key.lower()
            if key == REQUEST_ID_HEADER:
                incoming = value
            elif key == b"user-agent":
                user_agent = value
        request_id = accept_request_id(incoming)
        id_header = (REQUEST_ID_HEADER, request_id.encode())
        token = request_id_var.set(request_id)

        status = 0
        response_bytes = request_bytes = 0
        held: list[Message] | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_bytes, held
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = _with_request_id(message.get("headers", ()), id_header)
                if status == 500:
                    held = [message]
                    return
            elif message["type"] == "http.response.body":
                response_bytes += len(message.get("body", b""))
                if held is not None:
                    held.append(message)
                    return
            await send(message)

        active = self.kit._active_requests
        if active is not None:
            gauge = active(scope["method"])
            gauge.inc()
        recorders = self.kit._recorders
        if recorders:  # only recorders read the request size; skip the wrapper otherwise
            app_receive = receive

            async def receive() -> Message:
                nonlocal request_bytes
                message = await app_receive()
                request_bytes += len(message.get("body", b""))
                return message

        ops_handler = self.kit._ops_routes.get(scope["path"])
        error: Exception | None = None
        try:
            if ops_handler is not None:
                await self.kit._ops_app(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            error = exc
            logger.exception(
                "unhandled exception in %s %s",
                scope["method"],
                scope["path"],
                extra={"request_id": request_id},
            )
            if status and held is None:
                raise  # the response is under way; the server must abort the connection
            if held is not None and _is_json(held[0]["headers"]):
                for message in held:  # the app's own JSON error response: keep it
                    await send(message)
            else:
                status, response_bytes = 500, 0
                await send_problem(
                    send,
                    500,
                    "The server failed to handle this request; quote the request id to report it.",
                    headers=[id_header, *self.kit._error_headers(scope)],
                    request_id=request_id,
                )
        else:
            if held is not None:
                for message in held:
                    await send(message)
        finally:
            request_id_var.reset(token)
            if active is not None:
                gauge.dec()
            if recorders:
                self._record(
                    scope,
                    request_id,
                    status or 500,
                    started,
                    request_bytes,
                    response_bytes,
                    user_agent,
                    error,
                    ops_handler is not None,
                    root_path,
                )

    def _record(
        self,
        scope: Scope,
        request_id: str,
        status: int,
        started: float,
        request_bytes: int,
        response_bytes: int,
        user_agent: bytes | None,
        error: Exception | None,
        is_ops: bool,
        root_path: str,
    ) -> None:
        duration = time.perf_counter() - started
        client = scope.get("client")
        record = RequestRecord(
            request_id=request_id,
            method=scope["method"],
            route=scope["path"] if is_ops else self.routes(scope, root_path),
            path=scope["path"],
            status=status,
            started_at=time.time() - duration,
            duration_s=duration,
            request_bytes=request_bytes,
            response_bytes=response_bytes,
            client=client[0] if client else None,
            user_agent=user_agent.decode("latin-1") if user_agent is not None else None,
            scheme=scope.get("scheme", "http"),
            principal=self.kit.resolve_principal(scope),
            exception=error,
        )
        for recorder in self.kit._recorders:
            try:
                recorder(record)
            except Exception:
                logger.exception("recorder %r failed", recorder)
