"""Security headers on every response, per-route overridable; the version cut from `Server`.

Headers the app set itself are kept, whatever the case of their names. The
Content-Security-Policy depends on what is served: an API's JSON gets `default-src 'none';
frame-ancestors 'none'`, HTML the configurable HTML policy. The pages of the routes
`csp_hash_routes` lists (FastAPI's Swagger UI, ReDoc and OAuth2 redirect by default: pages built
from the app's own configuration) keep their inline scripts under a policy without
`'unsafe-inline'`: the page is held until complete (up to `HASH_MAX_BYTES`) and the SHA-256 of
each inline script is added to `script-src`, as CSP level 2 allows. Only there: the hash of
whatever script a page holds would approve a script an attacker got into it (reflected or
stored XSS) as readily as the page's own, so every other page gets the policy as configured.
HSTS goes only on https responses (direct, or per a trusted proxy's `X-Forwarded-Proto`).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from readykit.errors import ConfigurationError
from readykit.proxies import TrustedProxies
from readykit.route_table import RouteTable
from readykit.stage import Exchange, Headers

if TYPE_CHECKING:
    from readykit.guards.config import SecurityHeadersConfig

_CSP = b"content-security-policy"
HASH_MAX_BYTES = 2 * 1024 * 1024  # larger (or streamed) pages get the policy as configured
# an inline <script> without src=: its text is what a browser hashes
_INLINE_SCRIPT = re.compile(
    rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL
)
_HSTS = b"strict-transport-security"
_NONE: dict[bytes, bytes] = {}


def base_headers(config: SecurityHeadersConfig) -> dict[bytes, bytes]:
    """The headers every response gets, CSP and HSTS aside."""
    return {
        b"x-content-type-options": b"nosniff",
        b"referrer-policy": config.referrer_policy.encode(),
        b"x-frame-options": b"DENY",
        b"cross-origin-opener-policy": b"same-origin",
        b"cross-origin-resource-policy": b"same-origin",
    }


def hsts_value(config: SecurityHeadersConfig) -> bytes | None:
    """The Strict-Transport-Security value, or None when HSTS is off."""
    if not config.hsts_max_age_s:
        return None
    return f"max-age={config.hsts_max_age_s}; includeSubDomains".encode()


def with_script_hashes(policy: bytes, body: bytes) -> bytes:
    """`policy` whose `script-src` also allows each inline script of the HTML `body`."""
    hashes = sorted(
        {
            b"'sha256-" + base64.b64encode(hashlib.sha256(m.group(1)).digest()) + b"'"
            for m in _INLINE_SCRIPT.finditer(body)
        }
    )
    if not hashes:
        return policy
    directives = [d.strip() for d in policy.split(b";") if d.strip()]
    for i, directive in enumerate(directives):
        if directive.lower().startswith(b"script-src ") or directive.lower() == b"script-src":
            directives[i] = b" ".join([directive, *hashes])
            break
    else:  # no script-src: it falls back to default-src, which the hashes must extend
        base = next(
            (d[len(b"default-src") :].strip() for d in directives
             if d.lower().startswith(b"default-src")),
            b"'self'",
        )  # fmt: skip
        directives.append(b" ".join([b"script-src", base, *hashes]))
    return b"; ".join(directives)


def hash_routes(routes: list[str]) -> RouteTable[bool]:
    """The routes whose HTML pages get their inline scripts hashed (`csp_hash_routes`); keys as
    every per-route setting writes them, except `default` (there is no default here)."""
    if "default" in routes:
        raise ConfigurationError(
            "csp_hash_routes: key 'default' is not a route; list 'METHOD /path' or '/path' keys"
        )
    return RouteTable(dict.fromkeys(routes, True), setting="csp_hash_routes")


def _encoded(overrides: Mapping[str, str]) -> dict[bytes, bytes]:
    return {k.lower().encode("latin-1"): v.encode("latin-1") for k, v in overrides.items()}


class SecurityHeaders:
    """Stage: the security headers its section describes, on every HTTP response."""

    hold_max_bytes = HASH_MAX_BYTES

    def __init__(self, *, config: SecurityHeadersConfig, proxies: TrustedProxies) -> None:
        self.proxies = proxies
        self.base = base_headers(config)
        self.api_defaults = [
            *self.base.items(),
            (_CSP, config.content_security_policy.encode()),
        ]
        self.html_defaults = [
            *self.base.items(),
            (_CSP, config.html_content_security_policy.encode()),
        ]
        self.names = frozenset(name for name, _ in self.api_defaults)  # html's are the same
        self.hsts = hsts_value(config)
        self.routes = RouteTable(
            {k: _encoded(v) for k, v in config.security_header_overrides.items()},
            setting="security_header_overrides",
        )
        self.hash_routes = hash_routes(config.csp_hash_routes)

    def request(self, ex: Exchange) -> None:
        return None

    def response(self, ex: Exchange, status: int, headers: Headers) -> bool:
        """Add ours to `headers` (the app's own win); True for an HTML page under our default
        HTML policy on a `csp_hash_routes` route, whose inline scripts are hashed once its body
        is complete."""
        overrides = self.routes.value_for(ex.method, ex.path, _NONE) if self.routes else _NONE
        https = self.hsts is not None and self.proxies.is_https(ex.scope)
        present = set()
        html = False
        for i, (key, value) in enumerate(headers):
            name = key.lower()  # apps send any case (Django: X-Frame-Options); theirs wins
            present.add(name)
            if name == b"content-type":
                html = value[:9].lower() == b"text/html"
            elif name == b"server" and (b"/" in value or b" " in value):
                headers[i] = (key, value.split(b"/", 1)[0].split(b" ", 1)[0])  # no version
        defaults = self.html_defaults if html else self.api_defaults
        ours = (
            html
            and _CSP not in present
            and _CSP not in overrides
            and self.hash_routes.value_for(ex.method, ex.path, False)
        )
        if not overrides and not https:  # the common case: a precomputed list
            if present.isdisjoint(self.names):  # the app set none of ours: all of them
                headers.extend(defaults)
            else:
                headers.extend(kv for kv in defaults if kv[0] not in present)
            return ours
        wanted = dict(defaults)
        if https and self.hsts is not None:
            wanted[_HSTS] = self.hsts
        wanted.update(overrides)
        headers.extend((k, v) for k, v in wanted.items() if v and k not in present)
        return ours

    def complete(self, ex: Exchange, headers: Headers, body: bytes | None) -> Headers:
        """The HTML policy extended by the hashes of the page's inline scripts."""
        if body is None:
            return headers
        return [(k, with_script_hashes(v, body)) if k == _CSP else (k, v) for k, v in headers]
