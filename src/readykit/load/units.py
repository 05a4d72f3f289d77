"""Durations as people write them (`250ms`, `5s`, `2m`), parsed to seconds (readykit.durations)."""

from __future__ import annotations

from readykit.durations import BadDuration
from readykit.durations import parse_duration as _parse

__all__ = ["BadDuration", "parse_duration"]


def parse_duration(
    text: str, *, what: str = "duration", default_unit: str = "s", positive: bool = False
) -> float:
    """Seconds in `text` (`1.5s`, `200ms`, `2m`; a bare number is in `default_unit`).

    Raises BadDuration naming `what` (the option or key); `positive` refuses zero.
    """
    return _parse(text, what=what, default_unit=default_unit, positive=positive)
