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


_OPS_TOOL = (
    ("Types of profiles available", "/debug/pprof/"),  # Go net/http/pprof
    ('"cmdline"', '"memstats"'),  # Go expvar
    ("Apache Server Status for", "Server Version"),  # Apache mod_status
    ("Active connections:", "server accepts handled requests"),  # nginx stub_status
    ('"_links"', '"self"'),  # Spring Boot Actuator index
)


def is_ops_tool(resp: Response) -> bool:
    """A profiler or status page: both markers of one known tool."""
    text = _text(resp)
    return any(a in text and b in text for a, b in _OPS_TOOL)


def is_ops_config(resp: Response) -> bool:
    """Configuration dumped by an ops API: Actuator env/configprops, Prometheus, Jolokia."""
    doc = resp.json()
    if not isinstance(doc, dict):
        return False
    data = doc.get("data")
    return (
        "propertySources" in doc
        or ("contexts" in doc and "beans" in str(doc)[:4096])
        or (doc.get("status") == "success" and isinstance(data, dict) and "yaml" in data)
        or (isinstance(doc.get("value"), dict) and "JMImplementation" in str(doc)[:65536])
    )


# Development servers that say so in `Server` (or `X-Powered-By`), and version banners
_DEV_SERVER = re.compile(
    r"(?i)\b(Werkzeug/|WSGIServer/|SimpleHTTP/|BaseHTTP/|WEBrick/|Development Server|"
    r"Django/\d|Python/\d)"
)
_VERSION = re.compile(r"\b[A-Za-z][\w.-]*/\d+(\.\d+)+")


def banner_findings(resp: Response) -> list[Finding]:
    """A development server answering, or a server/framework version advertised."""
    shown = [
        f"{name}: {resp.header(name)}"
        for name in ("server", "x-powered-by", "x-aspnet-version")
        if resp.header(name)
    ]
    text = "\n".join(shown)
    ev = Evidence(resp.describe(), resp.status, text)
    if _DEV_SERVER.search(text):
        return [
            Finding(
                "exposure.dev-server",
                "exposure",
                "warning",
                f"a development server answers: {shown[0]}",
                ev,
                "Serve through a production server (uvicorn/gunicorn behind a proxy), not the "
                "framework's development server.",
            )
        ]
    if _VERSION.search(text) or resp.header("x-aspnet-version"):
        return [
            Finding(
                "exposure.version-banner",
                "exposure",
                "warning",
                f"the server advertises its version: {'; '.join(shown)}",
                ev,
                "Remove version numbers from Server/X-Powered-By (nginx: server_tokens off).",
            )
        ]
    return []


ODD_HOST = "readykit-check.invalid"


async def any_host(ctx: ProbeContext) -> Finding | None:
    """A warning when a made-up `Host` gets the same answer as the real one (no host check:
    host-header poisoning of links and password-reset mails, cache keys, virtual hosts)."""
    gets = [e for e in ctx.target.gets(5) if not e.auth_like and not e.has_path_params]
    path = gets[0].concrete() if gets else "/"
    normal = await ctx.budget.try_request("GET", path)
    if normal is None or not 200 <= normal.status < 300 or ctx.target.like_unknown(normal):
        return None
    odd = await ctx.budget.try_request("GET", path, headers={"Host": ODD_HOST})
    if odd is None or odd.status != normal.status:
        return None
    host = f"{ctx.budget.client.host}:{ctx.budget.client.port}".encode()
    same = odd.body.replace(ODD_HOST.encode(), b"") == normal.body.replace(host, b"").replace(
        ctx.budget.client.host.encode(), b""
    )
    if not same:
        return None
    return Finding(
        "exposure.any-host",
        "exposure",
        "warning",
        f"GET {path} with Host: {ODD_HOST} is answered like the real host ({odd.status})",
        Evidence(odd.describe(), odd.status, excerpt(odd.body, 200)),
        "Accept only your own host names (the proxy's server_name, Starlette's "
        "TrustedHostMiddleware, Django's ALLOWED_HOSTS).",
    )


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
        "exposure.info-page",
        ("/phpinfo.php", "/info.php", "/php_info.php", "/i.php", "/test.php"),
        lambda r: debug_output(r.body) == "phpinfo page",
        "runtime info page (phpinfo) served",
        "Delete the page: it shows the environment, paths and often secrets.",
    ),
    Exposure(
        "exposure.ops-config",
        ("/actuator/env", "/actuator/configprops", "/api/v1/status/config", "/jolokia/list"),
        is_ops_config,
        "operations endpoint reveals configuration without authentication",
        "Require authentication for operations endpoints, or do not expose them publicly.",
    ),
    Exposure(
        "exposure.ops-tool",
        ("/debug/pprof/", "/debug/vars", "/server-status", "/nginx_status", "/actuator"),
        is_ops_tool,
        "operations tool reachable without authentication",
        "Serve profilers and status pages on an internal port or behind authentication.",
        severity="warning",
    ),
    Exposure(
        "exposure.directory-listing",
        (
            "/",
            "/static/",
            "/uploads/",
            "/files/",
            "/media/",
            "/assets/",
            "/backup/",
            "/backups/",
            "/logs/",
            "/downloads/",
        ),
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
    root = await ctx.budget.try_request("GET", "/")
    if root is not None:
        tried += 1
        for finding in banner_findings(root):
            ctx.add(finding)
    host_finding = await any_host(ctx)
    if host_finding is not None:
        ctx.add(host_finding)
    for exposure in EXPOSURES:
        for path in exposure.paths:
            if not ctx.budget.has():
                break
            resp = await ctx.budget.try_request("GET", path)
            tried += 1
            if resp is None or ctx.target.like_unknown(resp):
                continue
            # a debug page is a leak whatever its status; other leaks must be served (2xx)
            if not 200 <= resp.status < 300 and exposure.check != "exposure.debug":
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
