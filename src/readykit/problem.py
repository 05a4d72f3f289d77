"""RFC 9457 problem details: every error the kit itself answers with."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from readykit._types import Scope, Send

PROBLEM_JSON = b"application/problem+json"


def problem_body(status: int, detail: str | None = None, **extra: Any) -> bytes:
    """Encode a problem+json body; `extra` members are added as extension fields."""
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase}
    body["status"] = status
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return json.dumps(body, separators=(",", ":"), default=str).encode()


async def send_problem(
    send: Send,
    status: int,
    detail: str | None = None,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    **extra: Any,
) -> None:
    """Send a complete problem+json response through an ASGI `send`."""
    body = problem_body(status, detail, **extra)
    await send_bytes(send, status, body, PROBLEM_JSON, headers)


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    head: bool = False,
) -> None:
    """Send a complete response with a known body (`head` sends the headers only)."""
    all_headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if headers:
        all_headers.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def refuse_method(
    scope: Scope, send: Send, allowed: tuple[str, ...] = ("GET", "HEAD")
) -> bool:
    """Answer 405 problem+json unless the method is allowed; True when it answered."""
    if scope["method"] in allowed:
        return False
    allow = ", ".join(allowed)
    await send_problem(
        send,
        405,
        f"{scope['method']} is not allowed on {scope['path']}; use {' or '.join(allowed)}",
        headers=[(b"allow", allow.encode())],
    )
    return True


async def refuse_unauthorized(send: Send) -> None:
    """Answer 401 problem+json asking for the ops token."""
    await send_problem(
        send,
        401,
        # not written as the header line: redaction takes a header line's value, hint and all
        "Send the ops token (READYKIT_OPS_TOKEN) as a Bearer token in the Authorization header.",
        headers=[(b"www-authenticate", b'Bearer realm="readykit"')],
    )
