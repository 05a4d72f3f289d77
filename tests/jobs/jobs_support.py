"""Jobs test helpers: kits whose jobs run on a fake clock, driven tick by tick."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from readykit import ReadyKit, Settings
from readykit.jobs import Jobs
from readykit.jobs.runner import HEARTBEAT_S
from readykit.testing import FakeClock

HOUR = 3600.0
T0 = 1_800_000_000.0  # on the hour: 2027-01-15 08:00 UTC


async def park(_: float) -> None:
    """The runner's sleep in tests: it never wakes by itself; tests call `tick()`."""
    await asyncio.Event().wait()


def make_kit(**settings: object) -> ReadyKit:
    settings.setdefault("ops_trust_loopback", "ops_token" not in settings)
    return ReadyKit(Settings(configure_logging=False, **settings))  # type: ignore[arg-type]


@asynccontextmanager
async def started(kit: ReadyKit, clock: FakeClock) -> AsyncIterator[Jobs]:
    """Start the kit with its jobs on `clock` (the runner parked), shut it down after."""
    kit.jobs.clock = clock
    kit.jobs.sleep = park
    await kit.startup()
    try:
        yield kit.jobs
    finally:
        await kit.shutdown()


async def tick(jobs: Jobs) -> None:
    """One tick of the runner at the fake clock's time, its runs awaited."""
    await asyncio.gather(*await jobs.tick())


def sample(kit: ReadyKit, name: str, **labels: str) -> float | None:
    return kit.metrics.registry.get_sample_value(name, labels)


async def live(jobs: Jobs, clock: FakeClock, seconds: float) -> None:
    """`seconds` of a live instance: its clock moves a heartbeat at a time and its runner ticks
    at each (renewing the leases of its runs going, as its loop does)."""
    end = clock() + seconds
    while clock() < end:
        clock.advance(min(HEARTBEAT_S, end - clock()))
        await tick(jobs)
