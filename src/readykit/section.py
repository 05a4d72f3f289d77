"""A feature's configuration section: a pydantic model of the settings it reads, validated once,
in the model.

Each feature declares its section next to its code (`readykit.guards.config`,
`readykit.records.config`, ...); `readykit.settings.Settings` is every section at once, read from
`READYKIT_*` variables, so one environment configures the runtime and the CLI alike. A feature
reads only its own section: its parameters are typed by the section, never by `Settings`.

A value is checked by the same parser that later builds from it (`RouteTable`, the rate-limit
parser, `TrustedProxies`, ...), wrapped by `parsed_by`, so there is one definition of what is
valid and an invalid value fails when the settings are read, naming its variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from readykit.errors import ConfigurationError
from readykit.logging.redact import redact_text
from readykit.route_table import RouteTable

T = TypeVar("T")
S = TypeVar("S", bound="Section")
"""Any section (`Setup.section(TeapotConfig)` returns a TeapotConfig)."""

# the backends of the in-process defaults and their shared counterpart (rate limits, cache)
MEMORY_OR_REDIS = ("memory", "redis", "rediss")

Positive = Annotated[float, Field(gt=0)]
"""A per-route value that only makes sense above 0 (a TTL, a timeout, a threshold): checked
like the single settings it refines (`{"GET /": -1}` never caches, `-5` bytes refuses all)."""
PositiveInt = Annotated[int, Field(gt=0)]

# RFC 9110: a field name is a token; a value is visible Latin-1 text, spaces and tabs (a CR/LF
# in a configured header broke every response, `/health/live` included, when the server
# refused it; a curly quote failed to encode when the kit was built)
HeaderName = Annotated[str, Field(pattern=r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")]
HeaderValue = Annotated[str, Field(pattern=r"^[\t\x20-\x7e\x80-\xff]*$")]


class Section(BaseModel):
    """Base of every feature's section; its fields are `READYKIT_<FIELD NAME>` variables."""

    # a section is read as part of Settings (or by read_section): its own validator is built
    # only if it is ever instantiated alone, not for each section at import
    model_config = ConfigDict(defer_build=True, allow_inf_nan=False)  # no `inf` timeouts


def parsed_by(parse: Callable[[T], object]) -> Callable[[T], T]:
    """A validator that runs one of readykit's parsers on the value and keeps the value; the
    parser's ConfigurationError becomes the validation error (its message names the setting)."""

    def validate(value: T) -> T:
        try:
            parse(value)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return value

    return validate


def route_keys(setting: str) -> Callable[[Mapping[str, Any]], Mapping[str, Any]]:
    """Validator: every key of a per-route mapping is `METHOD /template`, `/template` or
    `default` (RouteTable's own parser)."""
    return parsed_by(lambda entries: RouteTable(entries, setting=setting))


def compile_regexes(patterns: Iterable[str], *, setting: str) -> list[re.Pattern[str]]:
    """Each of `patterns` compiled; one that is not a regular expression is refused naming the
    setting."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ConfigurationError(
                f"{setting}: {pattern!r} is not a regular expression ({exc})"
            ) from None
    return compiled


def regexes(setting: str) -> Callable[[Iterable[str]], Iterable[str]]:
    """Validator: every item (or key) is a regular expression."""
    return parsed_by(lambda patterns: compile_regexes(patterns, setting=setting))


def url_scheme(url: str, schemes: Iterable[str], *, setting: str, use: str) -> str:
    """The scheme of a backend URL (`memory://`, `redis://host`, ...), one of `schemes`; any
    other is refused naming the setting and what to `use` instead."""
    scheme = url.split("://", 1)[0]
    if scheme not in schemes:
        raise ConfigurationError(f"{setting}: unknown scheme {scheme!r} in {url!r}; use {use}")
    if scheme.startswith("redis"):  # `redis://host:port/db`: a typo is told now, not at use
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018  # raises for a port that is not a number
            db = parts.path.strip("/")
            if db and not db.isdigit():
                raise ValueError(f"database {db!r} is not a number")
        except ValueError as exc:
            shown = redact_text(url)
            raise ConfigurationError(f"{setting}: {shown!r} is not a Redis URL ({exc})") from None
    return scheme
