"""Response caching for the GET/HEAD routes listed in `Settings.cache_routes`.

The key is the path, query, the origin the client asked for (the `Host` header, the scope's
scheme and root path, and every `Forwarded`/`X-Forwarded-Host`/`-Proto`/`-Port`/`-Prefix`
value present: a page with absolute links built for `evil.example` is never served on
`shop.example`), the values of the request headers the response named in `Vary`, and the
principal: one user's response is never served to another, and anonymous responses are kept
apart from every user's. When the principal resolver names nobody, a request carrying a
credential (`Authorization`, `Cookie`, `X-API-Key`, `X-Auth-Token`, any header whose name the
redaction rules call sensitive) is keyed by a hash of those headers, so its entries are its own.

Only GET responses are stored: a HEAD is answered from the GET entry (without the body) or
passed to the app. A request with a body (`Content-Length` > 0 or `Transfer-Encoding`) skips
the cache: its answer may depend on what the key does not hold. Only complete 200 responses
without `Set-Cookie` and without `Cache-Control: no-store`/`private` are stored. Each gets a
strong ETag, so `If-None-Match` is answered with 304, and a `Cache-Control` max-age.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from readykit._types import ASGIApp, Message, Receive, Scope, Send
from readykit.cache.function import SingleFlight
from readykit.cache.store import Cache
from readykit.deadlines import SCOPE_KEY as DEADLINE_KEY
from readykit.headers import cache_directives, get_header, joined_header, without
from readykit.logging.redact import Redactor
from readykit.route_table import RouteTable, route_path

MAX_BODY_BYTES = 1 << 20
_SKIP = frozenset({b"content-length", b"date", b"x-request-id", b"etag", b"x-cache"})


_UNSHAREABLE = frozenset({b"no-store", b"private", b"no-cache"})
# request headers that identify a caller whom the principal resolver may not know; any header
# whose name the redaction rules call sensitive counts too (`sensitive=` of the guard)
_CREDENTIALS = frozenset(
    {b"authorization", b"proxy-authorization", b"cookie", b"x-api-key", b"api-key", b"x-auth-token"}
)
# request headers that choose the origin an app builds its absolute links from (believed or not
# by `TrustedProxies`, differing values never share an entry)
_ORIGIN = (
    b"host",
    b"forwarded",
    b"x-forwarded-host",
    b"x-forwarded-proto",
    b"x-forwarded-port",
    b"x-forwarded-prefix",
)


def _all_values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[str]:
    return [bytes(v).decode("latin-1") for k, v in headers if k.lower() == name]


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """True if the request says it carries a body (a GET search with a JSON query)."""
    if get_header(headers, b"transfer-encoding") is not None:
        return True
    length = get_header(headers, b"content-length")
    return length is not None and length.strip() not in (b"", b"0")


def _vary(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    """The lower-cased names of every `Vary` line (`*` included, as a name)."""
    value = joined_header(headers, b"vary") or b""
    return {name.strip().lower() for name in value.split(b",") if name.strip()}


def _cacheable(status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    """A complete 200 that names no cookie, no private or no-store (on any `Cache-Control`
    line), and does not vary on `*` (alone or in a list: GZip middleware turns `Vary: *` into
    `Vary: *, Accept-Encoding`)."""
    if status != 200 or get_header(headers, b"set-cookie") is not None:
        return False
    if b"*" in _vary(headers):
        return False
    return not cache_directives(joined_header(headers, b"cache-control")) & _UNSHAREABLE


class ResponseCacheGuard:
    """Pure-ASGI guard serving stored responses of the configured routes.

    Args:
        routes: TTL seconds per `"GET /route"` key.
        principal: who is calling; part of every key.
        tags: per route key, the tags its entries carry (so `invalidate(tag)` drops them).
        sensitive: whether a request header name holds a credential (default: the built-in
            redaction rules); such headers key the entries of callers the principal resolver
            does not name.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cache: Cache,
        routes: RouteTable[float],
        principal: Callable[[Scope], str | None],
        tags: dict[str, tuple[str, ...]] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        sensitive: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        self.cache = cache
        self.routes = routes
        self.principal = principal
        self.tags = tags or {}
        self.max_body_bytes = max_body_bytes
        self.sensitive = sensitive or Redactor().is_sensitive_key
        self.hits = cache.metrics.hits.labels("response")
        self.misses = cache.metrics.misses.labels("response")
        self.flights = SingleFlight()
        # per route: the request headers its responses vary on (every name any of its
        # responses gave in `Vary`, learned as they come)
        self.vary: dict[str, tuple[bytes, ...]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"] if scope["type"] == "http" else ""
        match = self.routes.match("GET", route_path(scope)) if method in ("GET", "HEAD") else None
        headers: list[tuple[bytes, bytes]] = scope["headers"] if match is not None else []
        if match is None or _has_body(headers):
            await self.app(scope, receive, send)
            return
        request_control = cache_directives(joined_header(headers, b"cache-control"))
        route_key, ttl = match.key, match.value
        principal = self.principal(scope) or ""
        if not principal:
            # credentials the resolver cannot name (a Django session, an API key read by the
            # app): the caller is still someone, so their entries are theirs alone
            presented = self._credentials(headers)
            if presented:
                digest = hashlib.sha256(json.dumps(presented).encode()).hexdigest()
                principal = "credentials:" + digest
        base = [
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            principal,
            self._origin(scope, headers),
        ]
        vary = self.vary.get(route_key, ())
        key = self._key(route_key, base, vary, headers)
        if b"no-cache" not in request_control and b"no-store" not in request_control:
            stored = await self.cache.get(key)
            if stored is not None:
                self.hits.inc()
                # the app's router never saw this request: name its route for metrics and logs
                scope["path_template"] = route_key.split(" ", 1)[-1]
                await self._answer(stored, scope, send, b"HIT")
                return
        self.misses.inc()
        if method == "HEAD":
            # an app may answer HEAD without its body (a FileResponse): never a GET's entry
            await self.app(scope, receive, send)
            return
        computed = False

        async def compute() -> tuple[bytes, str, tuple[bytes, ...]] | None:
            nonlocal computed
            computed = True
            return await self._compute(scope, receive, send, route_key, base, ttl, principal)

        # a cold key under a stampede: one request computes, the others wait and share it
        result = await self.flights.run(key, compute)
        if computed:
            return  # the computing request has answered its client already
        if result is not None and self._key(route_key, base, result[2], headers) == result[1]:
            scope["path_template"] = route_key.split(" ", 1)[-1]
            await self._answer(result[0], scope, send, b"HIT")
        elif result is not None:
            # the response varies on headers whose values differ from the computing request's
            # (a `Vary` learned only now): this caller's variant is its own
            await self._compute(scope, receive, send, route_key, base, ttl, principal)
        else:  # what the app answered could not be shared: ask it again
            await self.app(scope, receive, send)

    def _credentials(self, headers: list[tuple[bytes, bytes]]) -> list[list[str]]:
        """Every line of every credential-like request header as (name, value), by name; the
        lines of one header keep their order (`Cookie` lines are joined in order)."""
        return sorted(
            (
                [k.lower().decode("latin-1"), bytes(v).decode("latin-1")]
                for k, v in headers
                if k.lower() in _CREDENTIALS or self.sensitive(k.decode("latin-1"))
            ),
            key=lambda pair: pair[0],
        )

    @staticmethod
    def _origin(scope: Scope, headers: list[tuple[bytes, bytes]]) -> list[Any]:
        """What an app builds its absolute URLs from: scheme, root path, host, forwarded ones;
        the address the server listens on only without a `Host` (instances behind one name
        share their entries in Redis: each has its own address)."""
        origin = [_all_values(headers, name) for name in _ORIGIN]
        server = scope.get("server") if not origin[0] else None  # origin[0]: the Host lines
        return [
            scope.get("scheme", "http"),
            scope.get("root_path", ""),
            list(server) if server else None,
            origin,
        ]

    def _key(
        self,
        route_key: str,
        base: list[Any],
        vary: tuple[bytes, ...],
        headers: list[tuple[bytes, bytes]],
    ) -> str:
        # names with their values: `Accept-Language: acme` must not find `X-Tenant: acme`'s entry
        varied = [
            [name.decode("latin-1"), (joined_header(headers, name) or b"").decode("latin-1")]
            for name in vary
        ]
        digest = hashlib.sha256(json.dumps([base, varied]).encode()).hexdigest()
        return f"response:{route_key}:{digest}"

    async def _compute(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route_key: str,
        base: list[Any],
        ttl: float,
        principal: str,
    ) -> tuple[bytes, str, tuple[bytes, ...]] | None:
        """Run the app and answer the client; the stored entry with its key and the headers
        it varies on, or None if not cacheable."""
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0
        passing = False  # not cacheable, or too big: stream straight through
        stored: tuple[bytes, str, tuple[bytes, ...]] | None = None

        async def capture(message: Message) -> None:
            nonlocal start, size, passing, stored
            if message["type"] == "http.response.start":
                start = message
                deadline = scope.get(DEADLINE_KEY)
                if deadline is not None:  # the app's answer has started, if not the client's
                    deadline.disarm()
                if not _cacheable(message["status"], list(message.get("headers", ()))):
                    passing = True
                    await send(message)
                return
            if message["type"] != "http.response.body" or passing or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_body_bytes:  # stop buffering: send what we have, then stream
                passing = True
                await send(start)
                await send(
                    {"type": "http.response.body", "body": b"".join(chunks), "more_body": more}
                )
                chunks.clear()
                return
            if not more:
                stored = await self._store(scope, route_key, base, ttl, principal, start, chunks)
                await self._answer(stored[0], scope, send, b"MISS")

        await self.app(scope, receive, capture)
        return stored

    async def _store(
        self,
        scope: Scope,
        route_key: str,
        base: list[Any],
        ttl: float,
        principal: str,
        start: Message,
        chunks: list[bytes],
    ) -> tuple[bytes, str, tuple[bytes, ...]]:
        response_headers = list(start.get("headers", ()))
        vary = _vary(response_headers)
        learned = self.vary.get(route_key, ())
        if vary - set(learned):  # every name any path of the route varied on keys its entries
            self.vary[route_key] = tuple(sorted(vary.union(learned)))
        entry = _encode(start["status"], response_headers, b"".join(chunks), ttl, bool(principal))
        varied = self.vary.get(route_key, ())
        key = self._key(route_key, base, varied, scope["headers"])
        await self.cache.set(key, entry, ttl, self.tags.get(route_key, ()))
        return entry, key, varied

    async def _answer(self, entry: bytes, scope: Scope, send: Send, state: bytes) -> None:
        status, headers, body, etag = _decode(entry)
        match = get_header(scope["headers"], b"if-none-match")
        headers = [*headers, (b"etag", etag), (b"x-cache", state)]
        if match is not None and (match.strip() == b"*" or etag in _etags(match)):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )


def _etags(header: bytes) -> list[bytes]:
    return [t.strip().removeprefix(b"W/") for t in header.split(b",")]


def _encode(
    status: int, headers: list[tuple[bytes, bytes]], body: bytes, ttl: float, private: bool
) -> bytes:
    kept = without(headers, _SKIP)
    if get_header(kept, b"cache-control") is None:
        scope_word = "private" if private else "public"
        kept.append((b"cache-control", f"{scope_word}, max-age={int(ttl)}".encode()))
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    meta: dict[str, Any] = {
        "status": status,
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in kept],
        "etag": etag,
    }
    head = json.dumps(meta, separators=(",", ":")).encode()
    return len(head).to_bytes(4, "big") + head + body


def _decode(entry: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes, bytes]:
    size = int.from_bytes(entry[:4], "big")
    meta = json.loads(entry[4 : 4 + size])
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in meta["headers"]]
    return meta["status"], headers, entry[4 + size :], meta["etag"].encode()
