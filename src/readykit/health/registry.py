"""Health checks: registration, concurrent runs under per-check timeouts, single-flight, caching."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from readykit.errors import CheckRegistrationError
from readykit.health.observation import Observation, Status
from readykit.logging.redact import redact_text

Kind = Literal["liveness", "readiness", "startup"]
KINDS: tuple[Kind, ...] = ("liveness", "readiness", "startup")
CheckFn = Callable[[], Any]
Clock = Callable[[], float]

logger = logging.getLogger("readykit")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MAX_OUTPUT = 300


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One run of one check, as health+json reports it."""

    name: str
    kind: Kind
    critical: bool
    component_type: str
    measurement: str
    status: Status
    duration_ms: float
    time: str
    observed_value: float | int | str | None = None
    observed_unit: str | None = None
    output: str | None = None


@dataclass(slots=True)
class _Check:
    name: str
    fn: CheckFn
    timeout: float
    kind: Kind
    critical: bool
    component_type: str
    measurement: str
    is_async: bool
    cached: CheckResult | None = None
    expires: float = float("-inf")
    inflight: asyncio.Task[CheckResult] | None = None
    finished: Callable[[], bool] = field(default=lambda: True, repr=False)


def _validate(name: str, fn: CheckFn, timeout: float, kind: str) -> bool:
    """Reject a wrong registration with a message that says what to write; return is_async."""
    if not _NAME.fullmatch(name):
        raise CheckRegistrationError(
            f"health check name {name!r} is invalid: use 1-64 letters, digits, '_', '.', '-'"
        )
    if kind not in KINDS:
        raise CheckRegistrationError(
            f"health check {name!r} has kind={kind!r}: use one of {', '.join(KINDS)}"
        )
    if not timeout > 0:
        raise CheckRegistrationError(f"health check {name!r} needs a timeout > 0 seconds")
    if not callable(fn):
        raise CheckRegistrationError(f"health check {name!r} must be a function, got {fn!r}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: trust them
        return False
    required = [
        p.name
        for p in signature.parameters.values()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if required:
        raise CheckRegistrationError(
            f"health check {name!r} must take no arguments but requires {', '.join(required)}; "
            f"write `async def {name.replace('-', '_').replace('.', '_')}() -> None:` "
            "and raise (or return False) when the dependency is unhealthy"
        )
    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        raise CheckRegistrationError(
            f"health check {name!r} is a generator; write a plain (async) function"
        )
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


def _interpret(value: Any) -> tuple[Status, Observation | None]:
    if isinstance(value, Observation):
        return value.status, value
    if value is False:
        return "fail", None
    return "pass", None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class HealthRegistry:
    """Holds the checks and runs them: concurrently, each under its timeout, results cached.

    Args:
        cache_s: how long a result is reused, so a storm of probes runs each check at most
            once per interval.
        clock: monotonic seconds; injected so tests can move time without sleeping.
    """

    def __init__(self, *, cache_s: float = 1.0, clock: Clock = time.monotonic) -> None:
        self.cache_s = cache_s
        self._clock = clock
        self._checks: dict[str, _Check] = {}
        self.result_hooks: list[Callable[[CheckResult], None]] = []

    def add(
        self,
        name: str,
        fn: CheckFn,
        *,
        timeout: float = 1.0,
        kind: Kind = "readiness",
        critical: bool = True,
        component_type: str | None = None,
        measurement: str | None = None,
    ) -> None:
        """Register `fn` (sync or async, no arguments) as the check `name`."""
        is_async = _validate(name, fn, timeout, kind)
        if name in self._checks:
            raise CheckRegistrationError(f"a health check named {name!r} is already registered")
        self._checks[name] = _Check(
            name=name,
            fn=fn,
            timeout=float(timeout),
            kind=kind,
            critical=critical,
            component_type=component_type or str(getattr(fn, "component_type", "component")),
            measurement=measurement or str(getattr(fn, "measurement", "responseTime")),
            is_async=is_async,
        )

    def names(self, kinds: Iterable[Kind] = KINDS) -> list[str]:
        wanted = set(kinds)
        return [c.name for c in self._checks.values() if c.kind in wanted]

    async def aclose(self) -> None:
        """Release what checks own (clients with an `aclose()`); the kit calls it at shutdown."""
        for check in self._checks.values():
            close = getattr(check.fn, "aclose", None)
            if close is None:
                continue
            try:
                await close()
            except Exception:
                logger.exception("closing health check %r failed", check.name)

    async def run(self, kinds: Iterable[Kind] = KINDS) -> list[CheckResult]:
        """Run (or reuse the cached result of) every check of the given kinds, concurrently."""
        wanted = set(kinds)
        checks = [c for c in self._checks.values() if c.kind in wanted]
        if not checks:
            return []
        return list(await asyncio.gather(*(self._result(c) for c in checks)))

    async def _result(self, check: _Check) -> CheckResult:
        if check.cached is not None and self._clock() < check.expires:
            return check.cached
        if check.inflight is None or check.inflight.done():
            check.inflight = asyncio.ensure_future(self._probe(check))
        # shield: one impatient caller going away must not cancel the others' result
        return await asyncio.shield(check.inflight)

    async def _probe(self, check: _Check) -> CheckResult:
        started = self._clock()
        if not check.finished():
            # the previous run outlived its timeout and is still hung: never pile up another
            result = self._fail(check, started, "previous run still hung past its timeout")
        else:
            running = asyncio.ensure_future(self._start(check))
            done, _ = await asyncio.wait({running}, timeout=check.timeout)
            if not done:
                running.cancel()  # a coroutine stops; a thread cannot: `finished` guards it
                result = self._fail(check, started, f"timed out after {check.timeout:g}s")
            elif (exc := running.exception()) is not None:
                result = self._fail(check, started, _describe(exc))
            else:
                result = self._finish(check, started, *_interpret(running.result()))
        check.cached = result
        check.expires = self._clock() + self.cache_s
        for hook in self.result_hooks:  # fresh results only: metrics see each real run once
            hook(result)
        return result

    @staticmethod
    def _start(check: _Check) -> Awaitable[Any]:
        if check.is_async:
            task: asyncio.Future[Any] = asyncio.ensure_future(check.fn())
            check.finished = task.done
            return task
        returned = threading.Event()
        check.finished = returned.is_set

        def call() -> Any:
            try:
                return check.fn()
            finally:
                returned.set()

        return asyncio.to_thread(call)

    def _fail(self, check: _Check, started: float, output: str) -> CheckResult:
        return self._finish(check, started, "fail", Observation(status="fail", output=output))

    def _finish(
        self, check: _Check, started: float, status: Status, obs: Observation | None
    ) -> CheckResult:
        duration_ms = round((self._clock() - started) * 1000, 3)
        has_value = obs is not None and obs.value is not None
        value = obs.value if has_value and obs is not None else duration_ms
        return CheckResult(
            name=check.name,
            kind=check.kind,
            critical=check.critical,
            component_type=check.component_type,
            measurement=check.measurement,
            status=status,
            duration_ms=duration_ms,
            time=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            # a check may report text (a version, a host): redacted like its output
            observed_value=redact_text(value) if isinstance(value, str) else value,
            observed_unit=(obs.unit if has_value and obs is not None else "ms"),
            # outputs often quote an exception, and exceptions quote DSNs with passwords:
            # redacted whole, then cut (cut first, half a password would be no secret's shape)
            output=redact_text(obs.output)[:_MAX_OUTPUT]
            if obs is not None and obs.output
            else None,
        )
