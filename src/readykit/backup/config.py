"""The repository config (`<repo>/config`): written at the first `create`, it records whether the
repository is encrypted and which key authenticates it, and the head of the chain of backups.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from readykit.backup.manifest import canonical, is_backup_id

CONFIG_FORMAT = "readykit-backup-repository/1"
CONFIG_NAME = "config"
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Head:
    """The newest backup: its sequence number, id and link (MAC or hash)."""

    sequence: int
    id: str
    link: str


@dataclass
class RepoConfig:
    """What a repository promises about every backup in it."""

    id: str
    created_at: str
    encrypted: bool
    key_id: str | None
    head: Head | None = None
    mac: str | None = None
    format: str = CONFIG_FORMAT

    @classmethod
    def new(cls, encrypted: bool, key_id: str | None) -> RepoConfig:
        """A fresh config with a random repository id."""
        now = datetime.now(UTC).isoformat()
        return cls(secrets.token_hex(16), now, encrypted, key_id)

    @property
    def authenticated(self) -> bool:
        """Whether manifests (and this config) carry a MAC made with the repository's key."""
        return self.key_id is not None

    def describe(self) -> str:
        """`encrypted`, `authenticated, unencrypted` or `unauthenticated, unencrypted`."""
        if self.encrypted:
            return "encrypted"
        return "authenticated, unencrypted" if self.authenticated else "unencrypted, no key"

    def body(self) -> bytes:
        """The authenticated part: everything but `mac`."""
        data = asdict(self)
        del data["mac"]
        return canonical(data)

    def to_json(self) -> bytes:
        """Stable, human-readable JSON."""
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes) -> RepoConfig:
        """Parse and validate; raises ValueError/KeyError/TypeError if bad."""
        data: dict[str, Any] = json.loads(raw)
        if not isinstance(data, dict) or data.get("format") != CONFIG_FORMAT:
            raise ValueError("not a readykit backup repository config")
        head = data.pop("head", None)
        config = cls(**data)
        if head is not None:
            config.head = Head(**head)
            if not is_backup_id(config.head.id) or type(config.head.sequence) is not int:
                raise ValueError("its head is malformed")
        if not (isinstance(config.id, str) and _HEX.fullmatch(config.id)):
            raise ValueError("its repository id is malformed")
        if type(config.encrypted) is not bool:
            raise ValueError("`encrypted` is not true or false")
        if config.encrypted and config.key_id is None:
            raise ValueError("it says encrypted but names no key")
        return config
