"""Who may see /ops: the ops token (Bearer, or a signed session cookie from the login form);
with no token set, only loopback clients whose requests carry no forwarding headers."""

from __future__ import annotations

import hashlib
import hmac
import time
from http.cookies import SimpleCookie

from readykit._types import Scope
from readykit.access import bearer_token, is_direct_loopback

COOKIE = "readykit_ops"
SESSION_S = 8 * 3600


class OpsAuth:
    """Checks requests against the ops token; issues and verifies session cookies."""

    def __init__(self, token: str | None) -> None:
        self.token = token.encode() if token else None
        self._key = hashlib.sha256(b"readykit ops session:" + (self.token or b"")).digest()

    @property
    def has_token(self) -> bool:
        return self.token is not None

    def token_ok(self, candidate: bytes) -> bool:
        """Constant-time comparison with the ops token."""
        return self.token is not None and hmac.compare_digest(candidate, self.token)

    def session_value(self, now: float | None = None) -> str:
        """A cookie value: its expiry and an HMAC over it."""
        expires = str(int((time.time() if now is None else now) + SESSION_S))
        return f"{expires}.{self._sign(expires)}"

    def _sign(self, expires: str) -> str:
        return hmac.new(self._key, expires.encode(), hashlib.sha256).hexdigest()

    def _session_ok(self, scope: Scope) -> bool:
        for key, value in scope["headers"]:
            if key == b"cookie":
                morsel = SimpleCookie(value.decode("latin-1")).get(COOKIE)
                if morsel is None:
                    continue
                expires, _, sig = morsel.value.partition(".")
                return (
                    expires.isdigit()
                    and int(expires) > time.time()
                    and hmac.compare_digest(sig, self._sign(expires))
                )
        return False

    def allowed(self, scope: Scope) -> bool:
        """True for the token (header or session), or loopback when no token is set."""
        if self.token is None:
            return is_direct_loopback(scope)
        presented = bearer_token(scope)
        if presented is not None:
            return self.token_ok(presented)
        return self._session_ok(scope)

    def cookie_header(self, *, secure: bool, clear: bool = False) -> bytes:
        """Set-Cookie for a new session (or clearing it)."""
        value = "" if clear else self.session_value()
        attrs = f"{COOKIE}={value}; Path=/ops; HttpOnly; SameSite=Strict"
        attrs += "; Max-Age=0" if clear else f"; Max-Age={SESSION_S}"
        if secure:
            attrs += "; Secure"
        return attrs.encode()
