"""The one settings object, read from `READYKIT_*` variables; runtime and CLI share it."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from types import UnionType
from typing import Annotated, Any, Literal, Union, cast, get_args, get_origin

from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from readykit.access import OpsConfig
from readykit.cache.config import CacheConfig
from readykit.dashboard.config import DashboardConfig
from readykit.errors import ConfigurationError
from readykit.guards.config import CorsConfig, LimitsConfig, RateLimitConfig, SecurityHeadersConfig
from readykit.health.config import HealthConfig
from readykit.jobs.config import JobsConfig
from readykit.logging.config import LoggingConfig
from readykit.metrics.config import MetricsConfig
from readykit.privacy.config import PrivacyConfig
from readykit.proxies import ProxyConfig
from readykit.records.config import RecordsConfig
from readykit.section import S, Section

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
_FIELD_PREFIX = re.compile(r"^([a-z_]+)(?=[\[:])")


def env_name(field: str) -> str:
    """The environment variable of a setting: `rate_limits` -> `READYKIT_RATE_LIMITS`."""
    return ENV_PREFIX + field.upper()


def _problem(field: str, what: str, value: Any = None, show: bool = False) -> str:
    line = f"{env_name(field)}: {what}"
    if show:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        line += f" (got {text[:80]!r})"
    return _example(field, line)


def _example(field: str, line: str) -> str:
    """`line`, and an example of the setting where a mistake is likely."""
    if field in EXAMPLES:
        line += f"; e.g. {env_name(field)}='{EXAMPLES[field]}'"
    return line


def describe_error(exc: Exception, fields: Mapping[str, FieldInfo] | None = None) -> str:
    """One line per invalid setting, naming its environment variable, the problem, an example;
    `fields`: those of the model that was read (default: Settings')."""
    fields = Settings.model_fields if fields is None else fields
    if isinstance(exc, ValidationError):
        lines = []
        for error in exc.errors():
            cause = error.get("ctx", {}).get("error")
            match = _FIELD_PREFIX.match(str(cause)) if error["type"] == "value_error" else None
            if match and match.group(1) in fields:
                # a section's parser said it, naming the setting (and the value, if shown)
                lines.append(_example(match.group(1), name_the_variable(str(cause), fields)))
                continue
            loc = [str(part) for part in error["loc"]]
            field = loc[0] if loc else "?"
            where = "".join(f"[{part}]" for part in loc[1:])
            secret = field in fields and _is_secret(fields[field])
            what = f"{where} {error['msg']}".strip()
            lines.append(_problem(field, what, error.get("input"), show=not secret))
        return "; ".join(lines)
    if isinstance(exc, SettingsError):  # the value is not valid JSON
        match = re.search(r'field "([a-z_]+)"', str(exc))
        field = match.group(1) if match else "?"
        cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
        return _problem(field, f"not valid JSON{cause}")
    return str(exc)


def _is_secret(field: FieldInfo) -> bool:
    """A SecretStr field (or an optional one): its value is never shown."""
    return field.annotation is SecretStr or SecretStr in get_args(field.annotation)


def name_the_variable(message: str, fields: Mapping[str, FieldInfo] | None = None) -> str:
    """A message that starts with a setting's field name starts with its variable instead."""
    match = _FIELD_PREFIX.match(message)
    if match and match.group(1) in (Settings.model_fields if fields is None else fields):
        return env_name(match.group(1)) + message[match.end() :]
    return message


FROM_ENVIRONMENT = SettingsConfigDict(
    env_prefix=ENV_PREFIX, extra="ignore", frozen=True, allow_inf_nan=False
)


class FromEnvironment(BaseSettings):
    """Sections read from `READYKIT_*` variables; an invalid value is one ConfigurationError
    line, no traceback of pydantic's, that names the environment variable to fix."""

    model_config = FROM_ENVIRONMENT

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except (ValidationError, SettingsError) as exc:
            raise ConfigurationError(describe_error(exc, type(self).model_fields)) from None


# pydantic orders the fields of the sections last base first: this order is the documented one
class Settings(
    JobsConfig,
    DashboardConfig,
    PrivacyConfig,
    RecordsConfig,
    CacheConfig,
    CorsConfig,
    SecurityHeadersConfig,
    LimitsConfig,
    RateLimitConfig,
    ProxyConfig,
    LoggingConfig,
    MetricsConfig,
    OpsConfig,
    HealthConfig,
    FromEnvironment,
):
    """readykit's configuration: every feature's section (readykit.section), each field set as
    `READYKIT_<FIELD NAME>`; validated once, here, when it is read."""

    model_config = FROM_ENVIRONMENT  # restated: the sections' own differs (no environment)


def read_section(section: type[S]) -> S:
    """A section that is not part of Settings (a third party's feature), read from the same
    `READYKIT_*` variables and validated the same way."""
    return cast(S, _reader(section)())


@functools.cache
def _reader(section: type[Section]) -> type[FromEnvironment]:
    return type(section.__name__, (section, FromEnvironment), {})


def _type_name(tp: Any) -> str:
    """A field's type as the settings table shows it: `dict[str, float > 0]`, `str | None`
    (the constraints of `Annotated` types shown only for `> 0`; a pattern is in the meaning)."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        name = _type_name(args[0])
        positive = any(getattr(m, "gt", None) == 0 for f in args[1:] for m in f.metadata)
        return f"{name} > 0" if positive else name
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin in (Union, UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    return "None" if tp is type(None) else str(getattr(tp, "__name__", tp))


def settings_table() -> str:
    """Every setting as a Markdown table (variable, type, default, meaning, the section that
    declares it): docs/settings.md."""
    rows = [
        "| variable | type | default | meaning | section |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        annotation = _type_name(field.annotation).replace("|", "\\|")
        if field.default_factory is not None:
            default = repr(field.default_factory())  # type: ignore[call-arg]
        else:
            default = repr(field.default)
        meaning = (field.description or "").replace("|", "\\|")
        section = next(base for base in Settings.__mro__ if name in base.__annotations__)
        rows.append(
            f"| `READYKIT_{name.upper()}` | `{annotation}` | `{default}` | {meaning} "
            f"| `{section.__module__}.{section.__name__}` |".replace("`''`", '`""`')
        )
    return "\n".join(rows) + "\n"
