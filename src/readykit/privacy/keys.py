"""The privacy key: signed download links, erase confirmations, the keyed subject hash, and the
subject id sealed in the erasure log (so a replay can find it; the log never holds it raw)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path


def load_or_create_key(configured: str | None, path: Path) -> bytes:
    """The configured secret, else the key in `path` (created once, mode 0600)."""
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
    return key


class Keys:
    """Everything derived from one 32-byte key."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._sign = hmac.new(key, b"readykit privacy sign", hashlib.sha256).digest()
        self._subject = hmac.new(key, b"readykit privacy subject", hashlib.sha256).digest()
        self._seal = AESGCM(hmac.new(key, b"readykit privacy seal", hashlib.sha256).digest())

    def sign(self, *parts: str) -> str:
        """An HMAC over `parts`, URL-safe."""
        mac = hmac.new(self._sign, "\x1f".join(parts).encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def verify(self, signature: str, *parts: str) -> bool:
        """Constant-time check of a signature made by `sign(*parts)`."""
        return hmac.compare_digest(signature.encode(), self.sign(*parts).encode())

    def subject_hash(self, subject: str) -> str:
        """A keyed hash of the subject: stable, not reversible without the key."""
        return hmac.new(self._subject, subject.encode(), hashlib.sha256).hexdigest()

    def seal(self, subject: str) -> str:
        """The subject id encrypted (AES-GCM), for the erasure log and resumable jobs."""
        nonce = secrets.token_bytes(12)
        return (nonce + self._seal.encrypt(nonce, subject.encode(), None)).hex()

    def unseal(self, sealed: str) -> str:
        """The subject id back (raises if tampered or sealed with another key)."""
        raw = bytes.fromhex(sealed)
        return self._seal.decrypt(raw[:12], raw[12:], None).decode()
