"""Durations as people write them (`250ms`, `5s`, `2m`, `1h30m`, `1d`), parsed to seconds.

One parser for settings, job schedules and CLI options alike.
"""

from __future__ import annotations

import math
import re

from readykit.errors import ConfigurationError

_UNIT_S = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?\s*(?:us|µs|ms|s|m|h|d)\s*)+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")

Duration = str | float | int


class BadDuration(ConfigurationError):
    """A value that is not a duration: a number with a unit (us, ms, s, m, h, d)."""


def parse_duration(
    value: Duration, *, what: str = "duration", default_unit: str = "s", positive: bool = False
) -> float:
    """Seconds in `value`: `"1.5s"`, `"200ms"`, `"1h30m"`, `"1d"`, or a number of
    `default_unit`s. `positive` refuses zero. Raises BadDuration naming `what`."""
    if isinstance(value, bool):
        seconds = math.nan
    elif isinstance(value, int | float):
        seconds = float(value) * _UNIT_S[default_unit]
    else:
        text = str(value).strip()
        if _NUMBER.fullmatch(text):
            seconds = float(text) * _UNIT_S[default_unit]
        elif _WHOLE.fullmatch(text):
            seconds = sum(float(n) * _UNIT_S[u] for n, u in _PART.findall(text))
        else:
            seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        kind = "a positive duration" if positive else "a duration"
        raise BadDuration(
            f"{what}: {value!r} is not {kind}; write e.g. '500ms', '90s', '5m', '1h30m' or '1d'"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """`3600.0` -> `1h`, `90.0` -> `1m30s`: the short form dashboards and logs show."""
    out, rest = "", seconds
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_S[unit]
        if rest >= size:
            whole = int(rest // size) if unit != "s" else rest
            out += f"{whole:g}{unit}"
            rest -= whole * size
    return out or f"{seconds:g}s"
