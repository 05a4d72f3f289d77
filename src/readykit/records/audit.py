"""The audit log: `await kit.audit.record(...)`, and automatic audit of mutating requests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from readykit.context import current_request_id
from readykit.logging.redact import Redactor
from readykit.record import RequestRecord
from readykit.records.batch import BatchWriter
from readykit.records.store import AUDIT, new_id

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# the kit's own endpoints that write audit events of their own
OWN_AUDIT_PREFIXES = ("/privacy/",)


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
        """The audit event as stored (redacted details, a fresh id, the request id if any)."""
        return {
            "id": new_id(),
            "kind": AUDIT,
            "ts": self.clock(),
            "actor": actor,
            "action": action,
            "resource": resource,
            "status": status,
            "request_id": request_id if request_id is not None else current_request_id(),
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

    def auto(self, record: RequestRecord) -> None:
        """Recorder: audit each POST/PUT/PATCH/DELETE the app answered (not the kit's own)."""
        if record.method not in MUTATING or record.path.startswith(OWN_AUDIT_PREFIXES):
            return
        self.writer.put(
            self.event(
                f"{record.method} {record.route}",
                resource=record.path,
                actor=record.principal,
                status=record.status,
                request_id=record.request_id,
            )
        )
