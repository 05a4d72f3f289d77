"""Several instances on one store: at most one runs each tick (a lease in the store), on SQLite
and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from jobs_support import HOUR, T0, live, make_kit, sample, started, tick

from readykit.jobs import check_jobs
from readykit.records import store_from_url
from readykit.testing import FakeClock

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    return str(request.getfixturevalue("postgres_url"))


async def test_claim_doc_is_taken_by_exactly_one_of_many(shared_store: str) -> None:
    stores = [store_from_url(shared_store) for _ in range(4)]
    for s in stores:
        await s.open()
    try:
        taken = await asyncio.gather(
            *(s.claim_doc("lease", "job", {"by": i}, until=160.0, at=100.0)
              for i, s in enumerate(stores))
        )  # fmt: skip
        again = await stores[0].claim_doc("lease", "job", {"by": 9}, until=170.0, at=100.0)
        later = await stores[1].claim_doc("lease", "job", {"by": 8}, until=260.0, at=160.0)
        holder = await stores[2].get_doc("lease", "job")
    finally:
        for s in stores:
            await s.close()
    assert sorted(taken) == [False, False, False, True]
    assert again is False  # the lease runs until 160: the same tick cannot be taken again
    assert later is True
    assert holder == {"by": 8}


async def test_a_lease_is_renewed_only_by_its_holder(shared_store: str) -> None:
    """A renewal after the lease lapsed and another instance took it changes nothing (it was a
    read, then a write: the second instance's lease was overwritten and both ran)."""
    a, b = store_from_url(shared_store), store_from_url(shared_store)
    await a.open()
    await b.open()
    try:
        mine, theirs = {"instance": "a", "slot": 100.0}, {"instance": "b", "slot": 160.0}
        assert await a.claim_doc("lease", "job", mine, until=160.0, at=100.0)
        assert await a.renew_doc("lease", "job", mine, until=200.0)  # still a's: moved on
        assert not await b.claim_doc("lease", "job", theirs, until=260.0, at=170.0)
        assert await b.claim_doc("lease", "job", theirs, until=260.0, at=200.0)  # lapsed
        renewed = await a.renew_doc("lease", "job", mine, until=300.0)
        held = await a.get_doc("lease", "job")
        stolen = await a.claim_doc("lease", "job", mine, until=400.0, at=250.0)
    finally:
        await a.close()
        await b.close()
    assert renewed is False
    assert held == theirs
    assert stolen is False  # b's lease still ends at 260, not 300


async def test_two_instances_on_one_store_run_each_tick_once(shared_store: str) -> None:
    calls: list[tuple[str, float]] = []
    clocks = [FakeClock(T0 + 1000), FakeClock(T0 + 1000)]
    kits = [make_kit(store_url=shared_store) for _ in clocks]
    for name, kit, clock in zip("ab", kits, clocks, strict=True):

        def refresh(name: str = name, clock: FakeClock = clock) -> None:
            calls.append((name, clock()))

        kit.jobs.add("rates.refresh", refresh, every="1m", grace="10s")
    async with started(kits[0], clocks[0]) as a, started(kits[1], clocks[1]) as b:
        for _ in range(6):
            for clock in clocks:
                clock.advance(60)
            await asyncio.gather(tick(a), tick(b))
        [state] = await a.status()
    ticks = sorted(t for _, t in calls)
    assert len(ticks) == 6
    assert len(set(ticks)) == 6  # one run per tick, never two
    assert {r["slot"] for r in state["runs"]} == {T0 + 1020 + 60 * i for i in range(6)}
    assert state["state"] == "ok"


async def test_a_run_still_going_elsewhere_makes_the_next_tick_an_overlap(
    shared_store: str,
) -> None:
    clock_a, clock_b = FakeClock(T0), FakeClock(T0)
    release, began = asyncio.Event(), asyncio.Event()
    a, b = make_kit(store_url=shared_store), make_kit(store_url=shared_store)

    async def slow() -> None:
        began.set()
        await release.wait()

    async def quick() -> None:
        return None

    a.jobs.add("export.batch", slow, every="1m", grace="5m", timeout="5m")
    b.jobs.add("export.batch", quick, every="1m", grace="5m", timeout="5m")
    async with started(a, clock_a) as ja, started(b, clock_b) as jb:
        first = await ja.tick()  # instance a takes the first tick and keeps running
        await began.wait()
        await live(ja, clock_a, 55)  # and, alive, renews its lease on the heartbeat
        clock_b.advance(60)
        await tick(jb)  # b: the next tick, but a's run still holds the lease
        [state] = await jb.status()
        release.set()
        await asyncio.gather(*first)
    outcomes = [r["outcome"] for r in state["runs"]]
    assert outcomes == ["skipped", "running"]
    assert "elsewhere" in state["runs"][0]["error"]


async def test_a_start_ping_on_one_instance_is_closed_by_a_ping_on_another(
    shared_store: str,
) -> None:
    clock = FakeClock(T0)
    a, b = make_kit(store_url=shared_store), make_kit(store_url=shared_store)
    for kit in (a, b):
        kit.jobs.add("backup.nightly", every="1d", grace="1h")
    async with started(a, clock) as ja, started(b, clock) as jb:
        opened = await ja.ping("backup.nightly", "start")
        clock.advance(90)
        closed = await jb.ping("backup.nightly", "success")
        [state] = await ja.status()
    assert closed["id"] == opened["id"]
    [run] = state["runs"]
    assert (run["outcome"], run["duration_s"]) == ("success", 90)


async def test_a_lease_claimed_by_a_fast_clock_is_taken_over_once_and_said(
    shared_store: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Instance a's clock is a day fast: its lease of the hourly job ends a day ahead, which
    kept every other instance out, silently. b (right clock) takes it over and says so; when a
    does it again, b and c both see it and one of them runs the tick. Neither status nor the
    last-success gauge believe the runs from the future."""
    calls: list[str] = []
    fast, right = FakeClock(T0 + 86400 + 10), FakeClock(T0 + 10)
    kits = {name: make_kit(store_url=shared_store) for name in "abc"}
    for name, kit in kits.items():

        def refresh(name: str = name) -> None:
            calls.append(name)

        kit.jobs.add("rates.refresh", refresh, every="1h", grace="5m")
    async with (
        started(kits["a"], fast) as a,
        started(kits["b"], right) as b,
        started(kits["c"], right) as c,
    ):
        await tick(a)
        await tick(b)  # b takes a's lease over
        fast.advance(HOUR)
        await tick(a)  # a, still fast, takes the tick a day ahead again
        for hour in (1, 2):  # b and c at once: one of them runs each tick, never both
            right.now = T0 + hour * HOUR + 10
            await asyncio.gather(tick(b), tick(c))
        right.now = T0 + 2 * HOUR + 1800
        [state] = await b.status()
        await c.status()  # the gauge: the newest success each instance has seen in the store
    assert calls[:3] == ["a", "b", "a"]
    assert len(calls) == 5  # then one run per tick by b or c
    assert set(calls[3:]) <= {"b", "c"}
    took_over = [r for r in state["runs"] if r.get("took_over")]
    assert took_over[-1]["slot"] == T0
    assert took_over[-1]["took_over"]["instance"] == kits["a"].jobs.instance
    assert state["state"] == "ok"
    assert state["next_due"] == T0 + 3 * HOUR  # not a's slot, a day ahead
    assert state["problems"][0].startswith(f"clock: a run by instance {kits['a'].jobs.instance}")
    assert state["last_success"] == T0 + 2 * HOUR + 10
    said = [r for r in caplog.records if "taking it over" in r.getMessage()]
    assert 2 <= len(said) <= 3  # once per instance and lease seen, not at every tick
    for name in "bc":
        last = sample(kits[name], "readykit_job_last_success_timestamp_seconds",
                      job_name="rates.refresh")  # fmt: skip
        assert last == T0 + 2 * HOUR + 10  # not a's success, a day ahead


async def test_two_services_with_a_job_of_the_same_name_on_one_store_say_so(
    shared_store: str,
) -> None:
    """Runs and leases are kept by job name: billing's "cleanup" holds search's out. Both
    services report it (before, search never ran and both read "ok")."""
    ran: list[str] = []
    clock = FakeClock(T0 + 10)
    kits = {
        svc: make_kit(store_url=shared_store, service_name=svc) for svc in ("billing", "search")
    }
    for svc, kit in kits.items():

        async def cleanup(svc: str = svc) -> None:
            ran.append(svc)

        kit.jobs.add("cleanup", cleanup, every="1h", grace="59m")
    async with started(kits["billing"], clock) as billing, started(kits["search"], clock) as search:
        await tick(billing)
        await tick(search)
        [seen_by_billing] = await billing.status()
        [seen_by_search] = await search.status()
        checks = [await check_jobs(jobs) for jobs in (billing, search)]
    assert ran == ["billing"]
    assert "shared: service 'search' also records a job named 'cleanup'" in " ".join(
        seen_by_billing["problems"]
    )
    assert "shared: service 'billing' also records a job named 'cleanup'" in " ".join(
        seen_by_search["problems"]
    )
    assert seen_by_search["last_success"] is None  # billing's success is not search's
    assert [c.status for c in checks] == ["warn", "warn"]
