"""A job's declaration: its name, schedule, grace and timeout, validated into one line of error.

Schedules are intervals (`every="1h"`), aligned to the Unix epoch, so every instance of a
service agrees on the ticks (`1h` ticks on the hour, `1d` at midnight UTC) without talking.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from readykit.durations import Duration, format_duration
from readykit.durations import parse_duration as _parse
from readykit.errors import ConfigurationError

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MIN_EVERY_S = 1.0


def parse_duration(value: Duration, what: str) -> float:
    """Seconds from `"90s"`, `"5m"`, `"1h30m"`, `"1d"` or a number of seconds (positive)."""
    return _parse(value, what=what, positive=True)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job: `every` is None for a job scheduled elsewhere that declared no period."""

    name: str
    every: float | None
    grace: float
    timeout: float | None
    critical: bool
    fn: Callable[[], Any] | None = None
    is_async: bool = False

    @property
    def scheduled(self) -> bool:
        """Run by the kit's own runner (a function and a period)."""
        return self.fn is not None and self.every is not None

    def slot(self, now: float) -> float:
        """The latest tick at or before `now`."""
        assert self.every is not None
        return math.floor(now / self.every) * self.every

    def first_slot(self, now: float) -> float:
        """The first tick to run when the runner starts (or the job is declared) at `now`.

        The current tick, if nobody may have run it yet, is run at once while it is within its
        grace and nearer than the next one (a restart at 00:00:30 still runs the nightly job);
        past half the period it is folded into the next tick, so a short job does not run a
        late tick and the next one moments apart.
        """
        assert self.every is not None
        current = self.slot(now)
        return current if now - current <= min(self.grace, self.every / 2) else current + self.every

    def describe(self) -> str:
        if self.every is None:
            return "on demand"
        return f"every {format_duration(self.every)}, grace {format_duration(self.grace)}"


def make_spec(
    name: str,
    *,
    every: Duration | None,
    grace: Duration | None,
    timeout: Duration | None,
    critical: bool,
    fn: Callable[[], Any] | None = None,
) -> JobSpec:
    """Validate a declaration; a mistake raises ConfigurationError naming the job."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"job {name!r}: a job name is 1-64 lower-case letters, digits, '_', '.', '-' "
            "(e.g. 'rates.refresh')"
        )
    where = f"job {name!r}"
    every_s = parse_duration(every, f"{where} every") if every is not None else None
    if every_s is not None and every_s < MIN_EVERY_S:
        raise ConfigurationError(f"{where}: every={every!r} is shorter than 1s")
    if grace is not None:
        grace_s = parse_duration(grace, f"{where} grace")
    else:  # like healthchecks.io: a tenth of the period, at least a minute, at most an hour
        grace_s = min(max(60.0, (every_s or 0) / 10), 3600.0)
    timeout_s = parse_duration(timeout, f"{where} timeout") if timeout is not None else None
    if timeout_s is None and every_s is not None:
        timeout_s = grace_s  # a run longer than the grace would show the job late anyway
    if timeout_s is not None and grace_s < timeout_s:
        raise ConfigurationError(
            f"{where}: grace {format_duration(grace_s)} is shorter than its run time limit "
            f"(timeout {format_duration(timeout_s)}); a run that long would count as late — "
            "raise grace or lower timeout"
        )
    is_async = False
    if fn is not None:
        if not callable(fn):
            raise ConfigurationError(f"{where}: {fn!r} is not a function")
        if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
            raise ConfigurationError(f"{where}: a job is a plain (async) function, not a generator")
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            params = []
        required = [p.name for p in params if p.default is p.empty and p.kind in (
            p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]  # fmt: skip
        if required:
            raise ConfigurationError(
                f"{where}: a job takes no arguments, but {fn.__name__} requires "
                f"{', '.join(required)}"
            )
        is_async = inspect.iscoroutinefunction(fn)
    return JobSpec(name, every_s, grace_s, timeout_s, critical, fn, is_async)
