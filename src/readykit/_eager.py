"""Running a coroutine at once, up to its first suspension (what Python 3.12's eager tasks do).

The durable audit path lives on turns of the event loop: at 32 connections one turn is a pass
over every request in flight, as long as a commit. A future's waiters, a new task's first step
and a task awaiting another each cost a turn; `step` and `resume` cost none.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def step(coro: Coroutine[Any, Any, T]) -> tuple[bool, Any]:
    """Run `coro` until it suspends: (True, its result) when it finished, or (False, what it
    yielded) to hand to `resume`. Raises what `coro` raised."""
    try:
        return False, coro.send(None)
    except StopIteration as stop:
        return True, stop.value


async def resume(coro: Coroutine[Any, Any, T], yielded: Any) -> T:
    """The rest of a coroutine `step` left suspended on `yielded`, as Task.__step would drive
    it: awaited in the caller's task (no task of its own, no extra turn), or in a new task."""
    try:
        while True:
            if yielded is None:  # a bare yield (asyncio.sleep(0)): give the loop a turn
                await asyncio.sleep(0)
            else:  # an asyncio future: wait for it, then resume; `coro` reads its outcome
                yielded._asyncio_future_blocking = False
                try:
                    await yielded
                except BaseException:
                    if not yielded.done():  # this task was cancelled, not the future
                        raise
            try:
                yielded = coro.send(None)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
    except BaseException:
        coro.close()
        raise


def start_eager(
    coro: Coroutine[Any, Any, None], context: contextvars.Context | None = None
) -> asyncio.Future[None]:
    """Run `coro` now (in `context`) up to its first suspension; the rest, if any, in a task.
    A future of its outcome, already done when it did not suspend."""
    loop = asyncio.get_running_loop()
    context = context if context is not None else contextvars.copy_context()
    try:
        finished, yielded = context.run(step, coro)
    except (Exception, asyncio.CancelledError) as exc:
        failed = loop.create_future()
        failed.set_exception(exc)
        return failed
    if finished:
        done = loop.create_future()
        done.set_result(None)
        return done
    return loop.create_task(resume(coro, yielded), context=context)
