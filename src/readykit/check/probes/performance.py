"""performance: every discovered GET timed at one user, the slowest few swept under load.

Bounded: at most `TIMED_ENDPOINTS` endpoints timed (`TIMING_REQUESTS` each, one after another),
at most `SWEPT_ENDPOINTS` swept at `ProbeOptions.load_users`, every step with its own request
budget (`STEP_MAX_REQUESTS` measured requests) and its own time (`load_step_s`). The verdicts
live in `readykit.check.perf_verdict`. Timings and steps read the client's clock (`Client(clock=)`).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

from readykit.check.client import Response
from readykit.check.discovery import Endpoint
from readykit.check.finding import Evidence, Finding
from readykit.check.not_judged import budget_line
from readykit.check.perf_verdict import (
    ERROR_BLOCKER,
    Step,
    Verdict,
    collapse_candidate,
    judge,
    saturation,
)
from readykit.check.probe import ProbeContext
from readykit.check.target_cpu import CpuWatch, StepCpu
from readykit.load.result import LoadResult
from readykit.load.stats import encode
from readykit.load.sweep import MIN_JUDGED_REQUESTS
from readykit.load.workers import StepPlan, Target, run_step_async

TIMED_ENDPOINTS = 20
TIMING_REQUESTS = 5
SWEPT_ENDPOINTS = 3
STEP_MAX_REQUESTS = 2_000
STEP_TIMEOUT_S = 5.0
_TRANSPORT = ("timeout", "connect", "disconnected", "payload", "connection_reset", "protocol")


@dataclass(frozen=True)
class Timing:
    """One endpoint at one user: its median and slowest of a few sequential requests."""

    path: str
    source: str
    status: int
    median_ms: float
    max_ms: float


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile `q` (0..100) of `values`."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def step_from(result: LoadResult, cpu: StepCpu | None = None) -> Step:
    """A judged step from the load engine's result: 429s apart, 5xx and transport failures as
    errors, other 4xx neither."""
    kinds = result.errors_by_kind
    limited = kinds.get("http_429", 0)
    errors = sum(
        n
        for kind, n in kinds.items()
        if kind in _TRANSPORT or (kind.startswith("http_5") and kind[5:].isdigit())
    )
    answered = result.requests - limited
    p50, p95 = (result.p50_ms, result.p95_ms) if answered > 0 else (math.nan, math.nan)
    if limited * 2 >= max(result.requests, 1):
        p50 = p95 = math.nan  # mostly the 429's own latency, not the service's
    return Step(
        result.users or 0,
        result.requests,
        result.rps,
        p50,
        p95,
        errors,
        limited,
        cpu,
        encode(result.latency) if answered > 0 else "",
    )


async def _time(ctx: ProbeContext, endpoint: Endpoint, untimed: list[str]) -> Timing | None:
    """The endpoint's 1-user timing; None (and why, in `untimed`) when it cannot be timed."""
    path = endpoint.concrete()
    first = await ctx.budget.try_request("GET", path)  # warm-up, and is it there at all?
    if first is None:
        untimed.append(f"GET {path} → no answer")
        return None
    if not 200 <= first.status < 300 or ctx.target.like_unknown(first):
        why = "answers like an unknown path" if 200 <= first.status < 300 else "not 2xx"
        untimed.append(f"GET {path} → {first.status} ({why})")
        return None
    times: list[float] = []
    last: Response = first
    for _ in range(TIMING_REQUESTS):
        if not ctx.budget.has():
            break
        resp = await ctx.budget.try_request("GET", path)
        if resp is None:
            break
        last = resp
        times.append(resp.elapsed_s * 1000)
    if not times:
        untimed.append(f"GET {path} → {first.status} (no timed request within the budget)")
        return None
    return Timing(path, endpoint.source, last.status, statistics.median(times), max(times))


def _candidates(ctx: ProbeContext) -> list[Endpoint]:
    gets = [e for e in ctx.target.gets(TIMED_ENDPOINTS * 2) if not e.auth_like]
    return gets[:TIMED_ENDPOINTS] or [Endpoint("GET", "/", source="default")]


