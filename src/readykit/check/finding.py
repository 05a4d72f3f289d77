"""What a probe reports: a finding with its evidence and the line that says how to fix it."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import quote, quote_plus

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
REDACT_CHARS = 64 * 1024  # how much of a body `excerpt` redacts (the client reads ≤ 64 KiB)

# KEY=value and KEY: value lines of dotenv/settings files: every value hidden, not only known keys
_ASSIGNMENT = re.compile(r"(?m)^(\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.\-]*\s*[=:]\s*)(\S.*)$")


def hide_values(text: str) -> str:
    """`KEY=value` lines with every value replaced: how an exposed settings file is shown."""
    return _ASSIGNMENT.sub(lambda m: m.group(1) + MARK, text)


def secret_forms(secret: str) -> tuple[str, ...]:
    """How a secret the user gave (`--ops-token`) can come back in an answer: as it is, URL-
    encoded, and base64-encoded (standard and URL-safe, with and without padding); longest
    first. Nothing for an empty secret."""
    if not secret:
        return ()
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        forms |= {text, text.rstrip("=")}
    return tuple(sorted((f for f in forms if f), key=len, reverse=True))


def scrub(value: Any, forms: tuple[str, ...]) -> Any:
    """`value` (a report document: dicts, lists, strings) with every form of a given secret
    replaced by the redaction mark, in keys and values alike."""
    if not forms:
        return value
    if isinstance(value, str):
        for form in forms:
            value = value.replace(form, MARK)
        return value
    if isinstance(value, dict):
        return {scrub(k, forms): scrub(v, forms) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, forms) for v in value]
    return value


def excerpt(body: bytes | str, limit: int = EXCERPT_CHARS, *, assignments: bool = False) -> str:
    """A short, printable, redacted part of a response body."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    # redacted before it is cut: a secret cut in half (a DSN before its `@`) is no longer
    # recognisable. Only the first REDACT_CHARS are redacted (a 4 MiB metrics body would take a
    # second), unless redaction shrank them so far that a secret cut there (< 4 KiB long) could
    # reach what is shown: then all of it
    cut = max(REDACT_CHARS, limit * 4)
    whole = text
    text = redact_text(hide_values(text[:cut]) if assignments else text[:cut])
    if len(whole) > cut and len(text) <= limit + 4096:
        text = redact_text(hide_values(whole) if assignments else whole)
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
