"""performance: a short bounded sweep judged on errors, p95 against the budget, and collapse."""

from __future__ import annotations

import asyncio
import math
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from readykit.check.client import Budget, Client
from readykit.check.discovery import Target
from readykit.check.probe import ProbeContext, ProbeOptions
from readykit.check.probes import performance
from readykit.check.probes.performance import Step, Sweep, judge


def judged(steps: list[Step], budget_ms: float = 300.0) -> dict[str, str]:
    ctx = ProbeContext(
        Budget(Client("http://127.0.0.1:9"), 0, 0.0),
        Target(),
        ProbeOptions(p95_budget_ms=budget_ms),
    )
    judge(ctx, Sweep(steps, "test"), "/items")
    return {f.check: f.severity for f in ctx.findings}


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert performance.percentile(values, 95) == 95.0
    assert performance.percentile([5.0], 95) == 5.0


def test_healthy_sweep() -> None:
    steps = [Step(1, 100, 50, 20, 0.0), Step(4, 400, 190, 25, 0.0), Step(16, 800, 400, 60, 0.0)]
    assert judged(steps) == {"performance.ok": "info"}


def test_errors_are_a_blocker() -> None:
    assert judged([Step(1, 100, 50, 20, 0.05)])["performance.errors"] == "blocker"


def test_slow_at_one_user_is_a_blocker_slow_under_load_a_warning() -> None:
    assert judged([Step(1, 10, 2, 450, 0.0)]) == {"performance.p95-over-budget": "blocker"}
    steps = [Step(1, 100, 50, 20, 0.0), Step(16, 100, 60, 900, 0.0)]
    assert judged(steps) == {"performance.p95-over-budget-under-load": "warning"}


def test_collapse_is_a_warning() -> None:
    steps = [Step(1, 100, 100, 10, 0.0), Step(4, 300, 300, 15, 0.0), Step(16, 150, 90, 200, 0.0)]
    assert judged(steps) == {"performance.collapse": "warning"}


def test_429s_are_not_errors() -> None:
    found = judged([Step(1, 100, 50, 20, 0.0, limited=40)])
    assert found == {"performance.rate-limited": "info", "performance.ok": "info"}


def app(delay_s: float = 0.0, status: int = 200) -> Starlette:
    async def items(request: Request) -> Response:
        if delay_s:
            await asyncio.sleep(delay_s)
        return JSONResponse([], status)

    return Starlette(routes=[Route("/", items)])


@pytest.fixture
def built_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide `readykit.load` so the probe uses its own closed loop."""
    monkeypatch.setitem(sys.modules, "readykit.load", None)


@pytest.mark.usefixtures("built_in")
def test_built_in_sweep_against_a_fast_service(serve_app, run_probe, check_ids) -> None:
    ctx = run_probe(serve_app(app()), performance.run)
    assert check_ids(ctx) == {"performance.ok": "info"}
    assert "users=1" in ctx.findings[0].evidence.response


@pytest.mark.usefixtures("built_in")
def test_built_in_sweep_against_a_slow_service(serve_app, run_probe, check_ids) -> None:
    options = ProbeOptions(p95_budget_ms=100, load_users=(1,), load_step_s=0.3)
    ctx = run_probe(serve_app(app(delay_s=0.15)), performance.run, options=options)
    assert check_ids(ctx)["performance.p95-over-budget"] == "blocker"


@pytest.mark.usefixtures("built_in")
def test_built_in_sweep_against_a_failing_service(serve_app, run_probe, check_ids) -> None:
    ctx = run_probe(serve_app(app(status=503)), performance.run)
    assert check_ids(ctx)["performance.errors"] == "blocker"


@dataclass
class FakeStep:
    """The shape of a `readykit.load` sweep step."""

    users: int
    requests: int
    rps: float
    p95_ms: float
    error_rate: float
    errors_by_kind: dict[str, int] = field(default_factory=dict)


@dataclass
class FakeResult:
    steps: list[FakeStep]
    knee: Any = None
    collapse: Any = None


def test_adapter_uses_readykit_load_when_installed(
    monkeypatch: pytest.MonkeyPatch, serve_app, run_probe, check_ids
) -> None:
    calls: list[dict[str, Any]] = []

    def run_sweep(url: str, *, users: list[int], duration_s: float, workers: int) -> FakeResult:
        calls.append({"url": url, "users": users, "duration_s": duration_s, "workers": workers})
        steps = [FakeStep(1, 10, 5, 10, 0.0), FakeStep(2, 20, 10, 12, 0.25, {"http_429": 5})]
        return FakeResult(steps, knee=1.0, collapse=True)

    fake = types.ModuleType("readykit.load")
    fake.run_sweep = run_sweep  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "readykit.load", fake)
    url = serve_app(app())
    ctx = run_probe(url, performance.run)
    assert calls == [{"url": url + "/", "users": [1, 2], "duration_s": 0.3, "workers": 1}]
    # the 429s are moved out of the error rate; collapse=True is the last step
    assert check_ids(ctx) == {"performance.collapse": "warning", "performance.rate-limited": "info"}
    collapse = next(f for f in ctx.findings if f.check == "performance.collapse")
    assert "collapses at 2 concurrent users" in collapse.title
    assert "engine: readykit.load" in collapse.evidence.response


def test_a_sweep_refused_by_a_rate_limit_claims_nothing() -> None:
    nothing_answered = [Step(1, 500, 250, math.nan, 0.0, limited=500)]
    assert judged(nothing_answered) == {"performance.rate-limited": "info"}


@pytest.mark.usefixtures("built_in")
def test_built_in_sweep_stops_at_the_rate_limit(serve_app, run_probe, check_ids) -> None:
    answered = {"n": 0}

    async def limited(request: Request) -> Response:
        answered["n"] += 1
        if answered["n"] > 10:
            return JSONResponse({"title": "slow down"}, 429, headers={"Retry-After": "60"})
        return JSONResponse([])

    url = serve_app(Starlette(routes=[Route("/", limited)]))
    ctx = run_probe(url, performance.run)
    assert check_ids(ctx) == {"performance.rate-limited": "info", "performance.ok": "info"}
    # the first step stopped soon after 429s outnumbered answers; the next step never ran
    assert ctx.budget.used < 10 + 2 * performance.LIMITED_STOP + 10
    assert "users=2" not in ctx.findings[0].evidence.response