def step_seconds(step_s: float, median_ms: float) -> float:
    """A step long enough for a 1-user step to judge (`MIN_JUDGED_REQUESTS` plus a margin),
    within 1x to 3x the configured step."""
    wanted = 2.5 * MIN_JUDGED_REQUESTS * median_ms / 1000  # margin: a busy host slows it
    return min(max(step_s, wanted), 3 * step_s)


def _cpu_watch(ctx: ProbeContext) -> CpuWatch | None:
    """A watch of this host's CPU, or None on a clock of the client's own (a virtual-time loop's,
    in tests): only real time can say how busy a CPU was."""
    client = ctx.budget.client
    if client.clock is not time.monotonic:
        return None
    return CpuWatch(client.host, client.port)


async def _sweep(ctx: ProbeContext, timing: Timing, users: tuple[int, ...]) -> list[Step]:
    watch = _cpu_watch(ctx)
    step_s = ctx.options.load_step_s
    seconds = step_seconds(step_s, timing.median_ms)
    steps: list[Step] = []
    for n in users:
        step = await _step(ctx, watch, timing.path, n, seconds)
        if step is not None and not step.judged and step.answered > 0 and seconds < 3 * step_s:
            # slower than the sequential timing said: once more, long enough to judge
            seconds = min(3 * step_s, seconds * 2 * MIN_JUDGED_REQUESTS / step.answered)
            step = await _step(ctx, watch, timing.path, n, seconds)
        if step is None:
            break
        steps.append(step)
        ctx.budget.count(step.requests, step.limited)
        if step.mostly_limited:
            if ctx.budget.retry_after is None and ctx.budget.has():
                await ctx.budget.try_request("GET", timing.path)  # when may the check return?
            break  # rate limited: more users would only measure 429s
    return steps


async def _step(
    ctx: ProbeContext, watch: CpuWatch | None, path: str, users: int, seconds: float
) -> Step | None:
    if ctx.budget.time_left() < seconds + 1.0:
        return None
    plan = StepPlan(
        Target(url=ctx.base_url + path),
        users=users,
        duration_s=seconds,
        warmup_s=min(0.2, seconds / 5),
        timeout_s=STEP_TIMEOUT_S,
        max_requests=STEP_MAX_REQUESTS,
    )
    if watch is not None:
        watch.start()
    result = await run_step_async(plan, clock=ctx.budget.client.clock)
    return step_from(result, watch.stop() if watch is not None else None)


def _table(path: str, steps: list[Step], repeat: Step | None = None) -> str:
    rows = [f"GET {path}", *(s.row() for s in steps)]
    if repeat is not None:
        rows.append("repeated: " + repeat.row())
    return "\n".join(rows)


