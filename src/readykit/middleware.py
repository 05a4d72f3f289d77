"""The one pure-ASGI layer: request id, timing, ops routes, the compiled guards, error shape, one
record per request."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING

from readykit._types import ASGIApp, Message, Receive, Scope, Send
from readykit.context import REQUEST_ID_HEADER, accept_request_id, request_id_var
from readykit.deadlines import SCOPE_KEY as DEADLINE_KEY
from readykit.deadlines import Deadlines
from readykit.feature import Guard, When
from readykit.guards.limits import body_too_large, timed_out
from readykit.headers import media_type, without
from readykit.logging.redact import redact_path, serving
from readykit.problem import send_problem
from readykit.record import ROUTE_UNMATCHED, RequestRecord
from readykit.route_table import route_path
from readykit.routing import RouteResolver
from readykit.stage import Answer, Completing, Exchange, Headers, Stage

if TYPE_CHECKING:
    from readykit.kit import ReadyKit

logger = logging.getLogger("readykit")


# the request an outer guard (the audit) hands back to the stages: set only on that path
_exchange: ContextVar[Exchange] = ContextVar("readykit_exchange")


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    media = media_type(headers)
    return media == b"application/json" or media.endswith(b"+json")


class _BodyTooLarge(Exception):
    """Raised into the app's `receive` when a body of unknown length passes its limit."""


class Chain:
    """ASGI guards around an app, each skipped for the requests its `when` does not concern.

    The app wrapped in the guards that concern a request is built once per combination and
    kept, so a request pays one predicate call per guard and a dict lookup, no layer for a guard
    that does not apply.
    """

    def __init__(self, app: ASGIApp, guards: Sequence[tuple[Guard, When | None]]) -> None:
        self.app = app
        self.guards = list(guards)  # outermost first
        self.whens = [when for _, when in self.guards]
        self.always: ASGIApp | None = None
        if all(when is None for when in self.whens):
            self.always = self._build((True,) * len(self.guards))
        self._built: dict[tuple[bool, ...], ASGIApp] = {}
        # the common shape (one guard for some requests, e.g. job pings): no tuple, no lookup
        self._one: tuple[When, ASGIApp] | None = None
        if len(self.whens) == 1 and self.whens[0] is not None:
            self._one = (self.whens[0], self._build((True,)))

    def _build(self, applies: tuple[bool, ...]) -> ASGIApp:
        app = self.app
        for (guard, _), applied in zip(reversed(self.guards), reversed(applies), strict=True):
            if applied:
                app = guard(app)
        return app

    def __call__(self, scope: Scope) -> ASGIApp:
        """The app wrapped in the guards that concern this request."""
        if self.always is not None:
            return self.always
        if self._one is not None:
            when, guarded = self._one
            return guarded if when(scope) else self.app
        applies = tuple([when is None or when(scope) for when in self.whens])
        app = self._built.get(applies)
        if app is None:
            app = self._built[applies] = self._build(applies)
        return app


