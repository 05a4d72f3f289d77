"""The one immutable record of a served request, and the recorder protocol that consumes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

ROUTE_UNMATCHED = "UNMATCHED"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What the ASGI layer measured about one request; handed to every recorder once."""

    request_id: str
    method: str
    route: str
    path: str
    status: int
    started_at: float
    """Wall-clock start, seconds since the epoch."""
    duration_s: float
    request_bytes: int
    response_bytes: int
    client: str | None
    user_agent: str | None
    scheme: str
    principal: str | None
    exception: BaseException | None = None


Recorder = Callable[[RequestRecord], None]
"""A plain callable that must not block: count in memory, or put on a bounded queue."""