def _report(ctx: ProbeContext, path: str, v: Verdict, ev: Evidence) -> None:
    budget_ms = ctx.options.p95_budget_ms
    if v.serialised is not None:
        one, many = v.serialised
        ctx.add(
            Finding(
                "performance.serialised",
                "performance",
                "blocker",
                f"GET {path} serves one request at a time: {one.rps:.0f} req/s and p50 "
                f"{one.p50_ms:.0f} ms at 1 user, {many.rps:.0f} req/s and p50 {many.p50_ms:.0f} "
                f"ms at {many.users} users ({v.serial_cause})",
                ev,
                "Look for a blocking call inside `async def` (time.sleep, requests, a sync "
                "database driver), a pool of one connection or a global lock; run blocking work "
                "in a thread (`await asyncio.to_thread(...)`) or use an async client.",
            )
        )
    if v.slow_at_one is not None:
        ctx.add(
            Finding(
                "performance.p95-over-budget",
                "performance",
                "blocker",
                f"GET {path}: "
                + (
                    f"p95 {v.slow_at_one.p95_ms:.0f} ms at 1 user"
                    if v.slow_at_one.requests
                    else f"median {v.slow_at_one.p50_ms:.0f} ms of sequential requests"
                )
                + f", over the {budget_ms:.0f} ms budget",
                ev,
                "Profile the endpoint (slow queries, blocking calls on the event loop).",
            )
        )
    if v.slow_under_load is not None:
        s = v.slow_under_load
        ctx.add(
            Finding(
                "performance.p95-over-budget-under-load",
                "performance",
                "warning",
                f"GET {path}: p95 {s.p95_ms:.0f} ms at {s.users} users, over the "
                f"{budget_ms:.0f} ms budget",
                ev,
                "Add capacity (workers, pool sizes) or remove the bottleneck before that load.",
            )
        )
    if v.errors is not None:
        s = v.errors
        ctx.add(
            Finding(
                "performance.errors",
                "performance",
                "blocker",
                f"GET {path}: {s.error_rate:.1%} of requests failed (5xx or no response) at "
                f"{s.users} user(s)",
                ev,
                "Find the failing requests in the logs (5xx, timeouts, resets) and fix them.",
            )
        )
    if v.errors_under_load is not None:
        s = v.errors_under_load
        ctx.add(
            Finding(
                "performance.errors-under-load",
                "performance",
                "blocker" if s.error_rate >= ERROR_BLOCKER else "warning",
                f"GET {path}: {s.errors} of {s.requests} requests ({s.error_rate:.1%}) failed "
                f"(5xx or no response) at {s.users} users, none at 1 user",
                ev,
                "Errors that appear only with concurrency: look for pool exhaustion, timeouts "
                "and shared state in the logs.",
            )
        )
    if v.collapse is not None:
        ctx.add(
            Finding(
                "performance.collapse",
                "performance",
                "warning",
                f"GET {path}: throughput falls at {v.collapse.users} concurrent users while "
                "latency rises (confirmed by a repeated step)",
                ev,
                "More concurrency makes things slower: look for lock contention, a small pool "
                "or CPU-bound work on the event loop.",
            )
        )
    if v.saturated is not None:
        why = saturation(v.saturated) or "the host's CPU"
        ctx.add(
            Finding(
                "performance.cpu-saturated",
                "performance",
                "info",
                f"GET {path}: throughput stopped growing at {v.saturated.users} users because "
                f"this host's CPU was saturated ({why}); not a defect of the service",
                ev,
                "Run the check from another machine to measure the service's own ceiling.",
            )
        )
    if v.unjudged:
        limited = [s for s in v.unjudged if s.mostly_limited]
        failed = [s for s in v.unjudged if s.mostly_failed]
        short = [s for s in v.unjudged if not s.mostly_limited and not s.mostly_failed]
        reasons = [
            f"{len(group)} step(s) {what} (users " + ",".join(str(s.users) for s in group) + ")"
            for group, what in (
                (limited, "answered mostly with 429"),
                (failed, "failed mostly (5xx, timeouts, resets)"),
                (short, "measured too few requests to judge"),
            )
            if group
        ]
        ctx.add(
            Finding(
                "performance.step-not-judged",
                "performance",
                "info",
                f"GET {path}: " + "; ".join(reasons),
                ev,
            )
        )


def _timings_finding(timings: list[Timing]) -> Finding:
    rows = [
        f"GET {t.path} [{t.source}] {t.status} median={t.median_ms:.1f}ms max={t.max_ms:.1f}ms"
        for t in sorted(timings, key=lambda t: -t.median_ms)
    ]
    return Finding(
        "performance.timings",
        "performance",
        "info",
        f"{len(timings)} GET endpoint(s) timed at 1 user; the slowest swept under load",
        Evidence(f"GET x{TIMING_REQUESTS + 1} each", None, "\n".join(rows)),
    )


