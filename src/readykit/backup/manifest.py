"""The JSON manifest that makes each backup self-describing."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

FORMAT = "readykit-backup/1"
DATA_SUFFIX = ".rkb"
MANIFEST_SUFFIX = ".json"


def new_id(now: datetime) -> str:
    """A sortable, unique backup id: UTC time to the second plus a random suffix."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class Verification:
    """The outcome of the last `verify` of a backup."""

    status: str  # "passed" | "failed"
    at: str
    failed_step: str | None = None
    message: str | None = None


@dataclass
class Manifest:
    """Everything needed to check and restore one backup without the source database."""

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
    duration_s: float = 0.0
    format: str = FORMAT
    verification: Verification | None = None
    extra: dict[str, Any] = field(default_factory=dict)

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

    def to_json(self) -> bytes:
        """Stable, human-readable JSON."""
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Parse a manifest written by `to_json`; raises ValueError/KeyError/TypeError if bad."""
        data = json.loads(raw)
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown manifest format {data.get('format')!r}")
        verification = data.pop("verification", None)
        manifest = cls(**data)
        if verification is not None:
            manifest.verification = Verification(**verification)
        return manifest

    def summary(self) -> dict[str, Any]:
        """The fields `list` shows."""
        return {
            "id": self.id,
            "created_at": self.created_at,
            "size": self.size,
            "source": self.source["url"],
            "kind": self.kind,
            "encrypted": self.encryption is not None,
            "verify": self.verification.status if self.verification else "never",
            "verified_at": self.verification.at if self.verification else None,
        }
