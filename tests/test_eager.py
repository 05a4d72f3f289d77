"""readykit._eager: a coroutine run at once up to its first suspension, the rest in a task or
in the caller's task, with its outcome, its context and its cancellation intact."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from readykit._eager import resume, start_eager, step

pytestmark = pytest.mark.anyio

who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


async def test_a_coroutine_that_never_suspends_has_run_when_start_returns() -> None:
    seen: list[str] = []

    async def work() -> None:
        seen.append(who.get())

    context = contextvars.copy_context()
    context.run(who.set, "request-7")
    done = start_eager(work(), context)
    assert seen == ["request-7"]  # ran in the context given, before anything was awaited
    assert done.done()
    await done


async def test_the_rest_runs_after_the_future_it_waits_on_and_keeps_its_context() -> None:
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def work() -> None:
        seen.append("before " + who.get())
        seen.append(await gate + " " + who.get())

    context = contextvars.copy_context()
    context.run(who.set, "request-7")
    done = start_eager(work(), context)
    assert seen == ["before request-7"]
    assert not done.done()
    gate.set_result("after")
    await done
    assert seen == ["before request-7", "after request-7"]


async def test_failures_reach_the_future_before_and_after_the_suspension() -> None:
    async def fails_at_once() -> None:
        raise ValueError("at once")

    with pytest.raises(ValueError, match="at once"):
        await start_eager(fails_at_once())

    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def fails_later() -> None:
        await gate

    later = start_eager(fails_later())
    gate.set_exception(KeyError("later"))
    with pytest.raises(KeyError, match="later"):
        await later


@pytest.mark.parametrize("task_ran", [True, False], ids=["while-it-waits", "before-it-ran"])
async def test_cancelling_the_rest_cancels_the_coroutine_where_it_waits(task_ran: bool) -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    cleaned: list[str] = []

    async def work() -> None:
        try:
            await gate
        except asyncio.CancelledError:
            cleaned.append("cancelled")
            raise
        finally:
            cleaned.append("finally")

    rest = start_eager(work())
    if task_ran:
        await asyncio.sleep(0)  # the task is waiting on the gate
    rest.cancel()  # else at once: the task's first step has not run
    with pytest.raises(asyncio.CancelledError):
        await rest
    assert cleaned == ["cancelled", "finally"]
    assert gate.cancelled()


async def test_a_cancellation_after_the_awaited_future_is_done_still_cancels() -> None:
    """The future is done and the waiting task is cancelled before it wakes: as with a plain
    task, the coroutine gets the cancellation, and so does whoever awaits the task."""
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[int] = loop.create_future()
    seen: list[str] = []

    async def work() -> int:
        try:
            return await gate
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def runner() -> int:
        coro = work()
        _, yielded = step(coro)
        return await resume(coro, yielded)

    task = loop.create_task(runner())
    plain = loop.create_task(work())
    await asyncio.sleep(0)  # both run their first step: they wait on the gate
    gate.set_result(1)
    task.cancel()
    plain.cancel()
    for waiting in (task, plain):
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert seen == ["cancelled", "cancelled"]


async def test_a_coroutine_cancelled_before_it_suspends_gives_a_cancelled_future() -> None:
    async def cancelled_at_once() -> None:
        raise asyncio.CancelledError

    outcome = start_eager(cancelled_at_once())
    assert outcome.cancelled()


async def test_step_and_resume_in_the_callers_task_return_the_result() -> None:
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    order: list[str] = []

    async def work() -> int:
        order.append("sent")
        await asyncio.sleep(0)  # a bare yield is a turn of the loop, not a future
        value = await gate
        order.append("answered")
        return value * 2

    coro = work()
    finished, yielded = step(coro)
    assert (finished, order) == (False, ["sent"])
    order.append("meanwhile")  # what the caller does while the work waits
    asyncio.get_running_loop().call_soon(gate.set_result, 21)
    assert await resume(coro, yielded) == 42
    assert order == ["sent", "meanwhile", "answered"]

    async def at_once() -> int:
        return 5

    assert step(at_once()) == (True, 5)
