"""Judging one endpoint's sweep: serialised, slow, errors under load, collapse, CPU saturation.

Pure functions over measured steps, so every rule is tested on exact numbers; the performance
probe measures and this module decides. A step with too few requests is never judged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from readykit.check.target_cpu import StepCpu
from readykit.load.sweep import MIN_JUDGED_REQUESTS

ERROR_BLOCKER = 0.01  # errors past this share of a step's requests are a blocker
FLAT_RPS = 2.0  # with >= 4x the users, throughput grew less than this: it did not grow
LOAD_RATIO = 4.0
LATENCY_GROWS = 2.0  # ...while the median latency at least doubled
GENERATOR_BUSY = 0.8  # the generator's share of a core past which it measured itself
SERVICE_BUSY = 0.6  # the service ran or waited for a CPU this share of the step: CPU-bound
CPU_HEAVY_MS = 10.0  # CPU per request past this blocks an event loop by itself
UNKNOWN_CPU_CEILING_RPS = 200.0
# One Python generator cannot push a fast server much past this: a flat ceiling above it is the
# generator's (a hardened nginx: 14 000 req/s at 1 user, 19 000 at 4), and one request at a time
# that fast (< 1 ms each) is no defect anyway
GENERATOR_LIMIT_RPS = 1000.0  # service CPU unknown: a flat ceiling this low is serialised
COLLAPSE_RATIO = 0.7  # throughput below this share of the best earlier step
COLLAPSE_P95_RISE = 1.2


@dataclass(frozen=True)
class Step:
    """One level of users on one endpoint, as measured."""

    users: int
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    errors: int = 0  # 5xx and transport failures (resets, timeouts)
    limited: int = 0  # 429s: a rate limit doing its job, not an error
    cpu: StepCpu | None = None
    histogram: str = field(default="", repr=False, compare=False)  # encoded HDR latencies

    def as_dict(self) -> dict[str, Any]:
        """The step in the JSON report (what `--baseline` compares later)."""
        return {
            "users": self.users,
            "requests": self.requests,
            "rps": round(self.rps, 2),
            "p50_ms": None if math.isnan(self.p50_ms) else round(self.p50_ms, 3),
            "p95_ms": None if math.isnan(self.p95_ms) else round(self.p95_ms, 3),
            "errors": self.errors,
            "limited": self.limited,
            "judged": self.judged,
            "histogram": self.histogram,
        }

    @property
    def answered(self) -> int:
        return self.requests - self.limited

    @property
    def mostly_limited(self) -> bool:
        """Half or more of the requests were 429: the step measured the rate limit."""
        return self.limited > 0 and self.limited * 2 >= self.requests

    @property
    def judged(self) -> bool:
        """Enough answered requests to say anything, and not mostly 429s (else marked, never
        judged: a step of 429s says nothing about the service, good or bad)."""
        return self.answered >= MIN_JUDGED_REQUESTS and not self.mostly_limited

    @property
    def mostly_failed(self) -> bool:
        """Too few answers to judge, and half or more of the requests failed (5xx, timeouts,
        resets): the step measured failures, not the service (a step that finished no request
        at all is only too short)."""
        return (
            self.requests > 0
            and self.errors * 2 >= self.requests
            and not self.judged
            and not self.mostly_limited
        )

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def row(self) -> str:
        """The step as one evidence line."""
        p50 = "n/a" if math.isnan(self.p50_ms) else f"{self.p50_ms:.1f}ms"
        p95 = "n/a" if math.isnan(self.p95_ms) else f"{self.p95_ms:.1f}ms"
        out = (
            f"users={self.users} requests={self.requests} rps={self.rps:.0f} p50={p50} "
            f"p95={p95} errors={self.errors}"
        )
        if self.limited:
            out += f" 429s={self.limited}"
        if self.cpu is not None:
            out += f" cpu(generator)={self.cpu.generator:.0%}"
            if self.cpu.service_demand is not None:
                out += f" cpu(service)={self.cpu.service_cpu:.0%}+{self.cpu.service_waiting:.0%}w"
        if self.mostly_limited:
            out += " [mostly 429: not judged]"
        elif self.mostly_failed:
            out += " [mostly failed: not judged]"
        elif not self.judged:
            out += f" [too few requests to judge: < {MIN_JUDGED_REQUESTS}]"
        return out


@dataclass(frozen=True)
class Verdict:
    """What one endpoint's sweep shows; each field is a finding the probe turns into text."""

    serialised: tuple[Step, Step] | None = None  # (1-user step, N-user step)
    serial_cause: str = ""
    slow_at_one: Step | None = None
    slow_under_load: Step | None = None
    errors: Step | None = None  # errors at one user
    errors_under_load: Step | None = None  # errors only with concurrency
    collapse: Step | None = None  # confirmed by a repeat
    saturated: Step | None = None  # CPU of this host, not a defect
    unjudged: tuple[Step, ...] = ()
    limited: int = 0

    @property
    def problems(self) -> bool:
        return any(
            x is not None
            for x in (
                self.serialised,
                self.slow_at_one,
                self.slow_under_load,
                self.errors,
                self.errors_under_load,
                self.collapse,
            )
        )


