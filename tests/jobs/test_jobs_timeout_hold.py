"""A sync run past its timeout cannot be stopped (a thread): its lease is held until the thread
returns, so the next ticks, here or on another instance, are skipped as overlaps."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from jobs_support import T0, live, make_kit, park, sample, started, tick

from readykit.testing import FakeClock

pytestmark = pytest.mark.anyio


async def test_a_timed_out_sync_run_holds_the_lease_until_its_thread_returns(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    clock_a, clock_b = FakeClock(T0), FakeClock(T0)
    a, b = make_kit(store_url=url), make_kit(store_url=url)
    entered, release = threading.Event(), threading.Event()
    ran_on_b: list[float] = []

    def slow() -> None:
        entered.set()
        release.wait(60)  # released by the test below; the bound only guards a broken test

    a.jobs.add("export.batch", slow, every="1m", grace="30s", timeout="20s")
    b.jobs.add("export.batch", lambda: ran_on_b.append(clock_b()), every="1m", grace="30s",
               timeout="20s")  # fmt: skip

    async def sleep_a(seconds: float) -> None:
        if seconds == 20:  # the run's timeout: it comes once the thread is in the job
            await asyncio.to_thread(entered.wait, 60)
            clock_a.advance(20)
            return
        await park(seconds)

    try:
        async with started(a, clock_a) as ja, started(b, clock_b) as jb:
            ja.sleep = sleep_a
            await tick(ja)  # times out; the thread keeps going
            await live(ja, clock_a, 35)  # a renews the lease on the heartbeat meanwhile
            clock_b.advance(60)
            await tick(jb)  # the next tick, elsewhere: skipped, an overlap
            clock_a.advance(5)
            await tick(ja)  # and here too
            assert ran_on_b == []
            [state_b] = await jb.status()
            outcomes = sorted((r["outcome"], r["overlap"]) for r in state_b["runs"])
            assert outcomes == [("skipped", True), ("timeout", False)]  # one record per tick
            for kit in (a, b):
                assert sample(kit, "readykit_job_overlaps_total", job_name="export.batch") == 1

            release.set()
            await asyncio.gather(*ja._holders)  # the thread returned: the lease is let go
            clock_b.advance(60)
            await tick(jb)
            assert ran_on_b == [T0 + 120]
    finally:
        release.set()
