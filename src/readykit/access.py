"""Who may see ops data: the ops token, or a loopback client that did not come through a proxy."""

from __future__ import annotations

import hmac
import ipaddress

from readykit._types import Scope

_FORWARDING = frozenset(
    {b"forwarded", b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-real-ip"}
)


def bearer_token(scope: Scope) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == b"authorization":
            scheme, _, token = bytes(value).partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
            return None
    return None


def is_direct_loopback(scope: Scope) -> bool:
    """True for a loopback peer whose request carries no forwarding headers (no proxy between)."""
    client = scope.get("client")
    if not client:
        return False
    try:
        if not ipaddress.ip_address(client[0]).is_loopback:
            return False
    except ValueError:
        return False
    return not any(key.lower() in _FORWARDING for key, _ in scope.get("headers", ()))


def ops_allowed(scope: Scope, ops_token: str | None) -> bool:
    """The rule for every ops endpoint: a matching bearer token, or a direct loopback client."""
    if ops_token:
        given = bearer_token(scope)
        if given is not None and hmac.compare_digest(given, ops_token.encode()):
            return True
    return is_direct_loopback(scope)
