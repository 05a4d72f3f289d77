"""The audit log: `await kit.audit.record(...)`, and automatic audit of mutating requests.

Auto-audit is a guard, not a recorder: a recorder runs after the response has gone out, so a
crash right after could lose the event of a mutation the client saw succeed. The guard holds the
response's last body message until the event is committed (durability "commit"; group commit
makes concurrent requests share one write), so an acknowledged mutation is always audited.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from readykit._eager import start_eager
from readykit._types import ASGIApp, Message, Receive, Scope, Send
from readykit.context import current_request_id
from readykit.logging.redact import Redactor, Remembered, redact_text
from readykit.records.batch import BatchWriter
from readykit.records.store import AUDIT, new_id
from readykit.route_table import route_path
from readykit.routing import route_template, shown_path

RouteOf = Callable[[Scope, str], str]


def _scope_route(scope: Scope, root_path: str) -> str:
    """What the framework left in the scope (without the kit's resolver)."""
    return route_template(scope)


def storable(text: str) -> str:
    """`text` as every store can hold it: PostgreSQL refuses a NUL in text, and a client can
    put one in a path (`/quotes/a%00`); a row refused for it would leave a mutation unaudited."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


# an action names a route template, an actor a user: the same texts request after request
_redact_repeated = Remembered(lambda text: storable(redact_text(text)))


MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PathTest = Callable[[str], bool]


def audited(scope: Scope) -> bool:
    """Whether auto-audit concerns this request: a mutation. The method in any case: h11
    passes `post` through, and Django serves it as POST (upper-cased only when it is not: this
    runs for every request)."""
    method: str = scope["method"]
    return method in MUTATING or (not method.isupper() and method.upper() in MUTATING)


# outermost of the guards: the audit sees the answer the client gets (429, 413, 504 included)
ORDER_AUDIT = 5
Durability = Literal["commit", "async"]

logger = logging.getLogger("readykit.records")


class Audit:
    """Records who did what to which resource; details are redacted before they are stored.

    Args:
        actor: who is acting when `record` is not told (default: nobody known).
    """

    def __init__(
        self,
        writer: BatchWriter,
        redactor: Redactor,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.writer = writer
        self.redactor = redactor
        self.clock = clock
        self._self_audited: list[PathTest] = []

    def leave(self, paths: PathTest) -> None:
        """Leave the requests to the route paths `paths` accepts out of auto-audit: a layer of
        the kit answers them and audits each itself (the privacy endpoints, which name the
        subject by a keyed hash where auto-audit would name the raw principal)."""
        self._self_audited.append(paths)

    def left(self, scope: Scope) -> bool:
        """Whether a layer that audits itself answers this request (see `leave`)."""
        if not self._self_audited:
            return False
        path = route_path(scope)
        return any(paths(path) for paths in self._self_audited)

    def event(
        self,
        action: str,
        *,
        resource: str | None = None,
        actor: str | None = None,
        details: dict[str, Any] | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """The audit event as stored: every text redacted, a fresh id, the request id if any."""
        request_id = request_id if request_id is not None else current_request_id()
        return {
            "id": new_id(),
            "kind": AUDIT,
            "ts": self.clock(),
            "actor": _redact_repeated(actor) if actor is not None else None,
            "action": _redact_repeated(action),
            "resource": storable(self.redactor.text(resource)) if resource is not None else None,
            "status": status,
            "request_id": self.redactor.text(request_id) if request_id is not None else None,
            "details": self.redactor.redact(details) if details is not None else None,
        }

    async def record(
        self,
        action: str,
        *,
        resource: str | None = None,
        actor: str | None = None,
        details: dict[str, Any] | None = None,
        durable: bool = False,
    ) -> str:
        """Record one event; its id. `durable=True` returns only once it is committed."""
        event = self.event(action, resource=resource, actor=actor, details=details)
        if durable:
            await self.writer.put_durable(event)
        else:
            self.writer.put(event)
        return str(event["id"])

    def guard(
        self,
        principal: Callable[[Scope], str | None],
        durability: Durability = "commit",
        *,
        route_of: RouteOf = _scope_route,
        ops: bool = False,
    ) -> Callable[[ASGIApp], ASGIApp]:
        """The guard factory that audits mutating requests (`ops`: for the kit's own routes);
        `route_of` names the route of a finished request (the kit's one route resolver)."""

        def factory(app: ASGIApp) -> ASGIApp:
            return AuditGuard(
                app, self, principal, durability=durability, route_of=route_of, ops=ops
            )

        return factory


class AuditGuard:
    """Audits each POST/PUT/PATCH/DELETE; with durability "commit", the response's last body
    message is sent only once the event is on disk (in the store, or the spill file).

    If the event cannot be made durable, the response is cut short (the client never sees it
    complete) rather than acknowledged without its audit row.
    """

    def __init__(
        self,
        app: ASGIApp,
        audit: Audit,
        principal: Callable[[Scope], str | None],
        *,
        durability: Durability = "commit",
        route_of: RouteOf = _scope_route,
        ops: bool = False,
    ) -> None:
        self.app = app
        self.audit = audit
        self.principal = principal
        self.route_of = route_of
        self.durable = durability == "commit"
        self.ops = ops

    def _event(self, scope: Scope, status: int, root_path: str) -> dict[str, Any]:
        try:
            actor = self.principal(scope)
        except Exception:
            logger.exception("the principal resolver failed")
            actor = None
        route = scope["path"] if self.ops else self.route_of(scope, root_path)
        return self.audit.event(
            f"{scope['method'].upper()} {route}",
            # `/reset/{token}`'s token never stored
            resource=shown_path(self.route_of, scope, root_path, route),
            actor=actor,
            status=status,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not audited(scope) or self.audit.left(scope):
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(self, scope, send)
        raised = False
        try:
            await self.app(scope, receive, exchange.send)
        except Exception:
            raised = True
            exchange.app_done = True
            if exchange.held:  # answered before the app failed: complete the answer
                await exchange.complete()
            raise
        except BaseException:  # cancelled (the client left): abandoned, the writer answers not
            exchange.tail = None
            raise
        finally:
            exchange.app_done = True
            if not exchange.audited:  # no complete answer: the app raised, or the client left
                # an app that fails midway leaves the client a 500 or a cut answer, whatever
                # status it had started
                status = 500 if raised else exchange.status or 500
                self.audit.writer.put(self._event(scope, status, exchange.root_path))
        if exchange.held:
            await exchange.complete()


class _Exchange:
    """One audited request on its way out: its status, and (durability "commit") the response
    start and last body message held until the event's commit.

    The app's `send` of the last body queues the event and returns at once, so the app's own
    frames unwind while the commit runs instead of waiting inside it (a request suspended deep
    in the app keeps its objects alive into the garbage collector's older generations, which
    cost more CPU than the audit itself). The held messages go out when the app has returned,
    or from a task at commit time if the app is still busy (background work after the
    response), so that work never delays the answer.
    """

    __slots__ = (
        "app_done", "audited", "committed", "context", "downstream", "guard", "root_path",
        "scope", "sender", "start", "status", "tail",
    )  # fmt: skip

    def __init__(self, guard: AuditGuard, scope: Scope, send: Send) -> None:
        self.guard = guard
        self.scope = scope
        self.downstream = send
        self.root_path: str = scope.get("root_path", "")  # routing may rewrite it
        self.status = 0
        self.audited = False
        self.start: Message | None = None
        # the answer's last messages (its last body or pathsend, then any trailers), held
        self.tail: list[Message] | None = None
        self.committed: asyncio.Future[None] | None = None
        self.sender: asyncio.Future[None] | None = None
        self.app_done = False
        self.context: contextvars.Context | None = None  # for sends made from the writer

    async def send(self, message: Message) -> None:
        """The `send` the app is given."""
        if self.tail is not None:  # complete, waiting on the commit: trailers wait with it
            self.tail.append(message)
            return
        if self.sender is not None:  # the held answer is going out: nothing may overtake it
            await self.sender
        kind = message["type"]
        guard = self.guard
        if kind == "http.response.start":
            self.status = message["status"]
            if guard.durable:  # held: a client sees no part of an answer before its commit
                self.start = message
                return
        elif not self.audited and (
            (kind == "http.response.body" and not message.get("more_body", False))
            or kind == "http.response.pathsend"  # the whole body, from a file (an extension)
        ):
            self.audited = True
            event = guard._event(self.scope, self.status, self.root_path)
            if guard.durable:
                self.committed = guard.audit.writer.put_committing(event, self._durable_now)
                self.committed.add_done_callback(self._on_commit)
                self.tail = [message]
                self.context = contextvars.copy_context()
                return
            guard.audit.writer.put(event)
        if self.start is not None:  # a streamed body: the start goes with its first chunk
            start, self.start = self.start, None
            await self.downstream(start)
        await self.downstream(message)

    @property
    def held(self) -> bool:
        """True while the answer waits on its commit (held, or being sent by a task)."""
        return self.tail is not None or self.sender is not None

    def _durable_now(self) -> None:
        """Called by the writer the moment the event is durable. When the app has returned,
        the held messages go out from here, not a turn of the event loop later when the
        request's task wakes (a turn is a pass over every request in flight: at 32 connections
        the wait for it was as long as the commit itself)."""
        if self.app_done and self.tail is not None and self.sender is None:
            self.sender = start_eager(self._send_messages(), self.context)

    def _on_commit(self, committed: asyncio.Future[None]) -> None:
        if committed.cancelled():
            return
        committed.exception()  # retrieved: `complete` raises it where it matters
        if not self.app_done and self.sender is None:
            self.sender = asyncio.get_running_loop().create_task(self._send_held())

    async def complete(self) -> None:
        """Send the held messages once the event is durable (RecordsUnavailable if it cannot
        be: the response is cut short)."""
        try:
            if self.sender is not None:
                await self.sender
                return
            writer = self.guard.audit.writer
            if not writer.running:  # no flusher (no lifespan, or shutting down): write it now
                await writer.flush()
            await self._send_held()
            if self.sender is not None:  # the writer sent them as it committed: its outcome
                await self.sender
        except asyncio.CancelledError:
            self.tail = None  # the request was abandoned: the writer must not answer it
            raise

    async def _send_held(self) -> None:
        assert self.committed is not None
        await self.committed
        if self.tail is not None:  # not already sent by `_durable_now`
            await self._send_messages()

    async def _send_messages(self) -> None:
        assert self.tail is not None
        tail, self.tail = self.tail, None
        if self.start is not None:
            start, self.start = self.start, None
            await self.downstream(start)
        for message in tail:
            await self.downstream(message)
