"""Stages: guards compiled into the kit's one ASGI layer, with no layer (and no coroutine) each.

A stage looks at a request before the app runs (`request`: refuse it, or note what the response
will need) and at the response's start (`response`: add or change headers). The kit's layer reads
the request headers once into an `Exchange`, runs every stage's `request` in order, calls the app
once, and at the response's start runs every `response` hook innermost first. readykit's own
guards (security headers, CORS, rate limit, body and time limits) are stages; a guard that must
wrap the app's `receive`/`send` itself (the audit, the response cache) stays an ASGI guard
(`Setup.add_guard`), skipped for requests its `when` says it does not concern.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

from readykit._types import Scope, Send
from readykit.deadlines import Deadline
from readykit.problem import send_bytes, send_problem
from readykit.route_table import route_path

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Answer:
    """What a stage answers instead of the app: a problem+json (when `detail` is set) or an
    empty response (a CORS preflight's 204)."""

    status: int
    detail: str | None = None
    headers: Headers = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)

    async def send(self, send: Send) -> None:
        """Send this answer (through the kit's wrapper, which dresses it)."""
        headers = list(self.headers)
        if self.detail is None:
            await send_bytes(send, self.status, b"", b"text/plain", headers)
        else:
            await send_problem(send, self.status, self.detail, headers=headers, **self.fields)


class Exchange:
    """One request as the kit's layer sees it: read once, shared by every stage."""

    __slots__ = (
        "answered_by",
        "body_limit",
        "chunked",
        "content_length",
        "cors_headers",
        "cors_method",
        "deadline",
        "extra",
        "framing",
        "late",
        "method",
        "origin",
        "path",
        "request_id",
        "scope",
        "timeout_s",
        "user_agent",
    )

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path = route_path(scope)  # as the app routes it (the guards' route keys)
        self.request_id = ""
        self.user_agent: bytes | None = None
        self.content_length: bytes | None = None
        self.chunked = False
        self.origin: bytes | None = None
        self.cors_method: bytes | None = None  # Access-Control-Request-Method
        self.cors_headers: bytes | None = None  # Access-Control-Request-Headers
        self.body_limit: int | None = None  # set by a stage: count a body of unknown length
        self.timeout_s: float | None = None  # set by a stage: answer 504 past this
        self.extra: Headers | None = None  # set by a stage: headers every answer carries
        self.answered_by: int | None = None  # the stage that answered instead of the app
        self.deadline: Deadline | None = None  # the time limit, while armed
        self.late = False  # the app answered after its time limit fired: dropped for the 504
        self.framing: tuple[int | None, bool] | None = None  # body_framing(), once worked out

    def drops(self, kind: str) -> bool:
        """Whether the app's message `kind` belongs to an answer sent after its time limit
        fired (dropped: the 504 goes out instead). A response start in time disarms the limit:
        the response is under way, let it finish."""
        if kind == "http.response.start":
            deadline = self.deadline
            if deadline is not None:
                if deadline.expired:
                    self.late = True
                    return True
                deadline.disarm()
            return False
        return self.late

    def body_framing(self) -> tuple[int | None, bool]:
        """(the declared Content-Length if usable, whether the body must be counted as it comes).

        HTTP/1.x servers deliver exactly Content-Length bytes, and no body at all when neither it
        nor Transfer-Encoding is sent (most GETs): then nothing needs counting. A chunked body, a
        malformed length, or HTTP/2 (where the length is optional) is counted.

        Worked out once per request (the kit's layer and the body limit both ask).
        """
        if self.framing is not None:
            return self.framing
        declared: int | None = None
        malformed = False
        if self.content_length is not None:
            try:
                declared = int(self.content_length)
            except ValueError:
                malformed = True
            else:
                if declared < 0:
                    declared, malformed = None, True
        http1 = self.scope.get("http_version", "1.1") in ("1.1", "1.0")
        framing = self.framing = (declared, self.chunked or malformed or not http1)
        return framing

    def read_headers(self, headers: list[tuple[bytes, bytes]]) -> bytes | None:
        """One pass over the request headers; returns the incoming X-Request-ID, if any."""
        incoming = None
        for key, value in headers:
            key = key.lower()
            if key == b"x-request-id":
                incoming = value
            elif key == b"user-agent":
                self.user_agent = value
            elif key == b"content-length":
                self.content_length = value
            elif key == b"transfer-encoding":
                self.chunked = True
            elif key == b"origin":
                self.origin = value
            elif key == b"access-control-request-method":
                self.cors_method = value
            elif key == b"access-control-request-headers":
                self.cors_headers = value
        return incoming


class Stage(Protocol):
    """A guard compiled into the kit's layer (see the module doc)."""

    def request(self, ex: Exchange) -> Answer | Awaitable[Answer | None] | None:
        """Before the app: an Answer refuses the request (the app is not called); None lets it
        through. A stage that must wait (a rate limit in Redis) returns an awaitable."""

    def response(self, ex: Exchange, status: int, headers: Headers) -> bool:
        """At the response's start (or a refusal's, by a later stage): change `headers` in
        place. True asks the layer to hold the body and call `complete` with it."""


class Completing(Stage, Protocol):
    """A stage that rewrites the headers once it has seen the whole body (the HTML policy's
    script hashes)."""

    hold_max_bytes: int
    """The largest body held for `complete`; a larger one is sent as it comes."""

    def complete(self, ex: Exchange, headers: Headers, body: bytes | None) -> Headers:
        """The final headers for `body` (None: too large or cut short; keep them)."""
