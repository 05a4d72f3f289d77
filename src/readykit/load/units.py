"""Durations as people write them (`250ms`, `5s`, `2m`), parsed to seconds."""

from __future__ import annotations

import re

from readykit.errors import ReadykitError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)?\s*$")
_SECONDS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class BadDuration(ReadykitError):
    """A duration that is not a number with an optional unit (us, ms, s, m, h)."""


def parse_duration(text: str, *, default_unit: str = "s") -> float:
    """Seconds in `text` (`1.5s`, `200ms`, `2m`; a bare number is in `default_unit`)."""
    match = _DURATION.match(str(text))
    if match is None:
        raise BadDuration(f"bad duration {text!r}: use a number with a unit, e.g. 10s, 500ms, 2m")
    return float(match.group(1)) * _SECONDS[match.group(2) or default_unit]
