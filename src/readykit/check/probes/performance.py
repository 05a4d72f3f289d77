"""performance: a short, bounded concurrency sweep: error rate, p95 against a budget, collapse.

The sweep comes from `readykit.load.run_sweep` when that engine is installed, through the thin
adapter `_sweep_with_load`; otherwise a minimal closed-loop measurement in this module does it.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import math
import time
from dataclasses import dataclass
from typing import Any

from readykit.check.client import Budget, BudgetExhausted, RequestFailed
from readykit.check.finding import Evidence, Finding
from readykit.check.probe import ProbeContext

COLLAPSE_RATIO = 0.7  # throughput falling below 70% of the best earlier step
ERROR_BLOCKER = 0.01
MAX_STEP_REQUESTS = 3_000  # the load engine's per-step cap
LIMITED_STOP = 20  # stop a step once 429s outnumber answers (and are at least this many)


@dataclass(frozen=True)
class Step:
    """One level of the sweep."""

    users: int
    requests: int
    rps: float
    p95_ms: float
    error_rate: float
    limited: int = 0  # 429s: a rate limit doing its job, not an error


@dataclass(frozen=True)
class Sweep:
    """The steps, and where the engine saw the knee and the collapse (if it did)."""

    steps: list[Step]
    engine: str
    knee: int | None = None
    collapse: int | None = None


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile `q` (0..100) of `values`."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


async def _closed_loop(budget: Budget, path: str, users: int, seconds: float) -> Step:
    latencies: list[float] = []
    errors = limited = 0
    stop = time.monotonic() + seconds

    async def user() -> None:
        nonlocal errors, limited
        while time.monotonic() < stop:
            try:
                resp = await budget.request("GET", path, read_limit=256 * 1024)
            except BudgetExhausted:
                return
            except RequestFailed:
                errors += 1
                continue
            if resp.status == 429:
                limited += 1
                if limited >= LIMITED_STOP and limited > len(latencies):
                    return  # the service's rate limit answers now: nothing more to measure
            elif resp.status >= 500:
                errors += 1
            else:
                latencies.append(resp.elapsed_s * 1000)

    started = time.monotonic()
    await asyncio.gather(*(user() for _ in range(users)))
    elapsed = max(time.monotonic() - started, 1e-6)
    total = len(latencies) + errors + limited
    return Step(
        users,
        total,
        total / elapsed,
        percentile(latencies, 95),
        errors / total if total else 0.0,
        limited,
    )


async def sweep_closed_loop(
    budget: Budget, path: str, users: tuple[int, ...], step_s: float
) -> Sweep:
    """The built-in fallback: each level of users in a closed loop for `step_s` seconds."""
    steps: list[Step] = []
    for n in users:
        if not budget.has(n) or (steps and steps[-1].limited > steps[-1].requests // 2):
            break  # out of budget, or rate limited: more users would only measure 429s
        steps.append(await _closed_loop(budget, path, n, min(step_s, budget.time_left())))
    return Sweep(steps, "built-in closed loop")


def _field(obj: Any, *names: str) -> Any:
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _users_at(result: Any, name: str, steps: list[Step]) -> int | None:
    """`knee`/`collapse` as a user count: a number, an object with `users`, or a bool (the last
    step, for `collapse: true`)."""
    value = _field(result, name)
    if value is None or value is False:
        return None
    if value is True:
        return steps[-1].users if steps else None
    if isinstance(value, int | float):
        return int(value)
    users = _field(value, "users")
    return int(users) if users is not None else None


def _limited(step: Any) -> int:
    kinds = _field(step, "errors_by_kind") or {}
    return sum(int(n) for kind, n in kinds.items() if "429" in str(kind))


async def _sweep_with_load(url: str, users: tuple[int, ...], step_s: float) -> Sweep | None:
    """Adapter over `readykit.load.run_sweep`; None when that engine is not installed.

    Reads each step's `users`, `requests`, `rps`, `p95_ms` and `error_rate` (429s reported in
    `errors_by_kind` are moved out of the errors), and the sweep's `knee` and `collapse`.
    """
    try:
        run_sweep = importlib.import_module("readykit.load").run_sweep
    except (ImportError, AttributeError):
        return None
    kwargs: dict[str, Any] = {"users": list(users), "duration_s": step_s, "workers": 1}
    accepted = inspect.signature(run_sweep).parameters
    if "max_requests" in accepted:
        kwargs["max_requests"] = MAX_STEP_REQUESTS
    if "timeout_s" in accepted:
        kwargs["timeout_s"] = 5.0
    result: Any = await asyncio.to_thread(run_sweep, url, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    steps = []
    for s in _field(result, "steps") or []:
        p95 = _field(s, "p95_ms")
        if p95 is None:
            p95_s = _field(s, "p95_s", "p95")
            p95 = float(p95_s) * 1000 if p95_s is not None else math.nan
        requests = int(_field(s, "requests", "count", "total") or 0)
        limited = _limited(s)
        error_rate = float(_field(s, "error_rate") or 0.0)
        if limited and requests:
            error_rate = max(0.0, error_rate - limited / requests)
            if limited * 2 >= requests:
                p95 = math.nan  # mostly the 429's own latency: not the service's
        steps.append(
            Step(
                int(_field(s, "users") or 0),
                requests,
                float(_field(s, "rps", "throughput") or 0.0),
                float(p95),
                error_rate,
                limited,
            )
        )
    return Sweep(
        steps,
        "readykit.load",
        _users_at(result, "knee", steps),
        _users_at(result, "collapse", steps),
    )


def _collapse(steps: list[Step]) -> Step | None:
    best = 0.0
    for step in steps:
        if best and step.rps < best * COLLAPSE_RATIO:
            return step
        best = max(best, step.rps)
    return None


def _table(sweep: Sweep) -> str:
    rows = []
    for s in sweep.steps:
        p95 = "n/a" if math.isnan(s.p95_ms) else f"{s.p95_ms:.0f}ms"
        row = f"users={s.users} requests={s.requests} rps={s.rps:.0f} p95={p95}"
        row += f" errors={s.error_rate:.1%}" + (f" 429s={s.limited}" if s.limited else "")
        rows.append(row)
    return "\n".join([f"engine: {sweep.engine}", *rows])


def judge(ctx: ProbeContext, sweep: Sweep, path: str) -> None:
    """Turn a sweep into findings."""
    budget_ms = ctx.options.p95_budget_ms
    request = f"GET {path}, users " + ",".join(str(s.users) for s in sweep.steps)
    ev = Evidence(request, None, _table(sweep))
    limited = sum(s.limited for s in sweep.steps)
    if limited:
        ctx.add(
            Finding(
                "performance.rate-limited",
                "performance",
                "info",
                f"the service's rate limit refused {limited} sweep requests with 429 (not counted "
                "as errors; latency is measured on the answered ones)",
                ev,
            )
        )
    if not sweep.steps:
        return
    worst = max(sweep.steps, key=lambda s: s.error_rate)
    if worst.error_rate >= ERROR_BLOCKER:
        ctx.add(
            Finding(
                "performance.errors",
                "performance",
                "blocker",
                f"{worst.error_rate:.1%} of requests failed at {worst.users} users",
                ev,
                "Find the failing requests in the logs (5xx, timeouts, resets) and fix them.",
            )
        )
    measured = [s for s in sweep.steps if not math.isnan(s.p95_ms)]
    if not measured:
        return
    first = measured[0]
    over = [s for s in measured if s.p95_ms > budget_ms]
    if first.p95_ms > budget_ms:
        ctx.add(
            Finding(
                "performance.p95-over-budget",
                "performance",
                "blocker",
                f"p95 {first.p95_ms:.0f} ms at {first.users} user(s), over the {budget_ms:.0f} ms "
                "budget",
                ev,
                "Profile the endpoint (slow queries, blocking calls on the event loop).",
            )
        )
    elif over:
        ctx.add(
            Finding(
                "performance.p95-over-budget-under-load",
                "performance",
                "warning",
                f"p95 {over[0].p95_ms:.0f} ms at {over[0].users} users, over the "
                f"{budget_ms:.0f} ms budget",
                ev,
                "Add capacity (workers, pool sizes) or remove the bottleneck before that load.",
            )
        )
    collapsed = _collapse([s for s in measured if s.limited == 0])
    if collapsed is not None or sweep.collapse is not None:
        at = collapsed.users if collapsed is not None else sweep.collapse
        ctx.add(
            Finding(
                "performance.collapse",
                "performance",
                "warning",
                f"throughput collapses at {at} concurrent users",
                ev,
                "More concurrency makes things slower: look for lock contention, a small pool "
                "or CPU-bound work on the event loop.",
            )
        )
    if not any(f.severity != "info" for f in ctx.findings):
        ctx.add(
            Finding(
                "performance.ok",
                "performance",
                "info",
                f"p95 within {budget_ms:.0f} ms up to {measured[-1].users} users, no errors",
                ev,
            )
        )


async def run(ctx: ProbeContext) -> None:
    """Sweep a cheap, representative GET endpoint."""
    gets = [e for e in ctx.target.gets(10) if not e.auth_like and not e.has_path_params]
    path = gets[0].concrete() if gets else "/"
    users, step_s = ctx.options.load_users, ctx.options.load_step_s
    sweep = await _sweep_with_load(ctx.base_url + path, users, step_s)
    if sweep is None:
        sweep = await sweep_closed_loop(ctx.budget, path, users, step_s)
    judge(ctx, sweep, path)
