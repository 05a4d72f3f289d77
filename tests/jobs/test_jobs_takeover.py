"""A run's lease is renewed on a heartbeat: when its instance is killed (`kill -9`: the lease is
never given back) another instance takes the job over once the lease lapses, instead of waiting
for the dead run's whole timeout; a live, renewing holder is never taken over. Also: a tick runs
once at startup, and no run starts once shutdown has begun."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from jobs_support import HOUR, T0, live, make_kit, park, started, tick

from readykit.jobs import check_jobs
from readykit.jobs.runner import LEASE_S
from readykit.testing import FakeClock, lifespan

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    return str(request.getfixturevalue("postgres_url"))


async def test_a_killed_instances_lease_is_taken_over_once_it_lapses(shared_store: str) -> None:
    """The reviewer's case: a critical job (every 10s, timeout 10m) whose instance is killed
    mid-run. Its lease used to reach the run's timeout, so the restarted instance skipped every
    tick as "still going elsewhere" (readiness 503) for ten minutes."""
    clock_a, clock_b = FakeClock(T0), FakeClock(T0)
    a, b = make_kit(store_url=shared_store), make_kit(store_url=shared_store)
    began, release = asyncio.Event(), asyncio.Event()
    ran_on_b: list[float] = []

    async def long() -> None:
        began.set()
        await release.wait()

    async def quick() -> None:
        ran_on_b.append(clock_b())

    spec: dict[str, Any] = {"every": "10s", "grace": "10m", "timeout": "10m", "critical": True}
    a.jobs.add("long", long, **spec)
    b.jobs.add("long", quick, **spec)
    try:
        async with started(a, clock_a) as ja:
            await ja.tick()  # a claims the tick at T0 and runs it...
            await began.wait()
            await live(ja, clock_a, 5)  # renewing its lease once, then it is killed: its runner
            # is never driven again and the lease is not given back
            clock_b.advance(3)
            async with started(b, clock_b) as jb:  # the restarted instance, on the same store
                for _ in range(4):  # T0+3, +10, +20 (the lease is still live: overlaps), +30
                    await tick(jb)
                    clock_b.now = clock_b() // 10 * 10 + 10
                [state] = await jb.status()
                ready = await check_jobs(jb)
            release.set()  # (the killed instance's run, for the test to end)
    finally:
        release.set()
    assert 20 < 5 + LEASE_S <= 30
    assert ran_on_b == [T0 + 30]  # the first tick after the lease lapsed (renewed at T0 + 5)
    newest, *_, oldest = state["runs"]
    assert (newest["outcome"], newest["instance"]) == ("success", b.jobs.instance)
    assert newest["took_over"]["instance"] == a.jobs.instance
    assert newest["overlap"] is False  # the lost run is closed, not taken as still going
    assert (oldest["outcome"], oldest["instance"]) == ("failure", a.jobs.instance)
    assert oldest["error"].startswith(f"lost: instance {a.jobs.instance} stopped renewing")
    assert state["state"] == "ok"
    assert ready.status == "pass"


async def test_a_killed_holder_of_a_long_period_job_is_taken_over_within_the_tick(
    shared_store: str,
) -> None:
    """A tick skipped because the previous run (elsewhere) was still going is looked at again
    once that run's lease could have lapsed: the job does not wait a whole period, and the
    overlap is not reported once the run it names is gone."""
    clock = FakeClock(T0)
    a, b = make_kit(store_url=shared_store), make_kit(store_url=shared_store)
    began, release = asyncio.Event(), asyncio.Event()
    ran_on_b: list[float] = []

    async def long() -> None:
        began.set()
        await release.wait()

    async def quick() -> None:
        ran_on_b.append(clock())

    a.jobs.add("export.batch", long, every="2m", grace="10m", timeout="10m")
    b.jobs.add("export.batch", quick, every="2m", grace="10m", timeout="10m")
    try:
        async with started(a, clock) as ja, started(b, clock) as jb:
            await ja.tick()
            await began.wait()
            clock.advance(1)
            await tick(jb)  # b's startup tick: a holds it
            await live(ja, clock, 115)  # a runs on, alive, then is killed at T0+116
            clock.now = T0 + 120
            await tick(jb)  # the lease (renewed at T0+115) is still live: an overlap
            [skipped] = await jb.status()
            clock.now = T0 + 120 + LEASE_S
            await tick(jb)  # looked at again: lapsed, taken over
            [state] = await jb.status()
            release.set()
    finally:
        release.set()
    assert skipped["state"] == "overlapping"
    assert ran_on_b == [T0 + 120 + LEASE_S]
    assert [(r["outcome"], r["slot"]) for r in state["runs"]] == [
        ("success", T0 + 120), ("skipped", T0 + 120), ("failure", T0)
    ]  # fmt: skip
    assert state["runs"][0]["took_over"]["instance"] == a.jobs.instance
    assert state["state"] == "ok"


async def test_a_live_renewing_holder_is_not_taken_over(shared_store: str) -> None:
    clock = FakeClock(T0)
    a, b = make_kit(store_url=shared_store), make_kit(store_url=shared_store)
    began, release = asyncio.Event(), asyncio.Event()
    ran_on_b: list[float] = []

    async def long() -> None:
        began.set()
        await release.wait()

    async def quick() -> None:
        ran_on_b.append(clock())

    a.jobs.add("export.batch", long, every="1m", grace="10m", timeout="10m")
    b.jobs.add("export.batch", quick, every="1m", grace="10m", timeout="10m")
    try:
        async with started(a, clock) as ja, started(b, clock) as jb:
            first = await ja.tick()
            await began.wait()
            for _ in range(4 * 12):  # four minutes, both instances ticking on the heartbeat
                await live(ja, clock, 5)
                await tick(jb)  # ticks and looks-again of b: all find a's lease live
            [during] = await jb.status()
            release.set()
            await asyncio.gather(*first)
            [after] = await jb.status()
    finally:
        release.set()
    assert ran_on_b == []
    assert during["state"] == "overlapping"
    assert "still going" in during["problems"][0]
    assert [r["outcome"] for r in during["runs"] if r["instance"] == a.jobs.instance][-1:] == [
        "running"
    ]
    outcomes = {r["outcome"] for r in after["runs"]}
    assert outcomes == {"skipped", "success"}  # a's run ended as it should, nothing lost


async def test_a_short_job_runs_its_first_tick_once_at_startup() -> None:
    """A 1 s job started 0.954 s into a second ran that (late) tick and, 53 ms later, the next
    one: past half its period, a missed tick is folded into the next."""
    kit = make_kit()
    runs: list[float] = []
    clock = FakeClock(T0 + 0.954)

    @kit.job("tick", every="1s", critical=True)
    async def job() -> None:
        runs.append(clock())

    async with started(kit, clock) as jobs:
        [at_start] = await jobs.status()
        await tick(jobs)
        clock.now = T0 + 1.007
        await tick(jobs)
        [state] = await jobs.status()
    assert runs == [T0 + 1.007]
    assert [r["slot"] for r in state["runs"]] == [T0 + 1]
    assert at_start["next_due"] == T0 + 1
    assert at_start["state"] == "ok"


async def test_no_run_starts_once_shutdown_has_begun() -> None:
    """uvicorn failing to bind its port shuts down right after startup: a tick due meanwhile
    still started its job after `shutting down`."""
    kit = make_kit()
    clock = FakeClock(T0 + 1000)
    runs: list[float] = []
    in_app_shutdown, proceed, serving = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @kit.job("rates.refresh", every="1h")
    async def refresh() -> None:
        runs.append(clock())

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
                continue
            in_app_shutdown.set()
            await proceed.wait()
            await send({"type": "lifespan.shutdown.complete"})
            return

    kit.jobs.clock = clock
    kit.jobs.sleep = park
    wrapped = kit.wrap(app)

    async def serve() -> None:
        async with lifespan(wrapped):
            await serving.wait()

    task = asyncio.create_task(serve())
    try:
        while kit.jobs._loop is None:
            await asyncio.sleep(0)
        serving.set()  # shutdown begins: readiness fails, then the app's own shutdown runs
        await in_app_shutdown.wait()
        clock.now = T0 + HOUR
        await tick(kit.jobs)  # a tick comes meanwhile
    finally:
        proceed.set()
        await task
    assert runs == []


async def test_a_tick_claimed_as_the_runner_stops_is_given_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    clock = FakeClock(T0 + 1000)
    a, b = make_kit(store_url=url), make_kit(store_url=url)
    runs: list[str] = []
    for name, kit in (("a", a), ("b", b)):

        async def refresh(name: str = name) -> None:
            runs.append(name)

        kit.jobs.add("rates.refresh", refresh, every="1h")
    async with started(a, clock) as ja, started(b, clock) as jb:
        clock.now = T0 + HOUR
        pending = await ja.tick()
        await ja.stop()  # shutdown begins before the tick's claim is made
        await asyncio.gather(*pending)
        await tick(jb)  # the tick was not run, and is there to take
    assert runs == ["b"]
