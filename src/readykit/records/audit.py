"""The audit log: `await kit.audit.record(...)`, and automatic audit of mutating requests.

Auto-audit is a guard, not a recorder: a recorder runs after the response has gone out, so a
crash right after could lose the event of a mutation the client saw succeed. The guard holds the
response's last body message until the event is committed (durability "commit"; group commit
makes concurrent requests share one write), so an acknowledged mutation is always audited.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from readykit._types import ASGIApp, Message, Receive, Scope, Send
from readykit.context import current_request_id
from readykit.logging.redact import Redactor, redact_text
from readykit.records.batch import BatchWriter
from readykit.records.store import AUDIT, new_id
from readykit.routing import route_template

RouteOf = Callable[[Scope, str], str]


def _scope_route(scope: Scope, root_path: str) -> str:
    """What the framework left in the scope (without the kit's resolver)."""
    return route_template(scope)


MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# the kit's own endpoints that write audit events of their own
OWN_AUDIT_PREFIXES = ("/privacy/",)


def audited(scope: Scope) -> bool:
    """Whether auto-audit concerns this request: a mutation, not to an endpoint of the kit's
    that audits itself."""
    return scope["method"] in MUTATING and not scope["path"].startswith(OWN_AUDIT_PREFIXES)


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
            "actor": redact_text(actor) if actor is not None else None,
            "action": redact_text(action),
            "resource": redact_text(resource) if resource is not None else None,
            "status": status,
            "request_id": redact_text(request_id) if request_id is not None else None,
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
            f"{scope['method']} {route}", resource=scope["path"], actor=actor, status=status
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in MUTATING
            or scope["path"].startswith(OWN_AUDIT_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        status = 0
        audited = False
        root_path = scope.get("root_path", "")  # routing may rewrite it; the route needs it

        async def send_audited(message: Message) -> None:
            nonlocal status, audited
            if message["type"] == "http.response.start":
                status = message["status"]
            elif (
                message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and not audited
            ):
                audited = True
                event = self._event(scope, status, root_path)
                if self.durable:
                    await self.audit.writer.put_durable(event)
                else:
                    self.audit.writer.put(event)
            await send(message)

        try:
            await self.app(scope, receive, send_audited)
        finally:
            if not audited:  # no complete answer: the app raised, or the client went away
                self.audit.writer.put(self._event(scope, status or 500, root_path))
