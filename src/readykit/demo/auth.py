"""Demo login: scrypt password hashes and HMAC-signed bearer tokens, standard library only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable

from readykit._types import Scope

_SCRYPT = "scrypt"
_N, _R, _P = 2**14, 8, 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """An encoded scrypt hash: `scrypt$n$r$p$salt$hash` (base64url parts)."""
    salt = os.urandom(16) if salt is None else salt
    digest = _scrypt(password, salt, _N, _R, _P)
    return f"{_SCRYPT}${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches the hash; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != _SCRYPT:
            return False
        actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
        return hmac.compare_digest(actual, _unb64(digest))
    except ValueError:  # wrong shape, bad base64, or parameters scrypt refuses
        return False


def _sign(payload: str, secret: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode("ascii"), hashlib.sha256).digest())


def issue_token(subject: str, secret: str, ttl_s: int, *, now: float | None = None) -> str:
    """A bearer token `payload.signature` naming `subject`, valid for `ttl_s` seconds."""
    issued = int(time.time() if now is None else now)
    claims = {"sub": subject, "exp": issued + ttl_s}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_sign(payload, secret)}"


def verify_token(token: str, secret: str, *, now: float | None = None) -> str | None:
    """The token's subject if the signature is right and it has not expired, else None."""
    if not token.isascii():
        return None
    payload, _, signature = token.partition(".")
    if not signature or not hmac.compare_digest(signature, _sign(payload, secret)):
        return None
    try:
        claims = json.loads(_unb64(payload))
        subject, expires = claims["sub"], claims["exp"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(subject, str) or not isinstance(expires, int):
        return None
    return subject if (time.time() if now is None else now) < expires else None


def bearer_principal(secret: str) -> Callable[[Scope], str | None]:
    """A ReadyKit principal resolver: `user:<name>` from a valid `Authorization: Bearer` token."""

    def principal(scope: Scope) -> str | None:
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer":
                    return None
                subject = verify_token(token.strip(), secret)
                return f"user:{subject}" if subject else None
        return None

    return principal
