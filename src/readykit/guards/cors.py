"""CORS through the kit: listed origins only; never an arbitrary Origin echoed with credentials.

`*` in the origins answers `Access-Control-Allow-Origin: *` (no echo), and is refused at startup
together with credentials, which browsers would reject anyway and which some hand-written
middlewares "fix" by echoing any Origin, opening the API to every site a user visits.

Caches: when origins are listed, whether and what `Access-Control-Allow-Origin` says depends on
the request's `Origin`, so every response the guard passes says `Vary: Origin` (requests without
an Origin and refused origins included): a shared cache, or a browser's, that stored the answer
to a navigation (no Origin, no CORS headers) must not serve it to the allowed origin's fetch().
With `*` alone the answer does not depend on the Origin: every response says
`Access-Control-Allow-Origin: *`, with or without an Origin, and needs no `Vary`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from readykit.errors import ConfigurationError
from readykit.headers import joined_header
from readykit.stage import Answer, Exchange, Headers

if TYPE_CHECKING:
    from readykit.guards.config import CorsConfig

_VARY = (b"vary", b"Origin")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# never in a serialized origin (RFC 6454): a pattern (`*.example.com`), a list in one entry
# (`"https://a.example, https://b.example"`), a query, a fragment, userinfo, a space
_NOT_IN_ORIGIN = "*,?#@\\ \t\r\n"


def _refused(entry: str, why: str) -> ConfigurationError:
    return ConfigurationError(
        f"cors_allow_origins: {entry!r} is not an origin ({why}); "
        "write scheme://host[:port] as browsers send it"
    )


def normalized_origin(entry: str) -> str:
    """`entry` as browsers send it in `Origin` (lower-case scheme and host, no default port, no
    trailing slash); ConfigurationError for anything that could never match an `Origin`."""
    if "://" not in entry:
        raise _refused(entry, "no scheme")
    for char in _NOT_IN_ORIGIN:
        if char in entry:
            why = "one origin per entry" if char == "," else f"{char!r} cannot appear in one"
            raise _refused(entry, why)
    if not entry.isprintable():
        raise _refused(entry, "a control character")
    if not entry.isascii():
        raise _refused(entry, "write the host in its ASCII (punycode) form, as browsers send it")
    try:
        parts = urlsplit(entry)
    except ValueError as exc:  # an unclosed `[` of an IPv6 address
        raise _refused(entry, str(exc)) from None
    # any scheme: `capacitor://localhost`, `tauri://localhost`, `chrome-extension://<id>` are
    # origins real apps send; default ports are dropped for http and https only
    scheme = parts.scheme.lower()
    if not scheme:
        raise _refused(entry, "no scheme")
    if parts.path not in ("", "/"):
        raise _refused(entry, "an origin has no path")
    host = parts.hostname  # lower-cased by urlsplit; IPv6 without its brackets
    if not host:
        raise _refused(entry, "no host")
    try:
        port = parts.port
    except ValueError:
        raise _refused(entry, "the port is not a number from 0 to 65535") from None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def cors_origins(config: CorsConfig) -> list[str]:
    """The configured origins as browsers send them (`*` kept as is); raises
    ConfigurationError for `*` with credentials or a value that is not an origin (the
    section's validator, readykit.guards.config)."""
    if "*" in config.cors_allow_origins and config.cors_allow_credentials:
        raise ConfigurationError(
            "cors_allow_origins: '*' cannot be combined with cors_allow_credentials=true; "
            "list the origins that may send credentials"
        )
    return [o if o == "*" else normalized_origin(o) for o in config.cors_allow_origins]


_APPS_OWN = (b"access-control-allow-origin", b"access-control-allow-credentials")


def _app_handles_cors(headers: Headers) -> bool:
    """Whether the app answered CORS itself: it set `Access-Control-Allow-Origin` or
    `-Allow-Credentials` (in any case). Then the guard adds none of its own, only
    `Vary: Origin` (no duplicate Allow-Credentials); an app that only exposes headers
    (`Access-Control-Expose-Headers: X-Total-Count`) still gets the guard's Allow-Origin."""
    return any(key.lower() in _APPS_OWN for key, _ in headers)


def _vary_on_origin(headers: Headers) -> None:
    """Add `Origin` to the response's `Vary`, in place: to its existing line (whatever the case
    of its name; the last, if the app sent several) rather than as a second one; nothing if it
    names `Origin` or `*` already."""
    value = joined_header(headers, b"vary")
    if value is None:
        headers.append(_VARY)
        return
    names = {name.strip().lower() for name in value.split(b",")}
    if b"origin" in names or b"*" in names:
        return
    for i in range(len(headers) - 1, -1, -1):
        key, line = headers[i]
        if key.lower() == b"vary":
            line = bytes(line).strip()
            headers[i] = (key, line + b", Origin" if line else b"Origin")
            return


class Cors:
    """Stage: answers preflights and adds CORS headers for the configured origins."""

    def __init__(self, *, config: CorsConfig) -> None:
        origins = cors_origins(config)
        self.any_origin = "*" in origins
        self.origins = frozenset(o.encode() for o in origins if o != "*")
        # listed origins: what the answer says depends on the Origin (module doc)
        self.vary = bool(self.origins)
        self.credentials = config.cors_allow_credentials
        self.methods = ", ".join(m.upper() for m in config.cors_allow_methods).encode()
        self.allowed_methods = frozenset(m.upper().encode() for m in config.cors_allow_methods)
        self.headers = ", ".join(h.lower() for h in config.cors_allow_headers).encode()
        self.allowed_headers = frozenset(h.lower() for h in config.cors_allow_headers)
        self.max_age = str(config.cors_max_age_s).encode()

    def _allow_origin(self, origin: bytes | None) -> bytes | None:
        if origin is None:  # `*` alone says `*` to every request (module doc)
            return b"*" if self.any_origin and not self.vary else None
        if origin in self.origins:
            return origin
        return b"*" if self.any_origin else None

    def request(self, ex: Exchange) -> Answer | None:
        if ex.origin is None or ex.method != "OPTIONS" or ex.cors_method is None:
            return None
        return self._preflight(self._allow_origin(ex.origin), ex.cors_method, ex.cors_headers)

    def response(self, ex: Exchange, status: int, headers: Headers) -> bool:
        if not _app_handles_cors(headers):
            allowed = self._allow_origin(ex.origin)
            if allowed is not None:  # None: no CORS headers, the browser blocks it
                headers.append((b"access-control-allow-origin", allowed))
                if self.credentials and allowed != b"*":
                    headers.append((b"access-control-allow-credentials", b"true"))
        if self.vary:
            _vary_on_origin(headers)
        return False

    def _preflight(self, allowed: bytes | None, method: bytes, headers: bytes | None) -> Answer:
        asked = {h.strip().lower() for h in (headers or b"").decode("latin-1").split(",")}
        asked.discard("")
        refused = [_VARY] if self.vary else []
        if allowed is None or method.upper() not in self.allowed_methods:
            return Answer(403, "This origin or method is not allowed by CORS.", headers=refused)
        if not asked <= self.allowed_headers:
            return Answer(403, "A requested header is not allowed by CORS.", headers=refused)
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