class Pipeline:
    """What a request goes through, compiled once by `ReadyKit.wrap`: ASGI guards outside the
    stages (the audit, which must see every refusal), the stages, ASGI guards inside them.

    The stages' response hooks run in the kit's one `send` wrapper (`ReadyKitMiddleware`), so
    a request pays no wrapper per guard.
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        outer: Sequence[tuple[Guard, When | None]],
        inner: Chain,
    ) -> None:
        self.stages = tuple(stages)
        # response hooks run innermost first; an answer by stage i is dressed by those before it
        self.hooks = tuple(reversed(self.stages))
        self.hooks_before = [tuple(reversed(self.stages[:i])) for i in range(len(self.stages))]
        self.inner = inner
        self.entry: ASGIApp = self._from_outer  # the stages, as the outer guards' app
        self.outer = Chain(self.entry, outer) if outer else None
        self.direct = not self.stages and self.outer is None  # nothing to run but the app
        self.deadlines = Deadlines()

    async def _from_outer(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.run(_exchange.get(), receive, send, held=True)

    def dress(self, ex: Exchange, status: int, headers: Headers) -> Completing | None:
        """Run the response hooks on a response's headers (those of the stages before the one
        that answered, if one did); the stage that wants the body to complete them, if any."""
        if ex.extra:
            headers.extend(ex.extra)
        holder = None
        for stage in self.hooks if ex.answered_by is None else self.hooks_before[ex.answered_by]:
            if stage.response(ex, status, headers):
                holder = stage
        return holder  # type: ignore[return-value]

    async def run(self, ex: Exchange, receive: Receive, send: Send, held: bool = False) -> None:
        """The stages, then the inner guards and the app; `send` is the kit's wrapper, which
        dresses whatever answers (`held`: an outer guard's, the audit's, which holds what it
        is sent until the app returns)."""
        for i, stage in enumerate(self.stages):
            answer = stage.request(ex)
            if answer is not None:
                if type(answer) is not Answer:
                    answer = await answer  # type: ignore[misc]
                    if answer is None:
                        continue
                assert isinstance(answer, Answer)
                ex.answered_by = i
                await answer.send(send)
                return
        app = self.inner(ex.scope)
        if ex.body_limit is not None:
            await self._counted(ex, app, receive, send, held)
        elif ex.timeout_s is None:
            await app(ex.scope, receive, send)
        else:
            await self._timed(ex, app, receive, send, held)

    async def _timed(
        self, ex: Exchange, app: ASGIApp, receive: Receive, send: Send, held: bool = False
    ) -> None:
        """The app under the time limit (readykit.deadlines: one timer on the event loop for all
        requests), disarmed when the response starts; a 504 if it fires first, whatever the
        app does after (an app that swallows the cancellation cannot be stopped: what it
        sends after the limit fired is dropped, and if it raises the answer is still the 504).
        """
        assert ex.timeout_s is not None
        deadline = ex.deadline = ex.scope[DEADLINE_KEY] = self.deadlines.watch(ex.timeout_s)
        # the kit's wrapper sees a response start as it is sent, and disarms or drops there; an
        # outer guard holding the messages would show it the late answer only after the 504
        app_send = _in_time(ex, send) if held else send
        try:
            try:
                with deadline:
                    await app(ex.scope, receive, app_send)
            finally:
                ex.deadline = None  # disarmed or fired: nothing left to disarm
        except Exception as exc:
            if not deadline.expired:  # not ours (disarmed once the response started)
                raise
            if not isinstance(exc, TimeoutError):
                logger.exception(
                    "the app raised after its time limit fired", extra={"request_id": ex.request_id}
                )
        else:
            return  # in time (an expired limit makes the deadline raise TimeoutError)
        ex.late = False  # what the app sent after the limit was dropped; this goes out
        await timed_out(ex.timeout_s).send(send)

    async def _counted(
        self, ex: Exchange, app: ASGIApp, receive: Receive, send: Send, held: bool = False
    ) -> None:
        """The app with a body of unknown length counted as it comes, cut off past the limit:
        the app's `receive` raises, and the client gets 413 whatever the app answers."""
        limit = ex.body_limit
        assert limit is not None
        received = 0
        too_large = started = False

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
            if ex.timeout_s is None:
                await app(ex.scope, counting_receive, guarded_send)
            else:
                await self._timed(ex, app, counting_receive, guarded_send, held)
        except _BodyTooLarge:
            pass
        except Exception:
            if not too_large:
                raise  # the app's own error; the kit's layer answers it
        if too_large and not started:
            await body_too_large(limit).send(send)


def _in_time(ex: Exchange, send: Send) -> Send:
    """`send` for an app under a time limit whose answer an outer guard holds: what the kit's
    wrapper does (`Exchange.drops`) done before the guard, so that it holds the 504, not the
    late answer (and the audit records the 504)."""

    async def send_in_time(message: Message) -> None:
        if not ex.drops(message["type"]):
            await send(message)

    return send_in_time