def saturation(step: Step) -> str | None:
    """Why `step` measured this host's CPU rather than the service, or None."""
    cpu = step.cpu
    if cpu is None:
        return None
    if cpu.generator >= GENERATOR_BUSY:
        return f"the load generator used {cpu.generator:.0%} of a core"
    if step.rps >= GENERATOR_LIMIT_RPS:
        return f"{step.rps:.0f} req/s is at the load generator's own limit"
    demand = cpu.service_demand
    if demand is not None and demand >= SERVICE_BUSY and cpu_per_request_ms(step) < CPU_HEAVY_MS:
        return (
            f"the service ran or waited for a CPU {demand:.0%} of the step at "
            f"{cpu_per_request_ms(step):.1f} ms of CPU per request"
        )
    return None


def cpu_per_request_ms(step: Step) -> float:
    """The service's CPU per request in ms (nan when unknown)."""
    if step.cpu is None or step.cpu.service_cpu is None or step.rps <= 0:
        return math.nan
    return step.cpu.service_cpu / step.rps * 1000


def _serialised(base: Step, top: Step) -> str | None:
    """The cause when throughput did not grow with users while latency did, else None."""
    if top.users < LOAD_RATIO * base.users or base.rps <= 0 or base.p50_ms <= 0:
        return None
    if top.rps >= FLAT_RPS * base.rps or top.p50_ms < LATENCY_GROWS * base.p50_ms:
        return None
    cpu = top.cpu
    if cpu is not None and cpu.generator >= GENERATOR_BUSY:
        return None
    if top.rps >= GENERATOR_LIMIT_RPS:
        return None
    demands = [s.cpu.service_demand for s in (base, top) if s.cpu is not None]
    if not demands or any(d is None for d in demands):
        if top.rps >= UNKNOWN_CPU_CEILING_RPS:
            return None  # cannot tell a CPU ceiling from serialisation: no claim
        return "throughput stays at a low ceiling whatever the load"
    demand = max(d for d in demands if d is not None)
    if demand >= SERVICE_BUSY:
        # CPU-bound at some step (often already at 1 user): a ceiling of one core is expected,
        # unless each request costs so much CPU that it blocks the loop by itself
        per_request = max(cpu_per_request_ms(base), cpu_per_request_ms(top))
        if per_request >= CPU_HEAVY_MS:
            return (
                f"each request costs {per_request:.0f} ms of CPU on the event loop, so requests "
                "run one after another"
            )
        return None
    return (
        f"the service was idle {1 - demand:.0%} of the time or more yet served one request at a "
        "time: it waits on something that admits one request at once"
    )


def _collapse(steps: list[Step]) -> Step | None:
    best: Step | None = None
    for step in steps:
        if best is not None and (
            step.rps < COLLAPSE_RATIO * best.rps and step.p95_ms > COLLAPSE_P95_RISE * best.p95_ms
        ):
            return step
        if best is None or step.rps > best.rps:
            best = step
    return None


def collapse_candidate(steps: list[Step]) -> Step | None:
    """The first judged step whose throughput fell while latency rose: repeat it to confirm."""
    return _collapse([s for s in steps if s.judged and s.limited == 0])


def judge(
    steps: list[Step],
    budget_ms: float,
    repeat: Step | None = None,
    one_user_median_ms: float | None = None,
) -> Verdict:
    """The verdict on one endpoint's steps (in increasing users).

    `repeat` re-ran the candidate collapse step, which counts only when it collapses again;
    `one_user_median_ms` (sequential timing) judges "slow at one user" when the 1-user step is
    too short to: a median over the budget means the p95 is over it too.
    """
    judged = [s for s in steps if s.judged]
    unjudged = tuple(s for s in steps if not s.judged)
    limited = sum(s.limited for s in steps)
    if not judged or judged[0].users != 1:
        slow = None
        if one_user_median_ms is not None and one_user_median_ms > budget_ms:
            slow = Step(1, 0, 0.0, one_user_median_ms, one_user_median_ms)
        return Verdict(slow_at_one=slow, unjudged=unjudged, limited=limited)
    base, top = judged[0], judged[-1]
    errors = errors_under_load = None
    if base.error_rate >= ERROR_BLOCKER:
        errors = base
    else:
        loaded = [s for s in judged if s.users > 1 and s.errors]
        if loaded:
            errors_under_load = max(loaded, key=lambda s: s.error_rate)
    cause = _serialised(base, top)
    slow_at_one = base if base.p95_ms > budget_ms else None
    flat = top.users >= LOAD_RATIO and top.rps < FLAT_RPS * base.rps
    saturated = top if flat and cause is None and saturation(top) is not None else None
    slow_under_load = None
    over = [s for s in judged if s.users > 1 and s.p95_ms > budget_ms]
    if over and slow_at_one is None and cause is None:
        if saturation(over[0]) is None:
            slow_under_load = over[0]
        else:
            saturated = over[0]
    collapse = None
    candidate = collapse_candidate(steps)
    if candidate is not None and repeat is not None and repeat.judged and cause is None:
        again = _collapse([s for s in judged if s.users < candidate.users] + [repeat])
        if again is not None:
            if saturation(candidate) is None and saturation(repeat) is None:
                collapse = repeat
            else:
                saturated = repeat
    return Verdict(
        serialised=(base, top) if cause is not None else None,
        serial_cause=cause or "",
        slow_at_one=slow_at_one,
        slow_under_load=slow_under_load,
        errors=errors,
        errors_under_load=errors_under_load,
        collapse=collapse,
        saturated=saturated,
        unjudged=unjudged,
        limited=limited,
    )
