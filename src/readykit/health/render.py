"""health+json (draft-inadarei-api-health-check-06) bodies, public and detailed."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from readykit.health.observation import Status
from readykit.health.registry import CheckResult

HEALTH_JSON = b"application/health+json"


def overall(results: Iterable[CheckResult]) -> Status:
    """fail if a critical check fails; warn if any check warns or a non-critical one fails."""
    status: Status = "pass"
    for r in results:
        if r.status == "fail" and r.critical:
            return "fail"
        if r.status != "pass":
            status = "warn"
    return status


def body(
    status: Status,
    results: Iterable[CheckResult],
    *,
    detailed: bool,
    description: str | None = None,
    version: str | None = None,
) -> bytes:
    """Encode the response; the public form names each check and its status, never its output."""
    doc: dict[str, Any] = {"status": status}
    if detailed:
        if description:
            doc["description"] = description
        if version:
            doc["version"] = version
    checks: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        entry: dict[str, Any] = {"componentId": r.name, "status": r.status}
        if detailed:
            entry["componentType"] = r.component_type
            entry["observedValue"] = r.observed_value
            entry["observedUnit"] = r.observed_unit
            entry["time"] = r.time
            if r.output:
                entry["output"] = r.output
            entry = {k: v for k, v in entry.items() if v is not None}
        checks.setdefault(f"{r.name}:{r.measurement}", []).append(entry)
    doc["checks"] = checks
    return json.dumps(doc, separators=(",", ":"), default=str).encode()
