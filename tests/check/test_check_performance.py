"""performance: every GET timed at one user, the slowest swept; verdicts on fixed-behaviour servers.

The verdict rules are tested on exact steps. The probe's verdicts are tested on virtual time
(`virtual_time.py`): the servers' routes have fixed timings (`/delay?ms=20` takes exactly 20 ms),
the probe's client and load steps read the loop's clock, so every latency in a verdict is exact
whatever the host is doing. One real server in a child process (`perf_target_app.py`) checks the
real-time path (host clock, the service's CPU found on loopback) for its shape only, not its speed.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from readykit.check.discovery import Endpoint, Target
from readykit.check.perf_verdict import Step, judge
from readykit.check.probe import ProbeContext, ProbeOptions
from readykit.check.probes import performance
from readykit.check.target_cpu import CpuWatch, StepCpu, listening_pids
from readykit.serve import ServerProcess, serve

APP = Path(__file__).with_name("perf_target_app.py")
BUDGET = 300.0


def idle(share: float = 0.05) -> StepCpu:
    return StepCpu(generator=0.05, service_cpu=share, service_waiting=0.0)


def busy() -> StepCpu:
    return StepCpu(generator=0.1, service_cpu=0.9, service_waiting=0.3)


def found(v: object) -> set[str]:
    return {
        k
        for k in (
            "serialised",
            "slow_at_one",
            "slow_under_load",
            "errors",
            "errors_under_load",
            "collapse",
            "saturated",
        )
        if getattr(v, k) is not None
    }


def test_flat_throughput_with_an_idle_service_is_serialised() -> None:
    steps = [Step(1, 100, 50, 20, 22, cpu=idle()), Step(16, 110, 55, 300, 330, cpu=idle())]
    v = judge(steps, BUDGET)
    assert found(v) == {"serialised"}
    assert "idle" in v.serial_cause


def test_flat_throughput_of_a_cpu_bound_host_is_saturation_not_a_defect() -> None:
    steps = [Step(1, 500, 250, 3, 5, cpu=busy()), Step(16, 600, 300, 50, 95, cpu=busy())]
    assert found(judge(steps, BUDGET)) == {"saturated"}


def test_heavy_cpu_per_request_on_the_loop_is_serialised() -> None:
    steps = [Step(1, 60, 60, 16, 18, cpu=busy()), Step(16, 70, 70, 240, 470, cpu=busy())]
    v = judge(steps, BUDGET)
    assert found(v) == {"serialised"}
    assert "CPU on the event loop" in v.serial_cause


def test_a_busy_generator_measures_itself() -> None:
    gen = StepCpu(generator=0.95)
    steps = [Step(1, 5000, 5000, 0.2, 0.3, cpu=gen), Step(16, 5200, 5200, 3, 5, cpu=gen)]
    assert found(judge(steps, BUDGET)) == {"saturated"}


def test_unknown_service_cpu_judges_only_a_low_ceiling() -> None:
    low = [Step(1, 100, 50, 20, 22), Step(16, 110, 55, 300, 330)]
    assert found(judge(low, BUDGET)) == {"serialised"}
    high = [Step(1, 900, 900, 1, 2), Step(16, 1000, 1000, 15, 20)]
    assert found(judge(high, BUDGET)) == set()


def test_growing_throughput_is_healthy() -> None:
    steps = [Step(1, 100, 50, 20, 22), Step(4, 400, 200, 20, 23), Step(16, 1600, 790, 20, 25)]
    v = judge(steps, BUDGET)
    assert found(v) == set()
    assert not v.problems


def test_steps_with_too_few_requests_are_marked_and_never_judged() -> None:
    # the old sweep's bug: a step that ran zero requests "collapsed"
    steps = [Step(1, 200, 100, 10, 12), Step(4, 0, 0, math.nan, math.nan)]
    v = judge(steps, BUDGET)
    assert found(v) == set()
    assert [s.users for s in v.unjudged] == [4]
    assert "too few requests to judge" in steps[1].row()


def test_slow_at_one_user_is_a_blocker_slow_under_load_a_warning() -> None:
    assert found(judge([Step(1, 40, 2, 450, 460)], BUDGET)) == {"slow_at_one"}
    steps = [Step(1, 100, 100, 10, 12), Step(16, 1500, 1500, 200, 900)]
    assert found(judge(steps, BUDGET)) == {"slow_under_load"}


def test_slow_one_user_step_too_short_to_judge_uses_the_sequential_median() -> None:
    v = judge([Step(1, 3, 3, 400, 402), Step(4, 12, 12, 401, 402)], BUDGET, None, 401.0)
    assert found(v) == {"slow_at_one"}
    assert v.slow_at_one is not None
    assert v.slow_at_one.requests == 0


def test_errors_at_one_user_and_errors_only_under_load() -> None:
    assert found(judge([Step(1, 100, 100, 5, 6, errors=5)], BUDGET)) == {"errors"}
    steps = [Step(1, 100, 100, 5, 6), Step(16, 1000, 1000, 6, 9, errors=3)]
    assert found(judge(steps, BUDGET)) == {"errors_under_load"}


def test_collapse_counts_only_when_a_repeated_step_confirms_it() -> None:
    steps = [Step(1, 100, 100, 10, 12), Step(4, 400, 400, 10, 12), Step(16, 200, 200, 70, 90)]
    assert found(judge(steps, BUDGET)) == set()  # no repeat: never claimed
    recovered = Step(16, 1500, 1500, 10, 14)
    assert found(judge(steps, BUDGET, recovered)) == set()
    again = Step(16, 210, 210, 70, 95)
    assert found(judge(steps, BUDGET, again)) == {"collapse"}


def test_429s_are_not_errors() -> None:
    v = judge([Step(1, 140, 100, 5, 6, limited=40)], BUDGET)
    assert v.limited == 40
    assert found(v) == set()


# --- the probe on virtual time, against routes of fixed timing -----------------------------


def probe(
    run_virtual_probe: Callable[..., ProbeContext], *paths: str, users: tuple[int, ...] = (1, 8)
) -> ProbeContext:
    """The performance probe over `paths` of `virtual_time.known_app()`, 1-second steps."""
    target = Target(endpoints=[Endpoint("GET", p, source="test") for p in paths])
    options = ProbeOptions(load_users=users, load_step_s=1.0)
    return run_virtual_probe(performance.run, options=options, target=target)


def checks(ctx: ProbeContext) -> dict[str, str]:
    return {f.check: f.severity for f in ctx.findings}


def titles(ctx: ProbeContext) -> dict[str, str]:
    return {f.check: f.title for f in ctx.findings}


def steps(ctx: ProbeContext, path: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = ctx.data["endpoints"][f"GET {path}"]["steps"]
    return steps


@pytest.mark.parametrize(
    "path",
    [
        "/busy?ms=20",  # a blocking call inside async def: the whole loop waits 20 ms
        "/serial?ms=20",  # a global lock (a pool of one) held 20 ms
    ],
)
def test_one_request_at_a_time_is_serialised(run_virtual_probe, path: str) -> None:
    ctx = probe(run_virtual_probe, path)
    assert checks(ctx) == {"performance.timings": "info", "performance.serialised": "blocker"}
    title = titles(ctx)["performance.serialised"]
    assert "p50 20 ms at 1 user" in title
    assert "p50 160 ms at 8 users" in title  # waits for the seven ahead of it
    assert "low ceiling" in title  # the service's CPU is not known here


def test_concurrent_async_handler_is_healthy(run_virtual_probe) -> None:
    ctx = probe(run_virtual_probe, "/delay?ms=20")
    assert checks(ctx) == {"performance.timings": "info", "performance.ok": "info"}
    measured = steps(ctx, "/delay?ms=20")
    assert [s["users"] for s in measured] == [1, 8]
    assert all(s["p95_ms"] == pytest.approx(20, rel=0.01) for s in measured)
    assert measured[1]["requests"] > 7 * measured[0]["requests"]  # eight at a time


def test_slow_endpoint_is_a_blocker(run_virtual_probe) -> None:
    ctx = probe(run_virtual_probe, "/delay?ms=400", users=(1,))
    found = checks(ctx)
    assert found["performance.p95-over-budget"] == "blocker"
    assert "performance.serialised" not in found
    # a 1-second step holds too few 400 ms requests to judge: the sequential median decides
    title = titles(ctx)["performance.p95-over-budget"]
    assert "median 400 ms of sequential requests, over the 300 ms budget" in title


def test_errors_that_appear_only_with_concurrency(run_virtual_probe) -> None:
    ctx = probe(run_virtual_probe, "/flaky?ms=5")
    found = checks(ctx)
    assert found["performance.errors-under-load"] == "blocker"  # far past 1 %
    assert "performance.errors" not in found
    one, eight = steps(ctx, "/flaky?ms=5")
    assert one["errors"] == 0
    assert eight["errors"] * 8 == eight["requests"] * 7  # one of every eight finds it free


def test_an_endpoint_slow_only_under_concurrency(run_virtual_probe) -> None:
    ctx = probe(run_virtual_probe, "/pool?size=3&ms=80", users=(1, 16))
    assert checks(ctx) == {
        "performance.timings": "info",
        "performance.p95-over-budget-under-load": "warning",
    }  # three at a time is not one at a time
    assert "p95 480 ms at 16 users" in titles(ctx)["performance.p95-over-budget-under-load"]


def test_the_slowest_endpoints_are_the_ones_swept(run_virtual_probe, monkeypatch) -> None:
    monkeypatch.setattr(performance, "SWEPT_ENDPOINTS", 1)
    ctx = probe(run_virtual_probe, "/", "/busy?ms=20")
    assert list(ctx.data["endpoints"]) == ["GET /busy?ms=20"]
    assert titles(ctx)["performance.serialised"].startswith("GET /busy?ms=20 ")


# --- one real server: the real-time path, its shape only --------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with serve([sys.executable, str(APP), "--port", "{port}", "--delay-ms", "5"]) as running:
        yield running


def test_a_real_server_is_timed_and_swept(server: ServerProcess, run_probe) -> None:
    target = Target(endpoints=[Endpoint("GET", "/work", source="test")])
    ctx = run_probe(server.url, performance.run, target=target)
    assert "performance.timings" in checks(ctx)
    measured = steps(ctx, "/work")
    assert [s["users"] for s in measured] == [1, 2]
    assert all(s["requests"] > 0 and s["histogram"] for s in measured)


def test_the_service_behind_a_loopback_port_is_found(server: ServerProcess) -> None:
    assert server.process.pid in listening_pids(server.port)
    watch = CpuWatch("127.0.0.1", server.port)
    watch.start()
    assert watch.stop().service_cpu is not None


def test_a_service_cpu_bound_already_at_one_user_is_not_serialised() -> None:
    # seen on the demo on a busy 2-core host: a core's worth at 1 user, flat after, and the
    # 16-user step happened to read below the busy line
    base = Step(1, 277, 369, 1.7, 7.3, cpu=StepCpu(0.06, 0.77, 0.35))
    top = Step(16, 280, 373, 38.1, 97.5, cpu=StepCpu(0.07, 0.54, 0.0))
    assert "serialised" not in found(judge([base, top], BUDGET))


def test_a_ceiling_at_the_generators_own_limit_is_not_serialised() -> None:
    # a hardened nginx on this host: the Python generator, not nginx, sets the ceiling
    base = Step(1, 13652, 13652, 0.07, 0.1, cpu=StepCpu(0.7, 0.3, 0.05))
    top = Step(4, 18791, 18791, 0.2, 0.4, cpu=StepCpu(0.75, 0.4, 0.07))
    v = judge([base, top], BUDGET)
    assert v.serialised is None
    assert v.saturated is top


def test_nothing_timed_is_said_and_does_not_score(serve_app, run_probe) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from readykit.check.finding import Finding
    from readykit.check.scoring import category_scores, overall

    async def private(request: object) -> JSONResponse:
        return JSONResponse({"detail": "not authenticated"}, 401)

    url = serve_app(Starlette(routes=[Route("/items", private), Route("/", private)]))
    target = Target(endpoints=[Endpoint("GET", "/items"), Endpoint("GET", "/")])
    ctx = run_probe(url, performance.run, target=target)
    assert [(f.check, f.severity) for f in ctx.findings] == [("performance.not-timed", "info")]
    assert "GET /items → 401" in ctx.findings[0].evidence.response
    assert not ctx.applicable
    # performance is null and leaves the overall score: a perfect other category stays 100
    ok = Finding("health.ok", "health", "info", "ok")
    scores = category_scores(
        [ok, *ctx.findings], {}, {"health": True, "performance": ctx.applicable}
    )
    assert {s.category: s.score for s in scores}["performance"] is None
    assert overall(scores) == 100


# --- the target's rate limit: 429s are neither errors nor a pass ---------------------------


def test_a_step_answered_mostly_with_429_is_never_judged() -> None:
    # seen on the demo at 600/minute: 906 requests at 1 user, 631 of them 429
    limited = Step(1, 906, 906, math.nan, math.nan, limited=631)
    assert limited.answered >= 20
    assert not limited.judged
    assert "[mostly 429: not judged]" in limited.row()
    v = judge([limited], BUDGET)
    assert v.unjudged == (limited,)
    assert found(v) == set()


def slots_app(slots: int) -> web.Application:
    """`GET /slots`: 2 ms of virtual time for each request; past `slots` at once, a 429."""
    inflight = [0]

    async def handler(request: web.Request) -> web.Response:
        inflight[0] += 1
        try:
            crowded = inflight[0] > slots
            await asyncio.sleep(0.002)
            if crowded:
                return web.Response(status=429, headers={"Retry-After": "7"}, text="slow down")
            return web.Response(text="ok")
        finally:
            inflight[0] -= 1

    app = web.Application()
    app.router.add_get("/slots", handler)
    return app


def slots_probe(run_virtual_probe, users: tuple[int, ...]) -> ProbeContext:
    target = Target(endpoints=[Endpoint("GET", "/slots", source="test")])
    options = ProbeOptions(load_users=users, load_step_s=1.0)
    ctx: ProbeContext = run_virtual_probe(
        performance.run, slots_app(4), options=options, target=target
    )
    return ctx


def test_the_ok_line_names_the_most_users_judged_not_the_most_asked(run_virtual_probe) -> None:
    ctx = slots_probe(run_virtual_probe, (1, 4, 16))
    assert [(s["users"], s["judged"]) for s in steps(ctx, "/slots")] == [
        (1, True),
        (4, True),
        (16, False),
    ]
    assert ctx.not_judged is None
    assert titles(ctx)["performance.ok"] == (
        "p95 within 300 ms and no errors on GET /slots up to 4 users"
    )
    assert titles(ctx)["performance.step-not-judged"] == (
        "GET /slots: 1 step(s) answered mostly with 429 (users 16)"
    )


def test_a_sweep_mostly_of_429s_is_not_judged(run_virtual_probe) -> None:
    ctx = slots_probe(run_virtual_probe, (1, 16))
    assert "performance.ok" not in checks(ctx)
    assert ctx.limited
    assert ctx.not_judged is not None
    assert ctx.not_judged.startswith("the target rate-limited the checker: 429 on ")
    assert ctx.not_judged.endswith("steps answered mostly with 429: GET /slots at 16 user(s)")


# --- a sweep of failures is no pass ------------------------------------------------------------


def load_fails_app() -> web.Application:
    """Answers the check's own GETs at once and never answers the load engine's (they time
    out): the sequential timing passes, every sweep request fails."""

    async def handler(request: web.Request) -> web.Response:
        if request.headers.get("User-Agent", "").startswith("readykit-load"):
            await asyncio.sleep(3600)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/work", handler)
    return app


def test_a_sweep_whose_requests_all_fail_is_not_judged() -> None:
    from readykit.check.runner import CheckOptions, Report, check
    from virtual_time import VirtualTimeLoop, known_server, run_virtual

    async def main(loop: VirtualTimeLoop) -> Report:
        async with known_server(load_fails_app()) as url:
            options = CheckOptions(
                url,
                only=("performance",),
                probe=ProbeOptions(load_users=(1, 4), load_step_s=0.6),
                endpoints=(Endpoint("GET", "/work", source="--endpoint"),),
            )
            return await check(options, clock=loop.time)

    report = run_virtual(main)
    assert report.verdict == "inconclusive"
    assert {c.category: c.score for c in report.categories}["performance"] is None
    (not_judged,) = [f for f in report.findings if f.check == "performance.not-judged"]
    assert not_judged.title.startswith(
        "performance not judged: the sweep's requests mostly failed: GET /work at 1 user(s) ("
    )
    step = report.performance["endpoints"]["GET /work"]["steps"][0]
    assert step["errors"] == step["requests"]


def test_a_short_step_of_failures_is_marked_apart_from_a_short_one() -> None:
    failed = Step(1, 3, 1, math.nan, math.nan, errors=2)
    short = Step(4, 3, 1, 10, 12, errors=1)
    assert failed.mostly_failed
    assert "[mostly failed: not judged]" in failed.row()
    assert not short.mostly_failed
    assert not Step(4, 0, 0, math.nan, math.nan).mostly_failed  # nothing ran: only too short
    assert not Step(1, 400, 200, 10, 12, errors=400).mostly_failed  # judged: `errors` says it
