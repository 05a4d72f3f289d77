"""exposure: secrets, source, dumps and debug output served to anyone, confirmed by content.

A path counts only when its body proves what it is (a `KEY=value` file, a git object, the SQLite
magic bytes, a traceback): a service that answers 200 to every path raises no alarm.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from readykit.check.client import Response
from readykit.check.finding import Evidence, Finding, Severity, excerpt
from readykit.check.fingerprints import debug_output
from readykit.check.probe import ProbeContext
from readykit.logging.redact import Redactor

_ENV_LINE = re.compile(r"(?m)^\s*(?:export\s+)?[A-Z][A-Z0-9_]*\s*=\s*\S")
_SECRET_WORD = r"(password|passwd|secret|token|api[_-]?key|private[_-]?key|dsn|credential)"  # noqa: S105
_SETTING = re.compile(r"(?im)^\s*[\"']?[\w.-]*" + _SECRET_WORD + r"[\w.-]*[\"']?\s*[=:]\s*\S")
_SQL = re.compile(
    r"(?i)(^|\n)\s*(CREATE TABLE|INSERT INTO|-- MySQL dump|-- PostgreSQL database dump|"
    r"PRAGMA foreign_keys|BEGIN TRANSACTION;)"
)
_LISTING = re.compile(r"(?i)<title>\s*(Index of /|Directory listing for /)")


def _text(resp: Response) -> str:
    return resp.body[:32768].decode("utf-8", "replace")


def is_dotenv(resp: Response) -> bool:
    """A dotenv file: several `KEY=value` lines, not HTML."""
    text = _text(resp).lstrip()
    return not text.startswith(("<", "{", "[")) and bool(_ENV_LINE.search(text))


def is_git_config(resp: Response) -> bool:
    return "[core]" in _text(resp) and "repositoryformatversion" in _text(resp)


def is_git_head(resp: Response) -> bool:
    return bool(re.fullmatch(r"ref: refs/[\w./-]+\s*|[0-9a-f]{40}\s*", _text(resp)))


def is_sql_dump(resp: Response) -> bool:
    return not _text(resp).lstrip().startswith("<") and bool(_SQL.search(_text(resp)))


def is_sqlite(resp: Response) -> bool:
    return resp.body.startswith(b"SQLite format 3\x00")


def is_settings(resp: Response) -> bool:
    """A settings file that holds secrets: a secret-looking key assigned a value."""
    text = _text(resp)
    if text.lstrip().startswith("<!") or "<html" in text[:500].lower():
        return False
    if _SETTING.search(text):
        return True
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    return _has_secret(doc, Redactor(), 0)


def _has_secret(doc: Any, redactor: Redactor, depth: int) -> bool:
    if depth > 8:
        return False
    if isinstance(doc, dict):
        return any(
            (redactor.is_sensitive_key(str(k)) and isinstance(v, str) and v.strip())
            or _has_secret(v, redactor, depth + 1)
            for k, v in doc.items()
        )
    if isinstance(doc, list):
        return any(_has_secret(v, redactor, depth + 1) for v in doc[:50])
    return False


def is_pyvenv(resp: Response) -> bool:
    return bool(re.search(r"(?m)^home\s*=", _text(resp))) and "version" in _text(resp)


def is_listing(resp: Response) -> bool:
    return bool(_LISTING.search(_text(resp)))


def is_private_key(resp: Response) -> bool:
    return "PRIVATE KEY-----" in _text(resp)


def is_aws_credentials(resp: Response) -> bool:
    return "aws_secret_access_key" in _text(resp).lower()


def shows_debug(resp: Response) -> bool:
    """A stack trace or a framework's debug page (see `readykit.check.fingerprints`)."""
    return debug_output(resp.body) is not None


@dataclass(frozen=True)
class Exposure:
    """A path to try and the content that proves it is exposed."""

    check: str
    paths: tuple[str, ...]
    confirm: Callable[[Response], bool]
    title: str
    remediation: str
    severity: Severity = "blocker"
    hide_values: bool = False


