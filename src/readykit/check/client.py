"""A bounded HTTP client: talks only to the target, within a per-probe request and time budget."""

from __future__ import annotations

import io
import json
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from readykit.clitools import check_url
from readykit.errors import ToolFailure

USER_AGENT = "readykit-check/0.1"
READ_LIMIT = 64 * 1024
REQUEST_TIMEOUT_S = 10.0
WRITE_METHODS = frozenset({"PUT", "PATCH"})
NEVER_METHODS = frozenset({"DELETE"})


class CheckToolError(ToolFailure):
    """The check itself could not run (target unreachable, bad arguments): exit code 3."""


class BudgetExhausted(Exception):
    """A probe used all the requests or time it was given."""


class RequestFailed(Exception):
    """No HTTP response: connection refused or reset, timeout, malformed response."""


@dataclass(frozen=True)
class Response:
    """One exchange: what was sent and the (first `READ_LIMIT` bytes of the) answer."""

    method: str
    path: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed_s: float
    sent_headers: Mapping[str, str] = field(default_factory=dict)
    sent_body_bytes: int = 0

    def header(self, name: str) -> str | None:
        """A response header, case-insensitive (all values joined by `, `)."""
        return self.headers.get(name.lower())

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON, or None."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
            return None

    def describe(self) -> str:
        """The request line and the headers we chose to send, for evidence."""
        parts = [f"{self.method} {self.path}"]
        parts += [f"{k}: {v}" for k, v in self.sent_headers.items()]
        if self.sent_body_bytes:
            parts.append(f"({self.sent_body_bytes} body bytes)")
        return "\n".join(parts)


async def _read_up_to(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """Read until EOF or `limit` bytes (a single read returns only what is buffered)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class Client:
    """An aiohttp session bound to one target origin; use `budget()` to get a probe's share.

    `clock` times every exchange and budget (tests pass a virtual-time loop's `time`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        allow_writes: bool = False,
        ssl_context: ssl.SSLContext | bool = True,
        connections: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            parts = check_url(base_url, schemes=("http", "https"))
        except ValueError as exc:
            raise CheckToolError(str(exc)) from None
        self.base_url = base_url.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.allow_writes = allow_writes
        self.clock = clock
        self._ssl = ssl_context
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self.mutations = 0  # POST/PUT/PATCH sent: the inside view asks how many were audited
        # (request id, method, path, status) of each mutation answered: matched to audit events
        self.sent_mutations: list[tuple[str, str, str, int]] = []

    async def __aenter__(self) -> Client:
        connector = aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl)
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT},
            auto_decompress=True,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def budget(self, max_requests: int, time_s: float) -> Budget:
        """A share of the client: at most `max_requests` requests, none after `time_s` seconds."""
        return Budget(self, max_requests, self.clock() + time_s)

    def url(self, path: str) -> str:
        """The absolute URL of `path` on the target; anything else is refused."""
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError(f"only paths on the target are allowed, not {path!r}")
        return self.base_url + path

    async def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
        read_limit: int = READ_LIMIT,
    ) -> Response:
        """One request, no redirects followed, at most `read_limit` body bytes read."""
        method = method.upper()
        if method in NEVER_METHODS:
            raise ValueError(f"{method} is never sent by readykit check")
        if method in WRITE_METHODS and not self.allow_writes:
            raise ValueError(f"{method} is only sent with --allow-writes")
        assert self._session is not None, "use the client as an async context manager"
        headers = dict(headers or {})
        request_id = None
        if method in ("POST", "PUT", "PATCH"):
            self.mutations += 1
            if not any(k.lower() == "x-request-id" for k in headers):
                request_id = headers["X-Request-ID"] = f"rkcheck-{uuid.uuid4().hex}"
        started = self.clock()
        try:
            async with self._session.request(
                method,
                self.url(path),
                headers=headers,
                # aiohttp warns about big raw bytes; a BytesIO is streamed with a Content-Length
                data=io.BytesIO(data) if data is not None and len(data) > 65536 else data,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=max(timeout_s, 0.05)),
            ) as resp:
                body = await _read_up_to(resp.content, read_limit)
                elapsed = self.clock() - started
                resp_headers = {k.lower(): ", ".join(resp.headers.getall(k)) for k in resp.headers}
                if not resp.content.at_eof():
                    resp.close()  # do not drain an endless body
                if request_id is not None:
                    self.sent_mutations.append((request_id, method, path, resp.status))
                return Response(
                    method,
                    path,
                    resp.status,
                    resp_headers,
                    body,
                    elapsed,
                    dict(headers),
                    len(data or b""),
                )
        except TimeoutError as exc:
            raise RequestFailed(f"{method} {path}: no response within {timeout_s:.1f}s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise RequestFailed(f"{method} {path}: {type(exc).__name__}: {exc}") from exc


class Budget:
    """A probe's share of the client: counts requests and watches its deadline."""

    def __init__(self, client: Client, max_requests: int, deadline: float) -> None:
        self.client = client
        self.max_requests = max_requests
        self.deadline = deadline
        self.used = 0
        self.answered = 0  # requests that got an HTTP response
        self.limited = 0  # ...of which 429: the target's rate limit, not the target
        self.retry_after: str | None = None  # the last 429's Retry-After, as sent

    @property
    def mostly_limited(self) -> bool:
        """True if most answers were 429: what came back was the target's rate limit, so
        nothing about the target itself can be judged from them."""
        return self.limited > 0 and self.limited * 2 >= self.answered

    def note(self, resp: Response) -> Response:
        """Count `resp` (429s apart, with their Retry-After)."""
        self.count(1, int(resp.status == 429))
        if resp.status == 429:
            self.retry_after = resp.header("retry-after") or self.retry_after
        return resp

    def count(self, answered: int, limited: int) -> None:
        """Count answers got outside `request` (the load engine's)."""
        self.answered += answered
        self.limited += limited

    @property
    def remaining(self) -> int:
        return self.max_requests - self.used

    def time_left(self) -> float:
        return self.deadline - self.client.clock()

    def has(self, requests: int = 1) -> bool:
        """True if `requests` more fit in the budget, counted and timed."""
        return self.remaining >= requests and self.time_left() > 0

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        read_limit: int = READ_LIMIT,
    ) -> Response:
        """Send within the budget, or raise `BudgetExhausted`."""
        left = self.time_left()
        if self.used >= self.max_requests or left <= 0:
            raise BudgetExhausted(f"{self.used} requests sent, {max(left, 0):.1f}s left")
        self.used += 1
        resp = await self.client.send(
            method,
            path,
            headers=headers,
            data=data,
            timeout_s=min(REQUEST_TIMEOUT_S, left),
            read_limit=read_limit,
        )
        return self.note(resp)

    async def get(self, path: str, *, headers: Mapping[str, str] | None = None) -> Response:
        """GET within the budget."""
        return await self.request("GET", path, headers=headers)

    async def try_request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        read_limit: int = READ_LIMIT,
    ) -> Response | None:
        """Like `request`, but a failed exchange is None (the budget still raises)."""
        try:
            return await self.request(
                method, path, headers=headers, data=data, read_limit=read_limit
            )
        except RequestFailed:
            return None
