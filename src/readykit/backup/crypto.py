"""Authenticated, chunked encryption (AES-256-GCM, STREAM construction) and key loading.

File layout: header (magic, chunk size, salt, nonce prefix, key check), then chunks of
`chunk size` plaintext bytes + 16-byte tag. The nonce is prefix(7) ‖ counter(4) ‖ last(1), so
reordered, dropped or truncated chunks fail authentication; the header is the associated data.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from readykit.backup.errors import BackupError, IntegrityFailure, WrongKeyError

KEY_ENV = "READYKIT_BACKUP_KEY"
ALGORITHM = "AES-256-GCM-STREAM/HKDF-SHA256"
MIN_KEY_BYTES = 32
CHUNK_SIZE = 1 << 20
_MAGIC = b"RKBENC1\n"
_HEADER = struct.Struct(">8sI16s7s16s")
_TAG = 16
_INFO = b"readykit-backup/1"


@dataclass(frozen=True)
class Key:
    """Key material from a file or the environment; `id` tells keys apart without revealing them."""

    material: bytes
    origin: str

    @property
    def id(self) -> str:
        """A short public fingerprint of the key."""
        return hmac.new(self.material, b"readykit-backup key id", hashlib.sha256).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """What the manifest records about encryption."""
        return {"algorithm": ALGORITHM, "key_id": self.id, "chunk_size": CHUNK_SIZE}


def load_key(key_file: Path | None, environ: dict[str, str] | None = None) -> Key | None:
    """The key from `key_file`, else from $READYKIT_BACKUP_KEY, else None."""
    env = os.environ if environ is None else environ
    if key_file is not None:
        try:
            material = key_file.read_bytes().strip()
        except OSError as exc:
            raise BackupError(f"cannot read key file {key_file}: {exc.strerror}") from exc
        origin = str(key_file)
    elif env.get(KEY_ENV):
        material, origin = env[KEY_ENV].strip().encode(), f"${KEY_ENV}"
    else:
        return None
    if len(material) < MIN_KEY_BYTES:
        raise BackupError(
            f"key from {origin} is too short ({len(material)} bytes, need {MIN_KEY_BYTES}): "
            "make one with `openssl rand -base64 32`"
        )
    return Key(material, origin)


def _derive(material: bytes, salt: bytes) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    out = HKDF(algorithm=hashes.SHA256(), length=48, salt=salt, info=_INFO).derive(material)
    return out[:32], out[32:]


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= 1 << 32:
        raise ValueError("backup too large for one encrypted stream")
    return prefix + struct.pack(">IB", counter, 1 if last else 0)


class Sealer:
    """Encrypts a stream: `update` returns whole sealed chunks, `finish` the last one."""

    def __init__(self, key: Key, chunk_size: int = CHUNK_SIZE) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        salt, self._prefix = secrets.token_bytes(16), secrets.token_bytes(7)
        aes_key, check = _derive(key.material, salt)
        self._aead = AESGCM(aes_key)
        self._chunk = chunk_size
        self._header = _HEADER.pack(_MAGIC, chunk_size, salt, self._prefix, check)
        self._buffer = bytearray()
        self._counter = 0
        self._started = False

    def update(self, data: bytes) -> bytes:
        """Buffer `data`; return the header and any chunks that are complete."""
        self._buffer += data
        out = bytearray()
        if not self._started:
            out += self._header
            self._started = True
        # Keep at least one byte back so the final chunk is always sealed by `finish`.
        while len(self._buffer) > self._chunk:
            out += self._seal(bytes(self._buffer[: self._chunk]), last=False)
            del self._buffer[: self._chunk]
        return bytes(out)

    def finish(self) -> bytes:
        """Seal the final chunk (possibly empty)."""
        out = b"" if self._started else self._header
        self._started = True
        return out + self._seal(bytes(self._buffer), last=True)

    def _seal(self, plain: bytes, last: bool) -> bytes:
        nonce = _nonce(self._prefix, self._counter, last)
        self._counter += 1
        return self._aead.encrypt(nonce, plain, self._header)


class Opener:
    """Decrypts what `Sealer` wrote; raises WrongKeyError or IntegrityFailure('decrypt')."""

    def __init__(self, key: Key) -> None:
        self._key = key
        self._buffer = bytearray()
        self._aead: Any = None
        self._header = b""
        self._prefix = b""
        self._chunk = 0
        self._counter = 0

    def update(self, data: bytes) -> bytes:
        """Return the plaintext of every chunk known not to be the last."""
        self._buffer += data
        if self._aead is None:
            if len(self._buffer) < _HEADER.size:
                return b""
            self._read_header()
        out = bytearray()
        sealed = self._chunk + _TAG
        while len(self._buffer) > sealed:
            out += self._open(bytes(self._buffer[:sealed]), last=False)
            del self._buffer[:sealed]
        return bytes(out)

    def finish(self) -> bytes:
        """Open the final chunk; a truncated stream fails here."""
        if self._aead is None:
            raise IntegrityFailure("decrypt", "encrypted stream is truncated inside its header")
        if len(self._buffer) < _TAG:
            raise IntegrityFailure("decrypt", "encrypted stream is truncated")
        return self._open(bytes(self._buffer), last=True)

    def _read_header(self) -> None:
        header = bytes(self._buffer[: _HEADER.size])
        del self._buffer[: _HEADER.size]
        magic, chunk, salt, prefix, check = _HEADER.unpack(header)
        if magic != _MAGIC or not 0 < chunk <= 1 << 28:
            raise IntegrityFailure("decrypt", "not a readykit encrypted stream (bad header)")
        aes_key, expected = _derive(self._key.material, salt)
        if not hmac.compare_digest(check, expected):
            raise WrongKeyError(
                f"wrong key: the key from {self._key.origin} (id {self._key.id}) "
                "did not encrypt this backup"
            )
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(aes_key)
        self._header, self._prefix, self._chunk = header, prefix, chunk

    def _open(self, sealed: bytes, last: bool) -> bytes:
        from cryptography.exceptions import InvalidTag

        nonce = _nonce(self._prefix, self._counter, last)
        self._counter += 1
        try:
            return bytes(self._aead.decrypt(nonce, sealed, self._header))
        except InvalidTag as exc:
            raise IntegrityFailure(
                "decrypt", f"chunk {self._counter - 1} failed authentication: tampered or truncated"
            ) from exc
