"""The logging section of the settings (see readykit.section)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from readykit.section import Section, regexes


class LoggingConfig(Section):
    """readykit.logging: the pipeline, the access log, redaction."""

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
    exclude_paths: Annotated[list[str], AfterValidator(regexes("exclude_paths"))] = Field(
        default_factory=list,
        description="Regexes of paths left out of the access log and HTTP metrics (probes, "
        'scrapes): ["^/health", "^/metrics$"].',
    )
    redact_keys: list[str] = Field(
        default_factory=list, description="More key names whose values are always redacted."
    )
