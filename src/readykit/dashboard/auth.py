"""Who may see /ops: the ops access rule (readykit.access), or a session from the login form.

A session is a random id in a signed, expiring cookie; the signing key is derived from the ops
token, so changing the token ends every session. Logging out revokes the id on the server: in
this process at once, and in the store for every other worker and instance. Login attempts are
limited per client and in total (a token cannot be guessed at speed), and every state-changing
ops request must come from the same origin (Origin / Sec-Fetch-Site), so another site cannot
log a browser in or out.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING

from readykit._types import Scope
from readykit.access import OpsAccess
from readykit.headers import get_header
from readykit.proxies import TrustedProxies

if TYPE_CHECKING:
    from limits import RateLimitItem
    from limits.strategies import MovingWindowRateLimiter

    from readykit.records.store import Store

logger = logging.getLogger("readykit.ops")

COOKIE = "readykit_ops"
SESSION_S = 8 * 3600
REVOKED = "ops.session.revoked"  # store document kind: revoked session ids
LOGIN_PER_CLIENT = "10/minute"
LOGIN_TOTAL = "100/minute"
_SESSION = re.compile(r"^([0-9a-f]{32})\.([0-9]{1,12})\.([0-9a-f]{64})$")
_SAFE_FETCH_SITES = frozenset({b"same-origin", b"none"})

Clock = Callable[[], float]


class LoginLimiter:
    """Counts login attempts per client and in total; `allow` says whether one more may try.

    The `limits` library is imported at the first login attempt, not with the dashboard.
    """

    def __init__(self, per_client: str = LOGIN_PER_CLIENT, total: str = LOGIN_TOTAL) -> None:
        self._policies = (per_client, total)
        self._loaded: tuple[MovingWindowRateLimiter, RateLimitItem, RateLimitItem] | None = None

    def _limits(self) -> tuple[MovingWindowRateLimiter, RateLimitItem, RateLimitItem]:
        if self._loaded is None:
            from limits import parse
            from limits.storage import MemoryStorage
            from limits.strategies import MovingWindowRateLimiter

            per_client, total = self._policies
            limiter = MovingWindowRateLimiter(MemoryStorage())
            self._loaded = (limiter, parse(per_client), parse(total))
        return self._loaded

    def allow(self, client: str) -> bool:
        """Take one attempt for `client`; False when it or everyone together is over limit."""
        limiter, per_client, total = self._limits()
        if not limiter.hit(per_client, "ops-login", client):
            return False
        return limiter.hit(total, "ops-login", "*")

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again (at least 1)."""
        limiter, per_client, _ = self._limits()
        stats = limiter.get_window_stats(per_client, "ops-login", client)
        return max(1, int(stats.reset_time - time.time()) + 1)


def same_origin(scope: Scope, proxies: TrustedProxies) -> bool:
    """False when a browser says the request came from another site (a CSRF attempt).

    Browsers send `Sec-Fetch-Site` and `Origin` on every POST; clients that send neither
    (curl, a cron line) carry no ambient credentials a forged request could use.
    """
    headers = scope.get("headers", ())
    site = get_header(headers, b"sec-fetch-site")
    if site is not None:  # set by the browser itself, out of a page's reach: authoritative
        return site.strip().lower() in _SAFE_FETCH_SITES
    origin = get_header(headers, b"origin")  # older browsers; `null` under no-referrer
    if origin is None:
        return True
    host = get_header(headers, b"host")
    if host is None:
        return False
    scheme = b"https" if proxies.is_https(scope) else b"http"
    return origin.strip().lower() == scheme + b"://" + host.strip().lower()


class OpsAuth:
    """Checks requests against the ops access rule; issues, verifies and revokes sessions."""

    def __init__(
        self, access: OpsAccess, *, store: Store | None = None, clock: Clock = time.time
    ) -> None:
        self.access = access
        self.store = store
        self.clock = clock
        self.limiter = LoginLimiter()
        self._key = hashlib.sha256(b"readykit ops session:" + (access.token or b"")).digest()
        self._revoked: set[str] = set()

    @property
    def has_token(self) -> bool:
        return self.access.has_token

    def token_ok(self, candidate: bytes) -> bool:
        """Constant-time comparison with the ops token (bounded length)."""
        return self.access.token_ok(candidate)

    def session_value(self) -> str:
        """A new session cookie value: a random id, its expiry, and an HMAC over both."""
        sid = secrets.token_hex(16)
        expires = str(int(self.clock() + SESSION_S))
        return f"{sid}.{expires}.{self._sign(sid, expires)}"

    def _sign(self, sid: str, expires: str) -> str:
        return hmac.new(self._key, f"{sid}.{expires}".encode(), hashlib.sha256).hexdigest()

    def session_id(self, scope: Scope) -> str | None:
        """The id of the valid, unexpired session the request's cookie carries, or None.

        Whatever the cookie holds (any length, any bytes) only ever yields None.
        """
        if not self.access.has_token:
            return None
        for key, value in scope.get("headers", ()):
            if key.lower() != b"cookie":
                continue
            try:
                morsel = SimpleCookie(bytes(value).decode("latin-1")).get(COOKIE)
            except CookieError:
                continue
            if morsel is None:
                continue
            match = _SESSION.match(morsel.value)
            if match is None:
                return None
            sid, expires, sig = match.groups()
            if int(expires) <= self.clock():
                return None
            if not hmac.compare_digest(sig, self._sign(sid, expires)):
                return None
            return sid
        return None

    async def allowed(self, scope: Scope) -> bool:
        """True for the access rule (token, trusted loopback) or a live, unrevoked session."""
        if self.access.allowed(scope):
            return True
        sid = self.session_id(scope)
        return sid is not None and not await self._is_revoked(sid)

    async def _is_revoked(self, sid: str) -> bool:
        if sid in self._revoked:
            return True
        if self.store is None:
            return False
        try:
            found = await self.store.get_doc(REVOKED, sid) is not None
        except Exception:  # a down store must not lock everyone out, nor let anyone in
            logger.warning("could not read session revocations from the store", exc_info=True)
            return False
        if found:
            self._revoked.add(sid)
        return found

    async def revoke(self, scope: Scope) -> None:
        """End the request's session everywhere: here at once, and in the store for others."""
        sid = self.session_id(scope)
        if sid is None:
            return
        self._revoked.add(sid)
        if self.store is not None:
            try:
                await self.store.put_doc(REVOKED, sid, {"revoked": True}, ts=self.clock())
            except Exception:
                logger.warning("could not store a session revocation", exc_info=True)

    def cookie_header(self, path: str, *, secure: bool, clear: bool = False) -> bytes:
        """Set-Cookie for a new session (or clearing it), sent back only under `path` (the
        dashboard's, behind the server's root path)."""
        value = "" if clear else self.session_value()
        attrs = f"{COOKIE}={value}; Path={path}; HttpOnly; SameSite=Strict"
        attrs += "; Max-Age=0" if clear else f"; Max-Age={SESSION_S}"
        if secure:
            attrs += "; Secure"
        return attrs.encode()
