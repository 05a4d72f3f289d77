"""Running a coroutine at once, up to its first suspension (what Python 3.12's eager tasks do).

The durable audit path lives on turns of the event loop: at 32 connections one turn is a pass
over every request in flight, as long as a commit. A future's waiters, a new task's first step
and a task awaiting another each cost a turn; `step` and `resume` cost none.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
logger = logging.getLogger("readykit")


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
                except asyncio.CancelledError as exc:
                    if not yielded.done():  # this task was cancelled while it waited
                        raise
                    if not yielded.cancelled():  # ... or after the future was done: as
                        try:  # Task.__step does, the cancellation goes into `coro`
                            yielded = coro.throw(exc)
                        except StopIteration as stop:
                            return stop.value  # type: ignore[no-any-return]
                        continue
                except BaseException:
                    if not yielded.done():
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
    except asyncio.CancelledError:
        cancelled = loop.create_future()
        cancelled.cancel()
        return cancelled
    except Exception as exc:
        failed = loop.create_future()
        failed.set_exception(exc)
        return failed
    if finished:
        done = loop.create_future()
        done.set_result(None)
        return done
    rest = loop.create_task(resume(coro, yielded), context=context)
    rest.add_done_callback(lambda task: _if_cancelled_before_it_ran(task, coro, yielded))
    return rest


def _if_cancelled_before_it_ran(
    task: asyncio.Future[None], coro: Coroutine[Any, Any, None], yielded: Any
) -> None:
    """A task cancelled before its first step never ran `resume`: cancel what `coro` waits on
    and the coroutine where it waits, as its own task would have."""
    if not task.cancelled() or inspect.getcoroutinestate(coro) != inspect.CORO_SUSPENDED:
        return
    if isinstance(yielded, asyncio.Future) and not yielded.done():
        yielded.cancel()
    try:
        coro.throw(asyncio.CancelledError())
    except asyncio.CancelledError:
        return
    except Exception:
        logger.exception("cleaning up a cancelled %r failed", coro)
        return
    coro.close()  # it caught the cancellation and waits again: nothing will drive it
