"""What a probe reports: a finding with its evidence and the line that says how to fix it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from readykit.logging.redact import MARK, redact_text

Severity = Literal["blocker", "warning", "info"]
Category = Literal[
    "health",
    "security-headers",
    "exposure",
    "input-handling",
    "rate-limiting",
    "cors",
    "performance",
    "observability",
    "tls",
    "inside-view",
]
CATEGORIES: tuple[Category, ...] = get_args(Category)
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
EXCERPT_CHARS = 400

# KEY=value and KEY: value lines of dotenv/settings files: every value hidden, not only known keys
_ASSIGNMENT = re.compile(r"(?m)^(\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.\-]*\s*[=:]\s*)(\S.*)$")


def hide_values(text: str) -> str:
    """`KEY=value` lines with every value replaced: how an exposed settings file is shown."""
    return _ASSIGNMENT.sub(lambda m: m.group(1) + MARK, text)


def excerpt(body: bytes | str, limit: int = EXCERPT_CHARS, *, assignments: bool = False) -> str:
    """A short, printable, redacted part of a response body."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text[: limit * 4]
    if assignments:
        text = hide_values(text)
    text = redact_text(text)
    text = "".join(
        ch if ch.isprintable() or ch in "\n\t" else "\N{REPLACEMENT CHARACTER}" for ch in text
    )
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass(frozen=True)
class Evidence:
    """The request sent, the status it got, and the relevant part of the response."""

    request: str
    status: int | None = None
    response: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON form, redacted again on the way out."""
        return {
            "request": redact_text(self.request),
            "status": self.status,
            "response": redact_text(self.response),
        }


@dataclass(frozen=True)
class Finding:
    """One observation of a probe; `check` is a stable id such as `exposure.dotenv`."""

    check: str
    category: Category
    severity: Severity
    title: str
    evidence: Evidence = field(default_factory=lambda: Evidence(request=""))
    remediation: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "check": self.check,
            "category": self.category,
            "severity": self.severity,
            "title": redact_text(self.title),
            "evidence": self.evidence.as_dict(),
            "remediation": self.remediation,
        }