async def run(ctx: ProbeContext) -> None:
    """Time every GET at one user, sweep the slowest few, judge each sweep."""
    ctx.judges_limits = True  # each step's 429s are told apart below
    timings: list[Timing] = []
    untimed: list[str] = []
    for endpoint in _candidates(ctx):
        if ctx.budget.time_left() < 3 * ctx.options.load_step_s:
            untimed.append("the probe's time ran out before the next endpoint")
            break
        timing = await _time(ctx, endpoint, untimed)
        if timing is not None:
            timings.append(timing)
    if not timings and ctx.budget.mostly_limited:
        ctx.cannot_judge(budget_line(ctx.budget), limited=True)
        return
    if not timings:
        # nothing measured is not a perfect score: the category does not count (null)
        ctx.applicable = False
        ctx.add(
            Finding(
                "performance.not-timed",
                "performance",
                "info",
                "nothing could be timed: no discovered GET answered 2xx, so performance was "
                "not judged",
                Evidence(
                    f"GET x1 each ({len(untimed)} tried)",
                    None,
                    "\n".join(untimed) or "no GET endpoint to time",
                ),
                "Give the check a GET that answers 2xx without credentials (`--endpoint`, or an "
                "OpenAPI document with example path values) to have performance judged.",
            )
        )
        return
    ctx.add(_timings_finding(timings))
    first = [t for t in timings if t.path in ctx.options.sweep_first]
    rest = sorted((t for t in timings if t not in first), key=lambda t: -t.median_ms)
    slowest = (first + rest)[:SWEPT_ENDPOINTS]
    budget_ms = ctx.options.p95_budget_ms
    limited = 0
    swept: list[tuple[str, int]] = []  # (path, the most users judged)
    limited_steps: list[str] = []  # "GET /path at N user(s)" of each step mostly 429
    failed_steps: list[str] = []  # ...of each step whose requests mostly failed
    step_count = 0
    for timing in slowest:
        steps = await _sweep(ctx, timing, ctx.options.load_users)
        if not steps:
            continue
        candidate = collapse_candidate(steps)
        repeat = None
        if candidate is not None:
            watch = _cpu_watch(ctx)
            seconds = step_seconds(ctx.options.load_step_s, timing.median_ms)
            repeat = await _step(ctx, watch, timing.path, candidate.users, seconds)
        verdict = judge(steps, budget_ms, repeat, timing.median_ms)
        ctx.data.setdefault("endpoints", {})[f"GET {timing.path}"] = {
            "source": timing.source,
            "median_ms_1_user": round(timing.median_ms, 3),
            "steps": [s.as_dict() for s in steps],
        }
        judged = [s.users for s in steps if s.judged]
        if judged:
            swept.append((timing.path, max(judged)))
        step_count += len(steps)
        limited_steps += [
            f"GET {timing.path} at {s.users} user(s)" for s in steps if s.mostly_limited
        ]
        failed_steps += [
            f"GET {timing.path} at {s.users} user(s) ({s.errors} of {s.requests} failed)"
            for s in steps
            if s.mostly_failed
        ]
        limited += verdict.limited
        ev = Evidence(
            f"GET {timing.path}, users " + ",".join(str(s.users) for s in steps),
            None,
            _table(timing.path, steps, repeat),
        )
        _report(ctx, timing.path, verdict, ev)
    if limited:
        ctx.add(
            Finding(
                "performance.rate-limited",
                "performance",
                "info",
                f"the service's rate limit refused {limited} sweep requests with 429 (not counted "
                "as errors; latency is measured on the answered ones)",
            )
        )
    if limited_steps and (not swept or len(limited_steps) * 2 >= step_count):
        # most steps measured the limit (steps, not requests: 429s come fast and outnumber any
        # answer in a step of fixed length): what little was judged is no verdict
        ctx.cannot_judge(
            f"{budget_line(ctx.budget)}; steps answered mostly with 429: "
            + ", ".join(limited_steps),
            limited=True,
        )
        return
    if failed_steps:
        # a step of failures has no latency to judge, and is no "nothing wrong" either: the
        # service answered the sequential timing but not the load
        ctx.cannot_judge("the sweep's requests mostly failed: " + ", ".join(failed_steps))
        return
    if swept and not any(f.severity != "info" for f in ctx.findings):
        ctx.add(
            Finding(
                "performance.ok",
                "performance",
                "info",
                f"p95 within {budget_ms:.0f} ms and no errors on "
                + ", ".join(f"GET {p} up to {users} user{'s' * (users > 1)}" for p, users in swept),
            )
        )
