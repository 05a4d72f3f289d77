"""Schema fingerprint: a SHA-256 over a canonical JSON description of the schema."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def fingerprint(description: Any) -> str:
    """`sha256:<hex>` of `description` serialised canonically (sorted keys, no whitespace)."""
    canonical = json.dumps(description, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
