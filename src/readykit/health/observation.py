"""What a health check may return besides None/True/False."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Observation:
    """A measured value with its verdict, shown as `observedValue`/`observedUnit` in health+json.

    Args:
        value: the measurement (bytes free, rows, milliseconds ...).
        unit: its unit as health+json writes it ("bytes", "rows", "ms", "percent" ...).
        status: "pass", "warn" or "fail"; a check that only warns keeps the service ready.
        output: a short human reason, shown only in the detailed (ops) view.
    """

    value: float | int | str | None = None
    unit: str | None = None
    status: Status = "pass"
    output: str | None = None
