"""Time limits for many requests on one timer of the event loop.

`asyncio.timeout` arms a `TimerHandle` per request and cancels it again (a few microseconds, most
of a time limit's cost when nearly every response starts well in time). `Deadlines` keeps the
requests under a limit in a dict and wakes every `tick_s` while any is watched: a request pays a
dict insert and delete, and a limit fires at most one tick late. Cancellation follows
`asyncio.timeout`: the task is cancelled, and only a cancellation that is ours (the task's
cancel count back to where it was) becomes `TimeoutError`; any other propagates.
"""

from __future__ import annotations

import asyncio

TICK_S = 0.01
# where the scope carries a request's armed limit, for a layer below the kit's that holds the
# response start (the response cache buffers a body to store it): it disarms it there, since
# for the app the response has started
SCOPE_KEY = "readykit.deadline"


class Deadline:
    """One request's limit; `disarm()` when its response starts."""

    __slots__ = ("cancelling", "expired", "owner", "task", "when")

    def __init__(self, owner: Deadlines, task: asyncio.Task[object], when: float) -> None:
        self.owner = owner
        self.task = task
        self.when = when
        self.cancelling = task.cancelling()
        self.expired = False

    def disarm(self) -> None:
        """The response is under way: the limit no longer applies."""
        self.owner.watched.pop(id(self), None)

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.disarm()
        # our cancel is taken back whatever became of it (as asyncio.timeout does); an app
        # that swallowed it and returned late is timed out all the same (its response, sent
        # after the limit fired, is dropped by the kit's layer)
        if (
            self.expired
            and self.task.uncancel() <= self.cancelling
            and (exc_type is asyncio.CancelledError or exc_type is None)
        ):
            raise TimeoutError from exc


class Deadlines:
    """The time limits of the requests on one event loop."""

    def __init__(self, tick_s: float = TICK_S) -> None:
        self.tick_s = tick_s
        self.watched: dict[int, Deadline] = {}
        self._armed: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, timeout_s: float) -> Deadline:
        """A limit of `timeout_s` on the current task (use it as a context manager)."""
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        deadline = Deadline(self, task, loop.time() + timeout_s)
        self.watched[id(deadline)] = deadline
        if self._armed is None or self._loop is not loop:  # (a kit may outlive its first loop)
            self._loop = loop
            self._armed = loop.call_later(self.tick_s, self._tick, loop)
        return deadline

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._armed = None
        now = loop.time()
        for key, deadline in list(self.watched.items()):
            if deadline.when <= now and deadline.task.get_loop() is loop:
                del self.watched[key]
                deadline.expired = True
                deadline.task.cancel()
        if self.watched:
            self._armed = loop.call_later(self.tick_s, self._tick, loop)
