"""CORS through the kit: listed origins only; never an arbitrary Origin echoed with credentials.

`*` in the origins answers `Access-Control-Allow-Origin: *` (no echo), and is refused at startup
together with credentials, which browsers would reject anyway and which some hand-written
middlewares "fix" by echoing any Origin, opening the API to every site a user visits.
"""

from __future__ import annotations

from readykit._types import ASGIApp, Message, Receive, Scope, Send
from readykit.errors import ConfigurationError
from readykit.headers import get_header
from readykit.problem import send_bytes, send_problem
from readykit.settings import Settings

_VARY = (b"vary", b"Origin")


def validate_cors(settings: Settings) -> list[str]:
    """The configured origins; raises ConfigurationError for `*` with credentials or a value
    that is not an origin."""
    origins = [o.rstrip("/") for o in settings.cors_allow_origins]
    if "*" in origins and settings.cors_allow_credentials:
        raise ConfigurationError(
            "cors_allow_origins: '*' cannot be combined with cors_allow_credentials=true; "
            "list the origins that may send credentials"
        )
    for origin in origins:
        if origin != "*" and "://" not in origin:
            raise ConfigurationError(
                f"cors_allow_origins: {origin!r} is not an origin (scheme://host[:port])"
            )
    return origins


class CorsGuard:
    """Answers preflights and adds CORS headers for the configured origins."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        origins = validate_cors(settings)
        self.any_origin = "*" in origins
        self.app = app
        self.origins = frozenset(o.encode() for o in origins if o != "*")
        self.credentials = settings.cors_allow_credentials
        self.methods = ", ".join(m.upper() for m in settings.cors_allow_methods).encode()
        self.allowed_methods = frozenset(m.upper().encode() for m in settings.cors_allow_methods)
        self.headers = ", ".join(h.lower() for h in settings.cors_allow_headers).encode()
        self.allowed_headers = frozenset(h.lower() for h in settings.cors_allow_headers)
        self.max_age = str(settings.cors_max_age_s).encode()

    def _allow_origin(self, origin: bytes) -> bytes | None:
        if origin in self.origins:
            return origin
        return b"*" if self.any_origin else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = request_method = request_headers = None
        for key, value in scope["headers"]:
            key = key.lower()
            if key == b"origin":
                origin = value
            elif key == b"access-control-request-method":
                request_method = value
            elif key == b"access-control-request-headers":
                request_headers = value
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = self._allow_origin(origin)
        if scope["method"] == "OPTIONS" and request_method is not None:
            await self._preflight(send, allowed, request_method, request_headers)
            return
        if allowed is None:
            await self.app(scope, receive, send)  # no CORS headers: the browser blocks it
            return
        extra = [(b"access-control-allow-origin", allowed), _VARY]
        if self.credentials and allowed != b"*":
            extra.append((b"access-control-allow-credentials", b"true"))

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if get_header(headers, b"access-control-allow-origin") is None:  # app's wins
                    headers.extend(extra)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(
        self,
        send: Send,
        allowed: bytes | None,
        method: bytes,
        headers: bytes | None,
    ) -> None:
        asked = {h.strip().lower() for h in (headers or b"").decode("latin-1").split(",")}
        asked.discard("")
        if allowed is None or method.upper() not in self.allowed_methods:
            await send_problem(send, 403, "This origin or method is not allowed by CORS.")
            return
        if not asked <= self.allowed_headers:
            await send_problem(send, 403, "A requested header is not allowed by CORS.")
            return
        response = [
            (b"access-control-allow-origin", allowed),
            (b"access-control-allow-methods", self.methods),
            (b"access-control-allow-headers", self.headers),
            (b"access-control-max-age", self.max_age),
            _VARY,
        ]
        if self.credentials and allowed != b"*":
            response.append((b"access-control-allow-credentials", b"true"))
        await send_bytes(send, 204, b"", b"text/plain", response)
