"""Who may see ops data (/health details, /metrics, /ops): the ops token, nobody else.

Closed by default. A direct loopback client is let in only with `ops_trust_loopback=true`,
for development: behind a same-host reverse proxy that adds no forwarding header (nginx's
default `proxy_pass`) every request arrives from loopback, so trusting loopback there would
open the ops endpoints to the internet.
"""

from __future__ import annotations

import hmac
import ipaddress

from pydantic import Field, SecretStr

from readykit._types import Scope
from readykit.section import Section

MAX_TOKEN_BYTES = 512  # longer presented tokens are refused before any comparison
_FORWARDING = frozenset(
    {b"forwarded", b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-real-ip"}
)


def bearer_token(scope: Scope) -> bytes | None:
    """The token of an `Authorization: Bearer` header, or None."""
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


class OpsConfig(Section):
    """The settings section of the ops endpoints' access (/health details, /metrics, /ops)."""

    ops_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for /health details, /metrics and /ops; unset = closed to all "
        "(unless ops_trust_loopback).",
    )
    ops_trust_loopback: bool = Field(
        default=False,
        description="Open ops endpoints to direct loopback clients without the token "
        "(development only: a same-host proxy makes every request loopback).",
    )


class OpsAccess:
    """The one rule for every ops endpoint: the bearer token, or a trusted direct loopback.

    Args:
        token: the ops token; None means no token opens anything.
        trust_loopback: also let direct loopback clients in (development).
    """

    def __init__(self, token: str | None, *, trust_loopback: bool = False) -> None:
        self.token = token.encode() if token else None
        self.trust_loopback = trust_loopback

    @classmethod
    def from_settings(cls, config: OpsConfig) -> OpsAccess:
        token = config.ops_token.get_secret_value() if config.ops_token else None
        return cls(token, trust_loopback=config.ops_trust_loopback)

    @property
    def has_token(self) -> bool:
        return self.token is not None

    def token_ok(self, candidate: bytes) -> bool:
        """Constant-time comparison with the ops token; over-long candidates never match."""
        if self.token is None or len(candidate) > MAX_TOKEN_BYTES:
            return False
        return hmac.compare_digest(candidate, self.token)

    def allowed(self, scope: Scope) -> bool:
        """True for a matching bearer token, or a direct loopback client when trusted."""
        presented = bearer_token(scope)
        if presented is not None and self.token_ok(presented):
            return True
        return self.trust_loopback and is_direct_loopback(scope)
