"""The one settings object, read from `READYKIT_*` variables; runtime and CLI share it."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from readykit.errors import ConfigurationError

ENV_PREFIX = "READYKIT_"
# examples for the settings a mistake is most likely in: shown with the error
EXAMPLES = {
    "rate_limits": '{"default": "600/minute", "POST /login": "5/minute"}',
    "trusted_proxies": '["10.0.0.0/8", "127.0.0.1"]',
    "cors_allow_origins": '["https://app.example.com"]',
    "cache_routes": '{"GET /rates": 60}',
    "cache_route_tags": '{"GET /rates": ["rates"]}',
    "body_limits": '{"POST /upload": 50000000}',
    "request_timeouts": '{"GET /report": 120}',
    "security_header_overrides": '{"GET /embed": {"X-Frame-Options": ""}}',
    "slow_request_routes": '{"^/reports": 5000}',
    "redact_keys": '["national_id"]',
    "exclude_paths": '["^/health", "^/metrics$"]',
}
_SECRET_FIELDS = frozenset({"ops_token", "privacy_secret", "audit_key"})
_FIELD_PREFIX = re.compile(r"^([a-z_]+)(?=[\[:])")


def env_name(field: str) -> str:
    """The environment variable of a setting: `rate_limits` -> `READYKIT_RATE_LIMITS`."""
    return ENV_PREFIX + field.upper()


def _problem(field: str, what: str, value: Any = None, show: bool = False) -> str:
    line = f"{env_name(field)}: {what}"
    if show and field not in _SECRET_FIELDS:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        line += f" (got {text[:80]!r})"
    if field in EXAMPLES:
        line += f"; e.g. {env_name(field)}='{EXAMPLES[field]}'"
    return line


def describe_error(exc: Exception) -> str:
    """One line per invalid setting, naming its environment variable, the problem, an example."""
    if isinstance(exc, ValidationError):
        lines = []
        for error in exc.errors():
            loc = [str(part) for part in error["loc"]]
            field = loc[0] if loc else "?"
            where = "".join(f"[{part}]" for part in loc[1:])
            lines.append(
                _problem(field, f"{where} {error['msg']}".strip(), error.get("input"), True)
            )
        return "; ".join(lines)
    if isinstance(exc, SettingsError):  # the value is not valid JSON
        match = re.search(r'field "([a-z_]+)"', str(exc))
        field = match.group(1) if match else "?"
        cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
        return _problem(field, f"not valid JSON{cause}")
    return str(exc)


def name_the_variable(message: str) -> str:
    """A message that starts with a setting's field name starts with its variable instead."""
    match = _FIELD_PREFIX.match(message)
    if match and match.group(1) in Settings.model_fields:
        return env_name(match.group(1)) + message[match.end() :]
    return message