_NOT_SERVED = "Do not serve the project directory; serve only an explicit static directory."
EXPOSURES = (
    Exposure(
        "exposure.dotenv",
        (
            "/.env",
            "/.env.local",
            "/.env.production",
            "/.env.prod",
            "/.env.dev",
            "/.env.bak",
            "/api/.env",
            "/app/.env",
        ),
        is_dotenv,
        "environment file readable",
        "Remove the file from the web root and rotate every secret it held.",
        hide_values=True,
    ),
    Exposure(
        "exposure.git",
        ("/.git/config", "/.git/HEAD"),
        lambda r: is_git_config(r) or is_git_head(r),
        "git repository readable",
        _NOT_SERVED,
    ),
    Exposure(
        "exposure.sql-dump",
        ("/dump.sql", "/backup.sql", "/db.sql", "/database.sql", "/data.sql"),
        is_sql_dump,
        "SQL dump readable",
        "Move backups out of the web root; keep them encrypted (readykit backup).",
    ),
    Exposure(
        "exposure.sqlite",
        (
            "/db.sqlite3",
            "/db.sqlite",
            "/database.sqlite",
            "/app.db",
            "/data.db",
            "/.readykit/readykit.db",
            "/.readykit/demo.db",
        ),
        is_sqlite,
        "SQLite database readable",
        "Keep database files outside any served directory.",
    ),
    Exposure(
        "exposure.settings",
        (
            "/settings.py",
            "/config.py",
            "/config.yaml",
            "/config.yml",
            "/config.json",
            "/settings.json",
            "/appsettings.json",
            "/application.yml",
            "/secrets.json",
            "/docker-compose.yml",
        ),
        is_settings,
        "settings file with secrets readable",
        "Remove the file from the web root and rotate the secrets it held.",
        hide_values=True,
    ),
    Exposure(
        "exposure.private-key",
        ("/id_rsa", "/server.key", "/key.pem", "/private.pem"),
        is_private_key,
        "private key readable",
        "Remove the key from the web root and replace it.",
    ),
    Exposure(
        "exposure.cloud-credentials",
        ("/.aws/credentials",),
        is_aws_credentials,
        "cloud credentials readable",
        "Remove the file and revoke the credentials.",
        hide_values=True,
    ),
    Exposure(
        "exposure.virtualenv",
        ("/venv/pyvenv.cfg", "/.venv/pyvenv.cfg", "/env/pyvenv.cfg", "/venv/", "/.venv/"),
        lambda r: is_pyvenv(r) or is_listing(r),
        "virtualenv readable",
        _NOT_SERVED,
    ),
    Exposure(
        "exposure.directory-listing",
        ("/", "/static/", "/uploads/", "/files/", "/media/"),
        is_listing,
        "directory listing served",
        "Turn directory listings off.",
        severity="warning",
    ),
    Exposure(
        "exposure.debug",
        ("/__debug__/", "/debug", "/console", "/phpinfo.php", "/_debug_toolbar/"),
        shows_debug,
        "debug page served",
        "Run with debug off in production.",
    ),
)


async def run(ctx: ProbeContext) -> None:
    """Try each known leak path; report those whose content confirms the leak."""
    # the unknown-path answer itself is the cheapest debug-page check
    base = ctx.target.not_found
    if base is not None and shows_debug(base):
        ctx.add(
            Finding(
                "exposure.debug",
                "exposure",
                "blocker",
                "an unknown path answers with a stack trace or debug page",
                Evidence(base.describe(), base.status, excerpt(base.body)),
                "Run with debug off in production; answer unknown paths with a plain 404.",
            )
        )
    tried = 0
    for exposure in EXPOSURES:
        for path in exposure.paths:
            if not ctx.budget.has():
                break
            resp = await ctx.budget.try_request("GET", path)
            tried += 1
            if resp is None or not 200 <= resp.status < 300 or ctx.target.like_unknown(resp):
                continue
            if not exposure.confirm(resp):
                continue
            ctx.add(
                Finding(
                    exposure.check,
                    "exposure",
                    exposure.severity,
                    f"{exposure.title}: {path}",
                    Evidence(
                        resp.describe(),
                        resp.status,
                        excerpt(resp.body, assignments=exposure.hide_values)
                        if not is_sqlite(resp)
                        else "SQLite format 3 (binary database file)",
                    ),
                    exposure.remediation,
                )
            )
            break  # one proof per kind is enough
    if not ctx.findings:
        ctx.add(
            Finding(
                "exposure.none",
                "exposure",
                "info",
                f"none of {tried} known leak paths served a leak",
                Evidence(
                    f"GET x{tried}", None, "catch-all service" if ctx.target.catch_all else ""
                ),
            )
        )
