"""CORS through the kit: listed origins only; never an arbitrary Origin echoed with credentials.

`*` in the origins answers `Access-Control-Allow-Origin: *` (no echo), and is refused at startup
together with credentials, which browsers would reject anyway and which some hand-written
middlewares "fix" by echoing any Origin, opening the API to every site a user visits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from readykit.errors import ConfigurationError
from readykit.headers import get_header
from readykit.stage import Answer, Exchange, Headers

if TYPE_CHECKING:
    from readykit.guards.config import CorsConfig

_VARY = (b"vary", b"Origin")


def cors_origins(config: CorsConfig) -> list[str]:
    """The configured origins; raises ConfigurationError for `*` with credentials or a value
    that is not an origin (the section's validator, readykit.guards.config)."""
    origins = [o.rstrip("/") for o in config.cors_allow_origins]
    if "*" in origins and config.cors_allow_credentials:
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


class Cors:
    """Stage: answers preflights and adds CORS headers for the configured origins."""

    def __init__(self, *, config: CorsConfig) -> None:
        origins = cors_origins(config)
        self.any_origin = "*" in origins
        self.origins = frozenset(o.encode() for o in origins if o != "*")
        self.credentials = config.cors_allow_credentials
        self.methods = ", ".join(m.upper() for m in config.cors_allow_methods).encode()
        self.allowed_methods = frozenset(m.upper().encode() for m in config.cors_allow_methods)
        self.headers = ", ".join(h.lower() for h in config.cors_allow_headers).encode()
        self.allowed_headers = frozenset(h.lower() for h in config.cors_allow_headers)
        self.max_age = str(config.cors_max_age_s).encode()

    def _allow_origin(self, origin: bytes) -> bytes | None:
        if origin in self.origins:
            return origin
        return b"*" if self.any_origin else None

    def request(self, ex: Exchange) -> Answer | None:
        if ex.origin is None or ex.method != "OPTIONS" or ex.cors_method is None:
            return None
        return self._preflight(self._allow_origin(ex.origin), ex.cors_method, ex.cors_headers)

    def response(self, ex: Exchange, status: int, headers: Headers) -> bool:
        if ex.origin is None:
            return False
        allowed = self._allow_origin(ex.origin)
        if allowed is None:  # no CORS headers: the browser blocks it
            return False
        if get_header(headers, b"access-control-allow-origin") is None:  # the app's wins
            headers.append((b"access-control-allow-origin", allowed))
            headers.append(_VARY)
            if self.credentials and allowed != b"*":
                headers.append((b"access-control-allow-credentials", b"true"))
        return False

    def _preflight(self, allowed: bytes | None, method: bytes, headers: bytes | None) -> Answer:
        asked = {h.strip().lower() for h in (headers or b"").decode("latin-1").split(",")}
        asked.discard("")
        if allowed is None or method.upper() not in self.allowed_methods:
            return Answer(403, "This origin or method is not allowed by CORS.")
        if not asked <= self.allowed_headers:
            return Answer(403, "A requested header is not allowed by CORS.")
        response = [
            (b"access-control-allow-origin", allowed),
            (b"access-control-allow-methods", self.methods),
            (b"access-control-allow-headers", self.headers),
            (b"access-control-max-age", self.max_age),
            _VARY,
        ]
        if self.credentials and allowed != b"*":
            response.append((b"access-control-allow-credentials", b"true"))
        return Answer(204, headers=response)
