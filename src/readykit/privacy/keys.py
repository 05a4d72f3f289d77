"""The privacy key: signed download links, erase confirmations, the keyed subject hash, and the
subject id sealed in the erasure log (so a replay can find it; the log never holds it raw)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import string
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from readykit.errors import ConfigurationError, ReadykitError
from readykit.files import UnsafeFile, read_small_file

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
MIN_SECRET_CHARS = 16  # as the audit key: a shorter secret is guessed from one signed link


def check_secret(configured: str) -> str:
    """The configured privacy secret; one too short is refused naming the setting (never the
    secret itself)."""
    if len(configured.strip()) < MIN_SECRET_CHARS:
        raise ConfigurationError(
            f"privacy_secret: needs at least {MIN_SECRET_CHARS} characters (the same secret on"
            " every instance); or unset it to use a key file created once"
        )
    return configured


class InvalidSubject(ReadykitError):
    """A subject id that is not valid Unicode text (a lone surrogate): it has no bytes to hash,
    sign or seal."""


def utf8(subject: str) -> bytes:
    """`subject` as UTF-8; InvalidSubject if it holds a lone surrogate (a JSON "\\ud800" in a
    token or body decodes to one)."""
    try:
        return subject.encode()
    except UnicodeEncodeError:
        # the id itself stays out of the message: it names a person
        raise InvalidSubject(
            "the subject id is not valid Unicode (it holds a lone surrogate): it cannot be "
            "hashed, signed or sealed"
        ) from None


def _read_key(path: Path) -> bytes:
    """The key in `path`; refused unless it is exactly 64 hex digits (an empty or truncated
    file would make every signature forgeable). Read only if it is a small regular file: a FIFO
    in its place must not hang startup."""
    try:
        raw = read_small_file(path, 4096)
    except UnsafeFile as exc:
        raise ConfigurationError(
            f"privacy_key_path: the privacy key file {path} is {exc.strerror}; restore it, or"
            " delete it to create a new one (outstanding links break)"
        ) from None
    except OSError as exc:  # EACCES, ENOTDIR, EIO: the file is there, but not to be read
        raise _unusable(path, "read", exc) from None
    text = raw.decode("ascii", errors="replace").strip()
    if len(text) != 2 * KEY_BYTES or not all(c in string.hexdigits for c in text):
        raise ConfigurationError(
            f"privacy_key_path: the privacy key file {path} does not hold a {KEY_BYTES}-byte"
            " hex key; restore it, or delete it to create a new one (outstanding links break)"
        )
    return bytes.fromhex(text)


def _unusable(path: Path, verb: str, exc: OSError) -> ConfigurationError:
    """The one line for a key file the disk will not give or take, naming the variable."""
    return ConfigurationError(
        f"privacy_key_path: cannot {verb} the privacy key file {path} ({exc.strerror or exc});"
        " point READYKIT_PRIVACY_KEY_PATH into a writable directory, or set"
        " READYKIT_PRIVACY_SECRET"
    )


def load_or_create_key(configured: str | None, path: Path) -> bytes:
    """The configured secret, else the key in `path` (created once, mode 0600).

    Created atomically: written and fsynced under a temporary name, then hard-linked to
    `path`, so the file is never seen empty or half written; of several processes creating it
    at once, one links and the others read its key.
    """
    if configured is not None:
        return hashlib.sha256(check_secret(configured).encode()).digest()
    if path.exists():
        return _read_key(path)
    key = secrets.token_bytes(KEY_BYTES)
    try:
        # a file where the directory should be, a directory that cannot be made or written
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".privacy-key-")  # mode 0600
    except OSError as exc:
        raise _unusable(path, "create", exc) from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(key.hex())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process created it first: use its key
            return _read_key(path)
    except OSError as exc:  # the disk full, a file system without hard links
        raise _unusable(path, "create", exc) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return key


class Keys:
    """Everything derived from one 32-byte key."""

    def __init__(self, key: bytes) -> None:
        self._sign = hmac.new(key, b"readykit privacy sign", hashlib.sha256).digest()
        self._subject = hmac.new(key, b"readykit privacy subject", hashlib.sha256).digest()
        self._seal_key = hmac.new(key, b"readykit privacy seal", hashlib.sha256).digest()

    @functools.cached_property
    def _seal(self) -> AESGCM:
        """The cipher, made at its first use: `cryptography` is not imported at start-up."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(self._seal_key)

    def sign(self, *parts: str) -> str:
        """An HMAC over `parts`, URL-safe; the first part says what it signs ("download",
        "erase"), so one kind of signature is never accepted as another."""
        mac = hmac.new(self._sign, utf8("\x1f".join(parts)), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def verify(self, signature: str, *parts: str) -> bool:
        """Constant-time check of a signature made by `sign(*parts)`."""
        return hmac.compare_digest(signature.encode(), self.sign(*parts).encode())

    def subject_hash(self, subject: str) -> str:
        """A keyed hash of the subject: stable, not reversible without the key."""
        return hmac.new(self._subject, utf8(subject), hashlib.sha256).hexdigest()

    def actor(self, subject: str) -> str:
        """The subject as every privacy audit event names it: `subject:<keyed hash, 16 hex>`,
        never the raw id, so the audit trail does not name a person after their erasure."""
        return f"subject:{self.subject_hash(subject)[:16]}"

    def scrub(self, text: str, subject: str) -> str:
        """`text` with the subject id, wherever it is quoted, replaced by `actor(subject)`.

        For what erasers and exporters say (errors, reasons), which is stored durably and
        logged: the id as written, in any case, and as repr() and JSON quote it (escaped), where
        it is not part of a longer word or number (the id `42` is not replaced in `4213`). An
        id the text holds transformed otherwise (hashed, cut, URL-encoded) is not recognised.
        """
        if not subject.strip():
            return text
        forms = {subject, repr(subject)[1:-1], json.dumps(subject)[1:-1]}
        either = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        pattern = rf"(?<![^\W_])(?:{either})(?![^\W_])"  # not inside a longer word
        return re.sub(pattern, lambda _: self.actor(subject), text, flags=re.IGNORECASE)

    def seal(self, subject: str) -> str:
        """The subject id encrypted (AES-GCM), for the erasure log and resumable jobs."""
        nonce = secrets.token_bytes(12)
        return (nonce + self._seal.encrypt(nonce, utf8(subject), None)).hex()

    def unseal(self, sealed: str) -> str:
        """The subject id back (raises if tampered or sealed with another key)."""
        raw = bytes.fromhex(sealed)
        return self._seal.decrypt(raw[:12], raw[12:], None).decode()
