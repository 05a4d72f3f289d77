"""One timer for every request's time limit: the same answers as asyncio.timeout."""

import asyncio

import pytest

from readykit.deadlines import Deadlines

pytestmark = pytest.mark.anyio


async def test_a_limit_that_passes_raises_timeout_error() -> None:
    deadlines = Deadlines(tick_s=0.001)
    with pytest.raises(TimeoutError), deadlines.watch(0.005):
        await asyncio.Event().wait()  # never set: only the limit ends it
    assert deadlines.watched == {}
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_disarmed_limit_never_fires() -> None:
    deadlines = Deadlines(tick_s=0.001)
    with deadlines.watch(0.002) as deadline:
        deadline.disarm()
        for _ in range(3):  # ticks come and go
            await asyncio.sleep(0.002)
    assert not deadline.expired


async def test_a_cancel_from_elsewhere_is_not_turned_into_a_timeout() -> None:
    deadlines = Deadlines(tick_s=0.001)
    started = asyncio.Event()

    async def request() -> None:
        with deadlines.watch(60):
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(request())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines.watched == {}


async def test_many_requests_share_one_timer() -> None:
    deadlines = Deadlines(tick_s=0.001)
    outcomes: list[str] = []

    async def request(limit: float, wait: asyncio.Event) -> None:
        try:
            with deadlines.watch(limit):
                await wait.wait()
            outcomes.append("answered")
        except TimeoutError:
            outcomes.append("timed out")

    done = asyncio.Event()
    done.set()
    await asyncio.gather(
        *(request(0.002, asyncio.Event()) for _ in range(5)),
        *(request(60, done) for _ in range(5)),
    )
    assert sorted(outcomes) == ["answered"] * 5 + ["timed out"] * 5