class Settings(BaseSettings):
    """readykit's configuration. Every field can be set as `READYKIT_<FIELD NAME>`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    def __init__(self, **values: Any) -> None:
        """Read and validate; an invalid setting is one ConfigurationError line, no traceback
        of pydantic's, that names the environment variable to fix."""
        try:
            super().__init__(**values)
        except (ValidationError, SettingsError) as exc:
            raise ConfigurationError(describe_error(exc)) from None

    service_name: str = Field(
        default="app",
        min_length=1,
        description="The service's name: the health body's `description`.",
    )
    service_version: str | None = Field(
        default=None,
        description="The service's version, shown as `version` in the detailed health body.",
    )
    ops_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for /health details, /metrics and /ops; unset = closed to all "
        "(unless ops_trust_loopback).",
    )
    ops_trust_loopback: bool = Field(
        default=False,
        description="Open ops endpoints to direct loopback clients without the token "
        "(development only: a same-host proxy makes every request loopback).",
    )
    health_cache_s: float = Field(
        default=1.0, ge=0, description="How long a check's result is reused by later probes."
    )
    health_prefix: str = Field(
        default="/health",
        pattern=r"^/[A-Za-z0-9/_.-]*[^/]$",
        description="Where the health endpoints live: <prefix>, <prefix>/live, <prefix>/ready.",
    )
    liveness_max_lag_ms: float = Field(
        default=5000.0, gt=0, description="Event-loop lag above which /health/live fails."
    )
    metrics: bool = Field(default=True, description="Serve /metrics and record HTTP metrics.")
    metrics_public: bool = Field(
        default=False, description="Serve /metrics to anyone, not only the ops token/loopback."
    )
    metrics_path: str = Field(
        default="/metrics",
        pattern=r"^/[A-Za-z0-9/_.-]*$",
        description="Where the Prometheus exposition is served.",
    )
    metrics_max_routes: int = Field(
        default=200, gt=0, description="Distinct http_route label values before OVERFLOW."
    )
    configure_logging: bool = Field(
        default=True, description="Install readykit's logging pipeline at startup."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="json, console, or auto (console on a terminal, JSON otherwise).",
    )
    log_level: str = Field(
        default="INFO",
        pattern=r"(?i)^(debug|info|warning|error|critical)$",
        description="The root log level.",
    )
    access_log: bool = Field(default=True, description="One access-log event per request.")
    exclude_paths: list[str] = Field(
        default_factory=list,
        description="Regexes of paths left out of the access log and HTTP metrics (probes, "
        'scrapes): ["^/health", "^/metrics$"].',
    )
    redact_keys: list[str] = Field(
        default_factory=list, description="More key names whose values are always redacted."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Proxy addresses or CIDRs whose forwarding header is believed (client "
        "address for rate limits, https for HSTS).",
    )
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = Field(
        default="x-forwarded-for",
        description="The one header trusted proxies set (X-Forwarded-For with "
        "X-Forwarded-Proto, or RFC 7239 Forwarded); the other is ignored.",
    )
    # rate limits (readykit.guards.ratelimit)
    rate_limits: dict[str, str] = Field(
        default_factory=dict,
        description='Limits in `limits` notation: {"default": "600/minute", "POST /login": '
        '"5/minute"}; "default" counts every request of a client, route keys add their own.',
    )
    rate_limit_storage: str = Field(
        default="memory://", description="memory:// (one process) or redis://host:port/db."
    )
    rate_limit_strategy: Literal["fixed-window", "moving-window", "sliding-window-counter"] = Field(
        default="sliding-window-counter", description="The `limits` window algorithm."
    )
    rate_limit_fail_open: bool = Field(
        default=True, description="Serve requests unlimited while the storage is unreachable."
    )
    rate_limit_by: Literal["client", "principal"] = Field(
        default="client",
        description="Key limits by client address, or by the principal (address if anonymous).",
    )
    # body and time limits (readykit.guards.limits)
    max_body_bytes: int | None = Field(
        default=1_048_576, gt=0, description="Largest request body; None for no limit."
    )
    body_limits: dict[str, int] = Field(
        default_factory=dict, description='Per-route body limits: {"POST /upload": 50000000}.'
    )
    request_timeout_s: float | None = Field(
        default=30.0, gt=0, description="Time until the response starts; None for no limit."
    )
    request_timeouts: dict[str, float] = Field(
        default_factory=dict, description='Per-route timeouts: {"GET /report": 120}.'
    )
    # security headers and CORS (readykit.guards.headers, readykit.guards.cors)
    security_headers: bool = Field(default=True, description="Add security headers.")
    content_security_policy: str = Field(
        default="default-src 'none'; frame-ancestors 'none'",
        description="Content-Security-Policy for non-HTML responses.",
    )
    html_content_security_policy: str = Field(
        default="default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: https:; font-src 'self' data:; worker-src 'self' blob:; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        description="Content-Security-Policy for HTML responses; each inline script's hash is "
        "added to it.",
    )
    referrer_policy: str = Field(
        default="no-referrer", description="Referrer-Policy on every response."
    )
    hsts_max_age_s: int = Field(default=63_072_000, ge=0, description="0 disables HSTS.")
    security_header_overrides: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='Per-route header values, "" to drop one: '
        '{"GET /embed": {"X-Frame-Options": ""}}.',
    )
    cors_allow_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; empty = no CORS headers."
    )
    cors_allow_credentials: bool = Field(
        default=False, description="Allow credentials for the listed origins (never with '*')."
    )
    cors_allow_methods: list[str] = Field(
        default_factory=lambda: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
        description="Methods a preflight may ask for.",
    )
    cors_allow_headers: list[str] = Field(
        default_factory=lambda: ["authorization", "content-type", "x-request-id"],
        description="Request headers a preflight may ask for.",
    )
    cors_max_age_s: int = Field(
        default=600, ge=0, description="How long browsers may cache a preflight answer."
    )
    # cache (readykit.cache)
    cache_url: str = Field(default="memory://", description="memory:// or redis://host:port/db.")
    cache_max_entries: int = Field(
        default=10_000, gt=0, description="Entries the memory cache holds before evicting."
    )
    cache_max_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="Bytes the memory cache holds before evicting."
    )
    cache_routes: dict[str, float] = Field(
        default_factory=dict,
        description="GET/HEAD routes whose responses are cached, with TTL seconds: "
        '{"GET /rates": 60}.',
    )
    cache_route_tags: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Tags of cached responses, for invalidate(tag): {"GET /rates": ["rates"]}.',
    )
    # records: store, audit, APM (readykit.records)
    store_url: str = Field(
        default="sqlite:///.readykit/readykit.db",
        description="Where audit and APM records go: sqlite:///path or postgresql://...",
    )
    store_required: bool = Field(
        default=True,
        description="Refuse to start when the store is unreachable; false starts and spills.",
    )
    records: bool = Field(default=True, description="Record audit and APM events at all.")
    spill_path: str = Field(
        default=".readykit/spill.jsonl",
        description="Append-only file for records the store could not take yet.",
    )
    records_batch_size: int = Field(default=500, gt=0, description="Events per write to the store.")
    records_flush_s: float = Field(
        default=1.0, gt=0, description="Longest time an event waits before it is written."
    )
    records_max_queue: int = Field(
        default=100_000,
        gt=0,
        description="Events held in memory before the full-queue policy applies.",
    )
    records_full_policy: Literal["spill", "drop"] = Field(
        default="spill", description="When the queue is full: spill to disk, or drop (counted)."
    )
    records_retention_days: float = Field(default=7.0, gt=0, description="APM entries kept.")
    audit_mutations: bool = Field(
        default=True, description="Audit every POST/PUT/PATCH/DELETE the app answers."
    )
    slow_request_ms: float = Field(
        default=1000.0, gt=0, description="Requests slower than this are recorded."
    )
    slow_request_routes: dict[str, float] = Field(
        default_factory=dict,
        description='Per-route thresholds by regex on the route: {"^/reports": 5000}.',
    )
    slow_query_ms: float = Field(
        default=100.0, gt=0, description="SQL statements slower than this are recorded."
    )
    stall_threshold_ms: float = Field(
        default=100.0, gt=0, description="Event-loop stalls longer than this are recorded."
    )
    apm_sample_rate: float = Field(
        default=1.0, gt=0, le=1.0, description="Share of slow requests recorded (1.0 = all)."
    )
    # personal data (readykit.privacy)
    privacy_endpoints: bool = Field(
        default=True, description="Serve /privacy/export and /privacy/erase to logged-in users."
    )
    privacy_secret: SecretStr | None = Field(
        default=None,
        description="Signs download links and seals subject ids; unset: a key file is created.",
    )
    privacy_key_path: str = Field(
        default=".readykit/privacy.key",
        description="Key file created once when no privacy secret is set.",
    )
    privacy_archive_dir: str = Field(
        default=".readykit/exports",
        description="Where export archives are kept until their link expires.",
    )
    privacy_link_ttl_h: float = Field(default=72.0, gt=0, description="Download links expire.")
    privacy_exports_per_day: int = Field(
        default=1, ge=1, description="Exports a subject may ask for per day."
    )

    dashboard: bool = Field(default=True, description="Serve the ops dashboard at /ops.")
    jobs_scheduler: bool = Field(
        default=True,
        description="Run @kit.job functions on schedule in this process; false only watches "
        "them (e.g. web replicas while one worker runs them).",
    )
    audit_durability: Literal["commit", "async"] = Field(
        default="commit",
        description="commit: a mutating request's audit event is on disk before its response "
        "completes (group commit); async: written within records_flush_s, after the response.",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        description="HMAC key of the audit chain (16+ characters; the same on every instance); "
        "unset: audit.key is created next to spill_path.",
    )


def settings_table() -> str:
    """Every setting as a Markdown table (variable, type, default, meaning): docs/settings.md."""
    rows = ["| variable | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        annotation = str(field.annotation).replace("typing.", "").replace("pydantic.types.", "")
        annotation = annotation.replace("<class '", "").replace("'>", "").replace("|", "\\|")
        if field.default_factory is not None:
            default = repr(field.default_factory())  # type: ignore[call-arg]
        else:
            default = repr(field.default)
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(
            f"| `READYKIT_{name.upper()}` | `{annotation}` | `{default}` | {meaning} |".replace(
                "`''`", '`""`'
            )
        )
    return "\n".join(rows) + "\n"