def _without_request_id(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The app's response headers without an x-request-id of its own (ours is added last)."""
    for key, _ in headers:
        if key.lower() == REQUEST_ID_HEADER:  # rare: the app set its own; ours is echoed
            return without(headers, (REQUEST_ID_HEADER,))
    return headers


class _Lean:
    """One request's state when the kit has nothing to run but the app (no stages, no outer
    guards, no recorders, no gauge: request ids and ops routes only): the id header and the held
    500, none of the rest of `_Cycle`."""

    __slots__ = ("downstream", "held", "id_header", "status")

    def __init__(self, send: Send, id_header: tuple[bytes, bytes]) -> None:
        self.downstream = send
        self.id_header = id_header
        self.status = 0
        self.held: list[Message] | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = _without_request_id(list(message.get("headers", ())))
            headers.append(self.id_header)
            message["headers"] = headers
            if self.status == 500:
                self.held = [message]
                return
        elif self.held is not None and message["type"] == "http.response.body":
            self.held.append(message)
            return
        await self.downstream(message)


class _Cycle(Exchange):
    """One request's state in the kit's layer; `send` is the kit's one `send` wrapper (a bound
    method: no closure, no cells per request)."""

    __slots__ = (
        "downstream",
        "held",
        "holder",
        "id_header",
        "page",
        "page_size",
        "pipeline",
        "request_bytes",
        "response_bytes",
        "status",
        "upstream",
    )

    def __init__(self, scope: Scope, send: Send, pipeline: Pipeline) -> None:
        super().__init__(scope)
        self.downstream = send  # the server's send
        self.upstream: Receive | None = None  # the server's receive, when the body is counted
        self.pipeline = pipeline
        self.id_header = (b"", b"")
        self.status = 0
        self.request_bytes = self.response_bytes = 0
        self.held: list[Message] | None = None  # a 500's messages, until the app is done
        self.holder: Completing | None = None  # a stage completing the headers from the body
        self.page: list[Message] | None = None  # the start and body held for it
        self.page_size = 0

    async def receive(self) -> Message:
        """The server's receive, counting the body (when its length was not declared)."""
        assert self.upstream is not None
        message = await self.upstream()
        self.request_bytes += len(message.get("body", b""))
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.deadline is not None and self.drops(kind):  # after its time limit fired
                return
            status = self.status = message["status"]
            # ours to change, not the app's; the app's own x-request-id gives way to ours
            headers = _without_request_id(list(message.get("headers", ())))
            pipeline = self.pipeline
            if pipeline.stages:
                self.holder = pipeline.dress(self, status, headers)
            headers.append(self.id_header)
            message["headers"] = headers
            if status == 500:
                self.held = [message]
                return
            if self.holder is not None:
                self.page = [message]
                return
        elif self.late:  # the rest of an answer dropped after its time limit (body, trailers,
            return  # pathsend): the 504 goes out instead
        elif kind == "http.response.body":
            body = message.get("body", b"")
            self.response_bytes += len(body)
            if self.held is not None:
                self.held.append(message)
                return
            page = self.page
            if page is not None:
                page.append(message)
                self.page_size += len(body)
                more = message.get("more_body", False)
                if self.page_size > self.holder.hold_max_bytes:  # type: ignore[union-attr]
                    await self.release(None, more)
                elif not more:
                    await self.release(b"".join(m.get("body", b"") for m in page[1:]))
                return
        elif self.page is not None:  # the app sent something else before its body ended
            await self.release(None, True)
        await self.downstream(message)

    async def release(self, body: bytes | None, more: bool = False) -> None:
        """Send the held start, its headers completed by the holder from `body`, and the body
        so far as one message."""
        messages, self.page = self.page, None
        assert messages is not None
        assert self.holder is not None
        start = messages[0]
        start["headers"] = self.holder.complete(self, start["headers"], body)
        await self.downstream(start)
        if len(messages) > 1:
            joined = b"".join(m.get("body", b"") for m in messages[1:])
            await self.downstream({"type": "http.response.body", "body": joined, "more_body": more})

    async def send_500(self, request_id: str) -> None:
        """The kit's own 500 instead of whatever the app sent or held, dressed by the stages."""
        self.status, self.response_bytes = 500, 0
        headers = [self.id_header]
        if self.pipeline.stages:
            self.pipeline.dress(self, 500, headers)
        await _send_500(self.downstream, headers, request_id)

    async def send_held(self) -> None:
        """The app is done without raising: send what was held."""
        held = self.held
        if held is not None:
            if self.holder is not None:
                body: bytes | None = b"".join(m.get("body", b"") for m in held[1:])
                if len(body or b"") > self.holder.hold_max_bytes:
                    body = None
                held[0]["headers"] = self.holder.complete(self, held[0]["headers"], body)
            for message in held:
                await self.downstream(message)
        elif self.page is not None:  # the app ended without a final body message
            await self.release(None)


class ReadyKitMiddleware:
    """Wraps any ASGI app; created by `ReadyKit.wrap`.

    A 500 response is held back until the app finishes. A JSON 500 (the app's own API error) is
    kept when complete; any other 500 (Starlette's plain-text or debug page, sent before it
    re-raises; Django's and Litestar's error pages, sent without raising) is replaced by a
    problem+json 500 that carries the request id and no traceback, as is a JSON 500 cut off
    by an exception mid-body.
    """

    def __init__(
        self,
        app: ASGIApp,
        kit: ReadyKit,
        routes: RouteResolver,
        pipeline: Pipeline,
        ops_pipeline: Pipeline,
    ) -> None:
        self.app = app
        self.kit = kit
        self.routes = routes
        self.pipeline = pipeline
        self.ops_pipeline = ops_pipeline
        # nothing reads a request's size, status or duration: a pipeline with nothing to run
        # but the app takes the lean path (`_Lean`)
        self.lean = not kit._recorders and kit._active_requests is None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the HTTP path is inline, not a method call: one coroutine frame less per request
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.kit._lifespan(self.app, scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        # the ops routes are keyed as the app routes (behind `--root-path /api`, `/api/health`)
        root_path = scope.get("root_path", "")  # routing may rewrite it; route names need it
        path = route_path(scope) if root_path else scope["path"]
        is_ops = path in self.kit._ops_routes
        pipeline = self.ops_pipeline if is_ops else self.pipeline
        if pipeline.direct and self.lean:  # inline, as the rest: no coroutine of its own
            incoming = None
            for key, value in scope["headers"]:
                if key.lower() == REQUEST_ID_HEADER:
                    incoming = value
            request_id = accept_request_id(incoming)
            lean = _Lean(send, (REQUEST_ID_HEADER, request_id.encode()))
            token = request_id_var.set(request_id)
            current = serving.set((scope, root_path, self.routes.shown))
            try:
                await pipeline.inner(scope)(scope, receive, lean.send)
            except Exception:
                shown = self.routes.shown(scope, root_path)
                held = lean.held
                kept = await _keep_apps_error(scope, shown, request_id, lean.status, held, send)
                if kept is None:
                    raise  # the response is under way; the server must abort the connection
                if not kept:
                    await _send_500(send, [lean.id_header], request_id)
            else:
                if lean.held is not None:
                    if _is_json(lean.held[0]["headers"]):
                        for message in lean.held:
                            await send(message)
                    else:  # a framework's own error page (Django's, Litestar's debug page)
                        await _send_500(send, [lean.id_header], request_id)
            finally:
                request_id_var.reset(token)
                serving.reset(current)
            return
        started = time.perf_counter()
        cycle = _Cycle(scope, send, pipeline)
        request_id = cycle.request_id = accept_request_id(cycle.read_headers(scope["headers"]))
        cycle.id_header = (REQUEST_ID_HEADER, request_id.encode())
        token = request_id_var.set(request_id)
        current = serving.set((scope, root_path, self.routes.shown))

        active = self.kit._active_requests
        if active is not None:
            gauge = active(scope["method"])
            gauge.inc()
        recorders = self.kit._recorders
        if recorders:  # only recorders read the request size
            declared, count = cycle.body_framing()
            if declared is None or count:  # counted as the app reads it
                cycle.upstream = receive
                receive = cycle.receive
            else:
                cycle.request_bytes = declared

        error: Exception | None = None
        try:
            if pipeline.direct:
                await pipeline.inner(scope)(scope, receive, cycle.send)
            else:
                outer = pipeline.outer(scope) if pipeline.outer is not None else None
                if outer is None or outer is pipeline.entry:
                    await pipeline.run(cycle, receive, cycle.send)
                else:
                    exchange_token = _exchange.set(cycle)
                    try:
                        await outer(scope, receive, cycle.send)
                    finally:
                        _exchange.reset(exchange_token)
        except Exception as exc:
            error = exc
            shown = self.routes.shown(scope, root_path)
            kept = await _keep_apps_error(scope, shown, request_id, cycle.status, cycle.held, send)
            if kept is None:
                raise  # the response is under way; the server must abort the connection
            if not kept:
                await cycle.send_500(request_id)
        else:
            if cycle.held is not None and not _is_json(cycle.held[0]["headers"]):
                # a framework's own error page, sent without raising (Django's, Litestar's
                # debug page with the request's secrets): answered like an exception
                await cycle.send_500(request_id)
            elif cycle.held is not None or cycle.page is not None:
                await cycle.send_held()
        finally:
            request_id_var.reset(token)
            serving.reset(current)
            if active is not None:
                gauge.dec()
            if recorders:
                duration = time.perf_counter() - started
                client = scope.get("client")
                user_agent = cycle.user_agent
                route = path if is_ops else self.routes(scope, root_path)
                record = RequestRecord(  # positionally: a third cheaper than by keyword
                    request_id,
                    scope["method"],
                    route,
                    # `/reset/{token}`'s token never shown
                    redact_path(route, scope["path"])
                    if route != ROUTE_UNMATCHED
                    else self.routes.shown(scope, root_path, route),
                    cycle.status or 500,
                    time.time() - duration,
                    duration,
                    cycle.request_bytes,
                    cycle.response_bytes,
                    client[0] if client else None,
                    user_agent.decode("latin-1") if user_agent is not None else None,
                    scope.get("scheme", "http"),
                    self.kit.resolve_principal(scope),
                    error,
                )
                for recorder in recorders:
                    try:
                        recorder(record)
                    except Exception:
                        logger.exception("recorder %r failed", recorder)


async def _keep_apps_error(
    scope: Scope, path: str, request_id: str, status: int, held: list[Message] | None, send: Send
) -> bool | None:
    """The app raised: log it (with `path` as logs show it), and send the app's own JSON error
    response if one was held.

    True if it was sent; False if the kit must answer (its own 500); None if the response is
    already under way (nothing can be sent).
    """
    logger.exception(
        "unhandled exception in %s %s",
        scope["method"],
        path,
        extra={"request_id": request_id},
    )
    if held is None:
        return None if status else False
    if not _is_json(held[0]["headers"]) or held[-1].get("more_body", False) or len(held) < 2:
        return False  # not the app's API error, or cut off mid-body by the exception
    for message in held:
        await send(message)
    return True


async def _send_500(send: Send, headers: list[tuple[bytes, bytes]], request_id: str) -> None:
    """The kit's own 500: problem+json with the request id, no traceback."""
    await send_problem(
        send,
        500,
        "The server failed to handle this request; quote the request id to report it.",
        headers=headers,
        request_id=request_id,
    )
