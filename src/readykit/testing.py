"""Helpers for testing services wrapped by readykit (and readykit itself): no server needed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from readykit._types import ASGIApp, Message
from readykit.record import RequestRecord


class FakeClock:
    """A monotonic clock that moves only when told to; pass it where a `clock=` is taken."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class RecordCollector:
    """A recorder that keeps every RequestRecord it is handed."""

    records: list[RequestRecord] = field(default_factory=list)

    def __call__(self, record: RequestRecord) -> None:
        self.records.append(record)


@dataclass
class Response:
    """What an ASGI app sent for one request."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    messages: list[Message]

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        for k, v in self.headers:
            if k.lower() == key:
                return v.decode("latin-1")
        return None

    def json(self) -> Any:
        return json.loads(self.body)


async def asgi_request(
    app: ASGIApp,
    method: str,
    path: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | Iterable[bytes] = b"",
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    scheme: str = "http",
    query_string: bytes = b"",
    server: tuple[str, int] = ("127.0.0.1", 8000),
) -> Response:
    """Call `app` with one HTTP request (body as one chunk or several) and collect the messages."""
    chunks = [body] if isinstance(body, bytes) else list(body)
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": client,
        "server": server,
    }
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()  # like a server: nothing more until the client leaves
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Response(start["status"], list(start.get("headers", [])), payload, sent)


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[list[Message]]:
    """Run the ASGI lifespan of `app` around the block; yields the messages the app sent.

    Raises RuntimeError if startup fails, with the app's message.
    """
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        await outbox.put(message)

    task = asyncio.ensure_future(app({"type": "lifespan", "state": {}}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    reply = await outbox.get()
    if reply["type"] != "lifespan.startup.complete":
        await task
        raise RuntimeError(reply.get("message", "lifespan startup failed"))
    try:
        yield sent
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task
