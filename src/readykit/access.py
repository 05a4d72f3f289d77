"""Who may see ops data (/health details, /metrics, /ops): the ops token, nobody else.

Closed by default. A direct loopback client is let in only with `ops_trust_loopback=true`,
for development: behind a same-host reverse proxy that adds no forwarding header (nginx's
default `proxy_pass`) every request arrives from loopback, so trusting loopback there would
open the ops endpoints to the internet.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Callable

from pydantic import Field, SecretStr

from readykit._types import Scope
from readykit.section import Section

MAX_TOKEN_BYTES = 512  # longer presented tokens are refused before any comparison
# shorter tokens fall to the guessing the limits below allow (100 a minute): warned about
WEAK_TOKEN_CHARS = 16
logger = logging.getLogger("readykit")
# wrong bearer tokens a client (by address, as `client_of` names it: behind trusted proxies the
# address they saw, an IPv6 client by its /64), and all clients together, may present in a
# window; past that every bearer token is refused until the window ends, so a token cannot be
# guessed at speed (the dashboard's login form is limited alike)
FAILED_PER_CLIENT = 10
FAILED_TOTAL = 100
FAILED_WINDOW_S = 60.0
_MAX_TRACKED = 10_000  # clients remembered in a window; past it the window's counts restart
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


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


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


class _Failures:
    """Wrong bearer tokens per client and in total, in fixed windows."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.window = -1
        self.total = 0
        self.by_client: dict[str, int] = {}

    def _roll(self) -> None:
        window = int(self.clock() // FAILED_WINDOW_S)
        if window != self.window or len(self.by_client) > _MAX_TRACKED:
            self.window, self.total = window, 0
            self.by_client.clear()

    def blocked(self, client: str) -> bool:
        self._roll()
        return self.total >= FAILED_TOTAL or self.by_client.get(client, 0) >= FAILED_PER_CLIENT

    def add(self, client: str) -> None:
        self._roll()
        self.total += 1
        self.by_client[client] = self.by_client.get(client, 0) + 1


class OpsAccess:
    """The one rule for every ops endpoint: the bearer token, or a trusted direct loopback.

    Args:
        token: the ops token; None means no token opens anything.
        trust_loopback: also let direct loopback clients in (development).
        client_of: whom wrong tokens count against (default: the peer address); the kit
            passes the client its trusted proxies name, so that behind a proxy one guesser
            does not lock every client out.
    """

    def __init__(
        self,
        token: str | None,
        *,
        trust_loopback: bool = False,
        clock: Callable[[], float] = time.monotonic,
        client_of: Callable[[Scope], str] | None = None,
    ) -> None:
        self.token = token.encode() if token else None
        self.trust_loopback = trust_loopback
        self._failures = _Failures(clock)
        self.client_of = client_of or _peer

    @classmethod
    def from_settings(
        cls, config: OpsConfig, client_of: Callable[[Scope], str] | None = None
    ) -> OpsAccess:
        token = config.ops_token.get_secret_value() if config.ops_token else None
        if token and len(token) < WEAK_TOKEN_CHARS:
            logger.warning(
                "READYKIT_OPS_TOKEN has %d characters: a token that short can be guessed; "
                "use at least %d random ones (openssl rand -hex 16)",
                len(token),
                WEAK_TOKEN_CHARS,
            )
        return cls(token, trust_loopback=config.ops_trust_loopback, client_of=client_of)

    @property
    def has_token(self) -> bool:
        return self.token is not None

    def token_ok(self, candidate: bytes) -> bool:
        """Constant-time comparison with the ops token; over-long candidates never match."""
        if self.token is None or len(candidate) > MAX_TOKEN_BYTES:
            return False
        return hmac.compare_digest(candidate, self.token)

    def allowed(self, scope: Scope) -> bool:
        """True for a matching bearer token, or a direct loopback client when trusted.

        A client that presented FAILED_PER_CLIENT wrong tokens in a window (or all clients
        FAILED_TOTAL) has every bearer token refused until the window ends, the right one too:
        a guess cannot tell whether it was right.
        """
        presented = bearer_token(scope)
        if presented is not None:
            client = self.client_of(scope)
            if not self._failures.blocked(client):
                if self.token_ok(presented):
                    return True
                self._failures.add(client)
        return self.trust_loopback and is_direct_loopback(scope)
