"""What a probe reports: a finding with its evidence and the line that says how to fix it."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from functools import lru_cache
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


ELLIPSIS = "…"  # where `excerpt` cut a text
CUT_PREFIX_CHARS = 4  # a secret's start cut off by an excerpt is scrubbed from this length on


@lru_cache(maxsize=8)
def _cut_forms(forms: tuple[str, ...]) -> re.Pattern[str]:
    """The start of any form (at least `CUT_PREFIX_CHARS` long) that an excerpt's cut ends."""
    prefixes = {f[:n] for f in forms for n in range(CUT_PREFIX_CHARS, len(f))}
    alternatives = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))
    return re.compile(f"(?:{alternatives}){ELLIPSIS}" if alternatives else f"(?!){ELLIPSIS}")


def scrub(value: Any, forms: tuple[str, ...]) -> Any:
    """`value` (a report document: dicts, lists, strings) with every form of a given secret
    replaced by the redaction mark, in keys and values alike."""
    if not forms:
        return value
    if isinstance(value, str):
        for form in forms:
            value = value.replace(form, MARK)
        if ELLIPSIS in value:
            value = _cut_forms(forms).sub(MARK + ELLIPSIS, value)
        return value
    if isinstance(value, dict):
        return {scrub(k, forms): scrub(v, forms) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, forms) for v in value]
    return value


def excerpt(
    body: bytes | str,
    limit: int = EXCERPT_CHARS,
    *,
    assignments: bool = False,
    secrets: tuple[str, ...] = (),
) -> str:
    """A short, printable, redacted part of a response body; `secrets` (`secret_forms` of a
    secret the user gave) are replaced before the text is cut, so no cut leaves a piece."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    for form in secrets:
        text = text.replace(form, MARK)
    # redacted before it is cut: a secret cut in half (a DSN before its `@`) is no longer
    # recognisable. Only the first REDACT_CHARS are redacted (a 4 MiB metrics body would take a
    # second), unless redaction shrank them so far that a secret cut there (< 4 KiB long) could
    # reach what is shown: then all of it
    cut = max(REDACT_CHARS, limit * 4)
    whole = text
    text = redact_text(hide_values(text[:cut]) if assignments else text[:cut])
    if len(whole) > cut and len(text) <= limit + 4096:
        text = redact_text(hide_values(whole) if assignments else whole)
    text = printable(text)
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def printable(text: str) -> str:
    """`text` with every control and non-printable character (ESC, CR, OSC 8 links, bidi
    overrides: what a target could aim at a terminal) replaced by U+FFFD; newlines and tabs
    kept."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() or ch in "\n\t" else "\N{REPLACEMENT CHARACTER}" for ch in text
    )


@dataclass(frozen=True)
class Evidence:
    """The request sent, the status it got, and the relevant part of the response."""

    request: str
    status: int | None = None
    response: str = ""

    def __post_init__(self) -> None:
        # what a target sent (a path from its OpenAPI document, a header) reaches terminals
        object.__setattr__(self, "request", printable(self.request))
        object.__setattr__(self, "response", printable(self.response))

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

    def __post_init__(self) -> None:
        # titles quote what the target said (a health status, a Server header, a path): made
        # printable here, once, for every report
        object.__setattr__(self, "title", printable(self.title))
        object.__setattr__(self, "remediation", printable(self.remediation))

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
