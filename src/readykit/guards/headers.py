"""Security headers on every response, per-route overridable; the version cut from `Server`.

Headers the app set itself are kept. The Content-Security-Policy depends on what is served: an
API's JSON gets `default-src 'none'; frame-ancestors 'none'`, HTML the configurable HTML policy.
HSTS goes only on https responses (direct, or per a trusted proxy's `X-Forwarded-Proto`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from readykit._types import ASGIApp, Message, Receive, Scope, Send
from readykit.proxies import TrustedProxies
from readykit.route_table import RouteTable
from readykit.settings import Settings

_CSP = b"content-security-policy"
_HSTS = b"strict-transport-security"
_NONE: dict[bytes, bytes] = {}


def base_headers(settings: Settings) -> dict[bytes, bytes]:
    """The headers every response gets, CSP and HSTS aside."""
    return {
        b"x-content-type-options": b"nosniff",
        b"referrer-policy": settings.referrer_policy.encode(),
        b"x-frame-options": b"DENY",
        b"cross-origin-opener-policy": b"same-origin",
        b"cross-origin-resource-policy": b"same-origin",
    }


def hsts_value(settings: Settings) -> bytes | None:
    """The Strict-Transport-Security value, or None when HSTS is off."""
    if not settings.hsts_max_age_s:
        return None
    return f"max-age={settings.hsts_max_age_s}; includeSubDomains".encode()


def _encoded(overrides: Mapping[str, str]) -> dict[bytes, bytes]:
    return {k.lower().encode("latin-1"): v.encode("latin-1") for k, v in overrides.items()}


class SecurityHeadersGuard:
    """Adds the security headers the settings describe to every HTTP response."""

    def __init__(self, app: ASGIApp, *, settings: Settings, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies
        self.base = base_headers(settings)
        self.api_defaults = [
            *self.base.items(),
            (_CSP, settings.content_security_policy.encode()),
        ]
        self.html_defaults = [
            *self.base.items(),
            (_CSP, settings.html_content_security_policy.encode()),
        ]
        self.hsts = hsts_value(settings)
        self.routes = RouteTable(
            {k: _encoded(v) for k, v in settings.security_header_overrides.items()},
            setting="security_header_overrides",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        overrides = self.routes.value_for(scope, _NONE)
        https = self.hsts is not None and self.proxies.is_https(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._dress(message.get("headers", ()), overrides, https)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _dress(
        self, headers: Iterable[tuple[bytes, bytes]], overrides: dict[bytes, bytes], https: bool
    ) -> list[tuple[bytes, bytes]]:
        out = list(headers)
        present = set()
        html = False
        for i, (key, value) in enumerate(out):
            name = key.lower()  # apps send any case (Django: X-Frame-Options); theirs wins
            present.add(name)
            if name == b"content-type":
                html = value[:9].lower() == b"text/html"
            elif name == b"server" and (b"/" in value or b" " in value):
                out[i] = (key, value.split(b"/", 1)[0].split(b" ", 1)[0])  # no version
        defaults = self.html_defaults if html else self.api_defaults
        if not overrides and not https:  # the common case: a precomputed list
            out.extend(kv for kv in defaults if kv[0] not in present)
            return out
        wanted = dict(defaults)
        if https and self.hsts is not None:
            wanted[_HSTS] = self.hsts
        wanted.update(overrides)
        out.extend((k, v) for k, v in wanted.items() if v and k not in present)
        return out
