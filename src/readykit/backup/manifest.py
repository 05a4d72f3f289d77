"""The JSON manifest that makes each backup self-describing, and the strict checks on reading it.

Every field a reader uses to build a path is validated here: an id is `YYYYMMDDTHHMMSSZ-xxxxxx`
and nothing else, and the data file is `<id>.rkb`, so no manifest can point outside the
repository.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from readykit.backup.codec import COMPRESSIONS

FORMAT = "readykit-backup/2"
DATA_SUFFIX = ".rkb"
MANIFEST_SUFFIX = ".json"
ID_PATTERN = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")
ID_EXAMPLE = "20240601T030000Z-3fa2c1"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
MAX_SIZE = 2**63 - 1  # what a file offset can be (off_t): a larger size was not written by us


def new_id(now: datetime) -> str:
    """A sortable, unique backup id: UTC time to the second plus a random suffix."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def is_backup_id(value: object) -> bool:
    """Whether `value` is a well-formed backup id (and so a safe file name stem)."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def canonical(data: dict[str, Any]) -> bytes:
    """The bytes a MAC or hash is computed over: sorted keys, no whitespace, ASCII."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _aware(text: object, field: str) -> datetime:
    """`text` as a timezone-aware ISO 8601 time; ValueError naming `field` otherwise."""
    try:
        when = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ValueError(f"{field} {text!r} is not a time with its zone")
    return when


@dataclass
class Verification:
    """The outcome of the last `verify` of a backup."""

    status: str  # "passed" | "failed"
    at: str
    failed_step: str | None = None
    message: str | None = None


@dataclass
class Manifest:
    """Everything needed to check and restore one backup without the source database.

    `repository`, `sequence` and `previous` chain the backups of one repository: `previous` is
    the `link` of the backup taken just before. `mac` authenticates every field except
    `verification` (rewritten by each `verify`) when the repository has a key.
    """

    id: str
    created_at: str
    source: dict[str, str]
    data_file: str
    size: int
    raw_size: int
    sha256: str
    compression: str
    encryption: dict[str, Any] | None
    tools: dict[str, str]
    tables: dict[str, int]
    schema_fingerprint: str
    repository: str
    sequence: int
    previous: str | None
    duration_s: float = 0.0
    format: str = FORMAT
    verification: Verification | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    mac: str | None = None

    @property
    def kind(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.source["kind"]

    @property
    def created(self) -> datetime:
        """`created_at` as an aware datetime."""
        return datetime.fromisoformat(self.created_at)

    @property
    def verified(self) -> bool:
        """Whether the last verify passed."""
        return self.verification is not None and self.verification.status == "passed"

    def body(self) -> bytes:
        """The authenticated part: everything but `mac` and `verification`."""
        data = asdict(self)
        del data["mac"], data["verification"]
        return canonical(data)

    @property
    def link(self) -> str:
        """What the next backup's `previous` holds: the MAC, or a SHA-256 without a key."""
        return self.mac if self.mac is not None else hashlib.sha256(self.body()).hexdigest()

    def to_json(self) -> bytes:
        """Stable, human-readable JSON."""
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes, file_name: str | None = None) -> Manifest:
        """Parse and validate a manifest; raises ValueError/KeyError/TypeError if bad.

        `file_name` is the name it was read from, which must be `<id>.json`.
        """
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown manifest format {data.get('format')!r}")
        verification = data.pop("verification", None)
        manifest = cls(**data)
        if verification is not None:
            manifest.verification = Verification(**verification)
        manifest._validate(file_name)
        return manifest

    def _validate(self, file_name: str | None) -> None:
        if not is_backup_id(self.id):
            raise ValueError(f"id {self.id!r} is not a backup id")
        if file_name is not None and file_name != f"{self.id}{MANIFEST_SUFFIX}":
            raise ValueError(f"it holds backup id {self.id}, not the one its name says")
        if self.data_file != f"{self.id}{DATA_SUFFIX}":
            raise ValueError(f"data file {self.data_file!r} is not {self.id}{DATA_SUFFIX}")
        if type(self.sequence) is not int or self.sequence < 1:
            raise ValueError(f"sequence {self.sequence!r} is not a positive integer")
        if self.previous is not None and not _is_hex(self.previous, _HEX64):
            raise ValueError("previous is not a SHA-256/HMAC-SHA256 hex digest")
        if self.mac is not None and not _is_hex(self.mac, _HEX64):
            raise ValueError("mac is not an HMAC-SHA256 hex digest")
        if not _is_hex(self.repository, _HEX32):
            raise ValueError(f"repository id {self.repository!r} is malformed")
        if not isinstance(self.source, dict) or self.source.get("kind") not in (
            "sqlite",
            "postgresql",
        ):
            raise ValueError("source kind is neither sqlite nor postgresql")
        for name, value in (("size", self.size), ("raw_size", self.raw_size)):
            if type(value) is not int or not 0 <= value <= MAX_SIZE:
                raise ValueError(f"{name} is not a byte count (an integer, 0 to 2**63 - 1)")
        if not isinstance(self.source.get("url"), str):
            raise ValueError("source url is not text")
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression {self.compression!r} is not one of {COMPRESSIONS}")
        if not isinstance(self.tables, dict) or not all(
            isinstance(k, str) and type(v) is int for k, v in self.tables.items()
        ):
            raise ValueError("tables is not a map of table names to row counts")
        _aware(self.created_at, "created_at")
        # not authenticated (each verify rewrites it): every field a command reads is checked
        v = self.verification
        if v is not None:
            if v.status not in ("passed", "failed"):
                raise ValueError(f"verification status {v.status!r} is not passed or failed")
            _aware(v.at, "verification at")
            if not all(f is None or isinstance(f, str) for f in (v.failed_step, v.message)):
                raise ValueError("verification step or message is not text")

    def summary(self) -> dict[str, Any]:
        """The fields `list` shows."""
        return {
            "id": self.id,
            "sequence": self.sequence,
            "created_at": self.created_at,
            "size": self.size,
            "source": self.source["url"],
            "kind": self.kind,
            "encrypted": self.encryption is not None,
            "authenticated": self.mac is not None,
            "verify": self.verification.status if self.verification else "never",
            "verified_at": self.verification.at if self.verification else None,
        }


def _is_hex(value: object, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None
