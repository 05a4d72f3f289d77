"""Authentication of manifests and the repository config: HMAC-SHA256 under the backup key.

The MAC key is HKDF-SHA256 of the key material with its own `info`, so it is independent of the
encryption keys; `purpose` separates what is signed (a manifest, the repository config).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from readykit.backup.crypto import Key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.hmac import HMAC

ALGORITHM = "HMAC-SHA256"
_INFO = b"readykit-backup/2 manifest authentication"


def _mac_key(key: Key) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(key.material)


def _hmac(key: Key, purpose: str, body: bytes) -> HMAC:
    from cryptography.hazmat.primitives import hashes, hmac

    mac = hmac.HMAC(_mac_key(key), hashes.SHA256())
    mac.update(purpose.encode() + b"\0" + body)
    return mac


def sign(key: Key, purpose: str, body: bytes) -> str:
    """The hex MAC of `body` for `purpose` ("manifest" or "config")."""
    return _hmac(key, purpose, body).finalize().hex()


def is_valid(key: Key, purpose: str, body: bytes, mac: str | None) -> bool:
    """Whether `mac` authenticates `body` for `purpose` (compared in constant time)."""
    from cryptography.exceptions import InvalidSignature

    if mac is None:
        return False
    try:
        expected = bytes.fromhex(mac)
    except ValueError:
        return False
    try:
        _hmac(key, purpose, body).verify(expected)
    except InvalidSignature:
        return False
    return True
