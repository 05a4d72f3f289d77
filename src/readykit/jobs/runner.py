"""The jobs runner: declared jobs, their runs (recorded start to end), the schedule, the lease.

One runner per kit. Each tick of a scheduled job is claimed through a lease in the store, so
with several instances on one store at most one runs it; a tick whose previous run is still
going is skipped and recorded as an overlap. A lease claimed by an instance whose clock is fast
(its claim time is in the future) is taken over, and said so. Runs of jobs scheduled elsewhere
are wrapped with `async with jobs.run(name)`, or reported by heartbeat pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, TypeVar

from readykit._tasks import cancel_and_wait
from readykit.context import request_id_var
from readykit.durations import Duration, format_duration
from readykit.errors import ConfigurationError
from readykit.jobs.execution import (
    MAX_ERROR_CHARS,
    JobRun,
    JobTimeout,
    apm_event,
    error_text,
    start_work,
)
from readykit.jobs.metrics import JobMetrics
from readykit.jobs.runlog import RunLog
from readykit.jobs.spec import JobSpec, make_spec
from readykit.jobs.status import CLOCK_TOLERANCE_S, assess
from readykit.logging.redact import redact_text
from readykit.records.store import StoreUnavailable

logger = logging.getLogger("readykit.jobs")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]
PingStatus = Literal["start", "success", "fail"]
F = TypeVar("F", bound=Callable[..., Any])
STOP_WAIT_S = 5.0
STATUS_READ_S = 2.0  # how long the health check waits for the store before judging from memory


class Jobs:
    """Declared jobs and their runs.

    Args:
        log: where runs and leases are kept (the records store, or memory).
        metrics: the `readykit_job_*` metrics.
        clock: wall-clock seconds; injected so tests move time without sleeping.
        sleep: how the runner waits for the next tick; injected with the clock.
        apm: takes an APM `exception` event for each failed run (the kit's records writer).
        scheduler: run scheduled jobs in this process; False only monitors them.
        service: the service's name, written on its runs and leases: another service's job of
            the same name on the same store is reported (runs and leases are kept by job name).
    """

    def __init__(
        self,
        log: RunLog,
        metrics: JobMetrics,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        apm: Callable[[dict[str, Any]], None] | None = None,
        scheduler: bool = True,
        on_first_job: Callable[[], None] | None = None,
        service: str | None = None,
    ) -> None:
        self.log = log
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.apm = apm
        self.scheduler = scheduler
        self.service = service
        self.instance = secrets.token_hex(6)
        self.specs: dict[str, JobSpec] = {}
        self.since = clock()
        self._on_first_job = on_first_job
        self._next: dict[str, float] = {}
        self._busy: dict[str, Callable[[], bool]] = {}
        self._active: dict[str, set[str]] = {}
        self._seen: dict[str, list[dict[str, Any]]] = {}
        self._runs: set[asyncio.Task[None]] = set()
        self._holders: set[asyncio.Task[None]] = set()  # leases held for timed-out threads
        self._loop: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # a job declared after startup: the loop looks again
        self._said: set[tuple[Any, ...]] = set()  # warnings logged once

    # declaring

    def add(
        self,
        name: str,
        fn: Callable[[], Any] | None = None,
        *,
        every: Duration | None = None,
        grace: Duration | None = None,
        timeout: Duration | None = None,
        critical: bool = False,
    ) -> JobSpec:
        """Declare a job: with `fn` and `every` the runner runs it; without, it is watched."""
        spec = make_spec(name, every=every, grace=grace, timeout=timeout, critical=critical, fn=fn)
        if fn is not None and every is None:
            raise ConfigurationError(
                f"job {name!r}: a job the kit runs needs every=... (e.g. every='1h'); for a "
                "job scheduled elsewhere use `async with kit.job_run(name)`"
            )
        if name in self.specs:
            raise ConfigurationError(f"job {name!r} is declared twice")
        self.specs[name] = spec
        self.metrics.declare(spec)
        if len(self.specs) == 1 and self._on_first_job is not None:
            self._on_first_job()
        if self._loop is not None and spec.scheduled:  # declared after startup
            self._next[name] = self._first_slot(spec, self.clock())
            self._wake.set()
        return spec

    def job(
        self,
        name: str,
        *,
        every: Duration,
        grace: Duration | None = None,
        timeout: Duration | None = None,
        critical: bool = False,
    ) -> Callable[[F], F]:
        """Decorator: run the (sync or async, argument-free) function on schedule."""

        def register(fn: F) -> F:
            self.add(name, fn, every=every, grace=grace, timeout=timeout, critical=critical)
            return fn

        return register

    # one run

    def run(
        self, name: str, *, trigger: str = "external", slot: float | None = None
    ) -> AbstractAsyncContextManager[JobRun]:
        """Record one run of `name` around the block: start, end, outcome, redacted error.

        An undeclared name is declared as an on-demand job. Inside the block, log lines carry
        the run id (as `request_id`, and `job_run_id`).
        """
        return self._recorded(name, trigger, slot, None)

    @contextlib.asynccontextmanager
    async def _recorded(
        self, name: str, trigger: str, slot: float | None, note: dict[str, Any] | None
    ) -> AsyncIterator[JobRun]:
        from structlog.contextvars import bound_contextvars

        spec = self.specs.get(name) or self.add(name)
        run = await self._begin(spec, trigger, slot, note)
        token = request_id_var.set(run["id"])
        try:
            with bound_contextvars(job=name, job_run_id=run["id"]):
                logger.info("job %s started", name, extra={"job": name, "job_run_id": run["id"]})
                try:
                    yield JobRun(run["id"], name, run["started"])
                except BaseException as exc:
                    outcome = "timeout" if isinstance(exc, JobTimeout) else "failure"
                    if isinstance(exc, asyncio.CancelledError):
                        outcome = "cancelled"
                    await self._end(spec, run, outcome, exc)
                    raise
                await self._end(spec, run, "success", None)
        finally:
            request_id_var.reset(token)

    async def _begin(
        self,
        spec: JobSpec,
        trigger: str,
        slot: float | None,
        note: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        now = self.clock()
        run: dict[str, Any] = {
            "id": secrets.token_hex(16), "job": spec.name, "started": now, "ended": None,
            "duration_s": None, "outcome": "running", "error": None, "trigger": trigger,
            "slot": slot, "instance": self.instance, "overlap": False,
        }  # fmt: skip
        if self.service is not None:
            run["service"] = self.service
        run.update(note or {})
        running = self._active.setdefault(spec.name, set())
        others = bool(running) or await self._running_elsewhere(spec, now)
        if others:
            run["overlap"] = True
            self.metrics.overlaps.labels(spec.name).inc()
            logger.warning("job %s: a run began while an earlier run is still going", spec.name)
        running.add(run["id"])
        await self._save(run)
        return run

    async def _running_elsewhere(self, spec: JobSpec, now: float) -> bool:
        try:
            runs = await self.log.runs(spec.name)
        except StoreUnavailable:
            return False
        limit = spec.timeout or spec.grace
        going = [r["started"] for r in runs if r["outcome"] == "running"]
        # a run "started" in the future was written by a fast clock: not a run going now
        return any(started - CLOCK_TOLERANCE_S <= now <= started + limit for started in going)

    async def _end(
        self, spec: JobSpec, run: dict[str, Any], outcome: str, exc: BaseException | None
    ) -> None:
        ended = self.clock()
        duration = max(0.0, ended - run["started"])
        run.update(ended=ended, duration_s=round(duration, 6), outcome=outcome)
        if exc is not None:
            run["error"] = error_text(exc)
        self._active.get(spec.name, set()).discard(run["id"])
        self.metrics.finished(spec.name, outcome, duration, ended)
        if outcome in ("failure", "timeout"):
            logger.error("job %s %s after %.3fs: %s", spec.name, outcome, duration,
                         redact_text(str(exc))[:500], extra={"job": spec.name})  # fmt: skip
            if self.apm is not None and exc is not None:
                self.apm(apm_event(spec.name, run, exc))
        else:
            logger.info("job %s %s after %.3fs", spec.name, outcome, duration,
                        extra={"job": spec.name})  # fmt: skip
        # shielded: a cancelled run must still leave its record
        await asyncio.shield(self._save(run, trim=True))

    async def _save(self, run: dict[str, Any], *, trim: bool = False) -> None:
        seen = self._seen.setdefault(run["job"], [])
        seen[:] = [*[r for r in seen if r["id"] != run["id"]][-49:], dict(run)]
        try:
            await self.log.put(run)
            if trim:
                await self.log.trim(run["job"], await self.log.runs(run["job"]))
        except StoreUnavailable as exc:
            logger.warning("job %s: run %s not recorded, the store is unreachable: %s",
                           run["job"], run["id"], exc)  # fmt: skip

    # the schedule

    def _first_slot(self, spec: JobSpec, now: float) -> float:
        """The first tick to run: the current one while still within its grace, else the next."""
        assert spec.every is not None
        current = spec.slot(now)
        return current if now - current <= spec.grace else current + spec.every

    async def tick(self) -> list[asyncio.Task[None]]:
        """Start every scheduled job whose tick has come; the runs' tasks (tests await them)."""
        now = self.clock()
        started = []
        for spec in self.specs.values():
            if not spec.scheduled or spec.name not in self._next:
                continue
            assert spec.every is not None
            if now < self._next[spec.name]:
                continue
            slot = spec.slot(now)
            self._next[spec.name] = slot + spec.every
            task = asyncio.create_task(self._tick(spec, slot), name=f"readykit-job-{spec.name}")
            self._runs.add(task)
            task.add_done_callback(self._runs.discard)
            started.append(task)
        return started

    async def _tick(self, spec: JobSpec, slot: float) -> None:
        assert spec.every is not None
        assert spec.timeout is not None
        busy = self._busy.get(spec.name)
        if busy is not None and not busy():
            await self._skip(spec, slot, "the previous run in this instance is still going")
            return
        now = self.clock()
        lease: dict[str, Any] = {"instance": self.instance, "slot": slot, "claimed": now}
        if self.service is not None:
            lease["service"] = self.service
        until = max(slot + spec.every, now + spec.timeout)
        note: dict[str, Any] | None = None
        try:
            taken = await self.log.claim(spec.name, lease, until=until, at=slot)
            if not taken:
                held = await self.log.lease(spec.name)
                if held is not None and self._from_the_future(held, now):
                    taken = await self._take_over(spec, held, lease, until, slot)
                    note = {"took_over": held} if taken else None
                elif held is not None and self._other_service(held):
                    await self._shared(spec, slot, held)
                elif held is not None and held.get("slot", slot) < slot:
                    await self._skip(spec, slot, "the previous run (elsewhere) is still going")
        except StoreUnavailable as exc:
            logger.warning("job %s: tick %s not run, the store is unreachable (it holds the "
                           "lease): %s", spec.name, format_duration(slot), exc)  # fmt: skip
            return
        if not taken:
            return
        lingering: asyncio.Future[Any] | None = None
        try:
            lingering = await self._execute(spec, slot, note)
        finally:
            if lingering is None:
                with contextlib.suppress(StoreUnavailable):
                    await self.log.renew(spec.name, lease, until=slot + spec.every)
        if lingering is not None:  # a thread past its timeout: the lease is held till it returns
            if not await self._renew(spec, lease):
                return
            holder = asyncio.create_task(self._hold(spec, lease, slot, lingering),
                                         name=f"readykit-job-hold-{spec.name}")  # fmt: skip
            self._holders.add(holder)
            holder.add_done_callback(self._holders.discard)

    @staticmethod
    def _from_the_future(held: dict[str, Any], now: float) -> bool:
        """A lease claimed (by the claimer's clock) later than now, past the tolerance: the
        claimer's clock is fast, and its lease would keep every other instance out."""
        claimed = held.get("claimed", held.get("slot"))
        return isinstance(claimed, int | float) and claimed > now + CLOCK_TOLERANCE_S

    async def _take_over(
        self,
        spec: JobSpec,
        held: dict[str, Any],
        lease: dict[str, Any],
        until: float,
        slot: float,
    ) -> bool:
        """Take the job's lease from an instance whose clock is fast.

        Its end is first moved back to this tick, only while the store still holds that very
        lease (renew compares the whole lease), then the tick is claimed as usual: of several
        instances doing this at once exactly one wins the claim, and one that read the old lease
        before another took it over changes nothing.
        """
        said = ("future", spec.name, held.get("instance"), held.get("claimed"))
        if said not in self._said:
            self._said.add(said)
            logger.error(
                "job %s: the lease was claimed by instance %s %s in the future (its clock is "
                "fast, or this one is slow); taking it over: fix that instance's clock",
                spec.name, held.get("instance"),
                format_duration(float(held.get("claimed", held.get("slot", 0.0))) - self.clock()),
                extra={"job": spec.name},
            )  # fmt: skip
        if not await self.log.renew(spec.name, held, until=slot):
            return False
        return await self.log.claim(spec.name, lease, until=until, at=slot)

    def _other_service(self, held: dict[str, Any]) -> bool:
        """The lease is another service's (leases written before services were named are not)."""
        return self.service is not None and held.get("service", self.service) != self.service

    async def _shared(self, spec: JobSpec, slot: float, held: dict[str, Any]) -> None:
        """Record a tick not run because another service holds a job of the same name on this
        store: both services see it (a run of each service is in the other's history)."""
        other = held.get("service")
        said = ("shared", spec.name, other)
        reason = (
            f"shared: service {other!r} also runs a job named {spec.name!r} on this store "
            "(runs and leases are kept by job name); rename one of the jobs or give each service "
            "its own store"
        )
        if said not in self._said:
            self._said.add(said)
            logger.error("job %s: tick not run, %s", spec.name, reason, extra={"job": spec.name})
        now = self.clock()
        run = {
            "id": f"shared-{self.service}-{spec.name}-{slot:.0f}", "job": spec.name,
            "started": now, "ended": now, "duration_s": 0.0, "outcome": "skipped",
            "error": reason, "trigger": "schedule", "slot": slot, "instance": self.instance,
            "overlap": False, "service": self.service,
        }  # fmt: skip
        await self._save(run)

    async def _hold(
        self, spec: JobSpec, lease: dict[str, Any], slot: float, work: asyncio.Future[Any]
    ) -> None:
        """Keep the job's lease while a timed-out sync run's thread is still going (a thread
        cannot be stopped): ticks here or elsewhere are skipped as overlaps until it returns.

        The lease is renewed `hold` seconds at a time, so it lapses if this process dies; on
        shutdown (this task cancelled) it is left to lapse likewise.
        """
        assert spec.every is not None
        while True:
            timer = asyncio.ensure_future(self.sleep(self._hold_s(spec) / 2))
            try:
                await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                timer.cancel()
            if work.done():
                break
            if not await self._renew(spec, lease):
                return
        with contextlib.suppress(BaseException):
            work.result()
        logger.warning("job %s: its timed-out run has returned", spec.name)
        with contextlib.suppress(StoreUnavailable):
            await self.log.renew(spec.name, lease, until=slot + spec.every)

    @staticmethod
    def _hold_s(spec: JobSpec) -> float:
        """How far ahead each renewal of a held lease reaches."""
        return max(spec.every or 0.0, spec.timeout or 0.0)

    async def _renew(self, spec: JobSpec, lease: dict[str, Any]) -> bool:
        """Extend this instance's lease on the job by `_hold_s`; False if another holds it."""
        with contextlib.suppress(StoreUnavailable):  # kept trying at the next renewal
            until = self.clock() + self._hold_s(spec)
            if not await self.log.renew(spec.name, lease, until=until):
                logger.warning("job %s: the lease was taken elsewhere while a timed-out run is "
                               "still going here", spec.name)  # fmt: skip
                return False
        return True

    async def _skip(self, spec: JobSpec, slot: float, reason: str) -> None:
        """Record a tick not run because a run is still going: an overlap."""
        now = self.clock()
        self.metrics.overlaps.labels(spec.name).inc()
        logger.warning("job %s: tick skipped, %s", spec.name, reason)
        run = {
            "id": f"skip-{spec.name}-{slot:.0f}", "job": spec.name, "started": now, "ended": now,
            "duration_s": 0.0, "outcome": "skipped", "error": f"overlap: {reason}",
            "trigger": "schedule", "slot": slot, "instance": self.instance, "overlap": True,
        }  # fmt: skip
        if self.service is not None:
            run["service"] = self.service
        await self._save(run)

    async def _execute(
        self, spec: JobSpec, slot: float, note: dict[str, Any] | None = None
    ) -> asyncio.Future[Any] | None:
        """One scheduled run under the job's timeout; its failure is recorded, not raised.

        Returns the work of a sync run that went past its timeout and whose thread is still
        going (the caller holds the lease until it returns), else None.
        """
        assert spec.fn is not None
        lingering: asyncio.Future[Any] | None = None
        with contextlib.suppress(Exception):
            async with self._recorded(spec.name, "schedule", slot, note):
                work, finished = start_work(spec)
                self._busy[spec.name] = finished
                # the timeout sleeps on the injected clock's sleep, so tests need not wait
                timer = asyncio.ensure_future(self.sleep(spec.timeout or 0))
                try:
                    await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    timer.cancel()
                if not work.done():
                    if spec.is_async:
                        work.cancel()  # a coroutine stops
                        with contextlib.suppress(BaseException):
                            await work
                    else:  # a thread cannot: it is waited for, holding the lease
                        lingering = work
                    limit = format_duration(spec.timeout or 0)
                    raise JobTimeout(f"job {spec.name} ran past its timeout of {limit}")
                work.result()
        return lingering

    # lifecycle

    async def start(self) -> None:
        """Begin watching (and, with the scheduler on, running) the declared jobs."""
        now = self.clock()
        self.since = now
        if not self.scheduler:
            return
        self._next = {s.name: self._first_slot(s, now) for s in self.specs.values() if s.scheduled}
        self._wake = asyncio.Event()  # of this event loop (a kit may be started again in another)
        self._loop = asyncio.create_task(self._run_forever(), name="readykit-jobs")

    async def _run_forever(self) -> None:
        while True:
            self._wake.clear()
            # with no scheduled job yet, look again in a minute (a job declared later wakes it)
            due = min(self._next.values(), default=self.clock() + 60.0)
            timer = asyncio.ensure_future(self.sleep(max(0.0, due - self.clock())))
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({timer, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                timer.cancel()
                woken.cancel()
            await self.tick()

    async def idle(self) -> None:
        """Wait until no scheduled run is in flight (tests and shutdown)."""
        while self._runs:
            await asyncio.wait(set(self._runs))

    async def stop(self) -> None:
        """Stop the runner; runs in flight get STOP_WAIT_S to finish, then are cancelled."""
        await cancel_and_wait([self._loop])
        self._loop = None
        self._next.clear()
        if self._runs:
            await asyncio.wait(set(self._runs), timeout=STOP_WAIT_S)
            await cancel_and_wait(list(self._runs))
        await cancel_and_wait(list(self._holders))

    # heartbeats

    async def ping(
        self, name: str, status: PingStatus = "success", message: str = ""
    ) -> dict[str, Any]:
        """A heartbeat from outside: `start` opens a run; `success`/`fail` close it (or record
        an instant run). Raises KeyError for an undeclared job."""
        spec = self.specs[name]
        if status == "start":
            run = await self._begin(spec, "ping", None)
            return run
        now = self.clock()
        run = await self._open_ping(spec) or await self._begin(spec, "ping", None)
        self._active.get(name, set()).discard(run["id"])
        duration = max(0.0, now - run["started"])
        outcome = "success" if status == "success" else "failure"
        run.update(ended=now, duration_s=round(duration, 6), outcome=outcome,
                   error=redact_text(message)[:MAX_ERROR_CHARS] if message else None)  # fmt: skip
        self.metrics.finished(name, outcome, duration, now)
        log = logger.info if outcome == "success" else logger.error
        log("job %s pinged %s", name, status, extra={"job": name, "job_run_id": run["id"]})
        await self._save(run, trim=True)
        return run

    async def _open_ping(self, spec: JobSpec) -> dict[str, Any] | None:
        """The newest run opened by a `start` ping (any instance) and not closed yet."""
        try:
            runs = await self.log.runs(spec.name)
        except StoreUnavailable:
            runs = self._seen.get(spec.name, [])
        limit = spec.timeout or spec.grace
        now = self.clock()
        for run in reversed(runs):
            if run["trigger"] == "ping" and run["outcome"] == "running":
                return run if now <= run["started"] + max(limit, 86400.0) else None
        return None

    # what is seen

    async def status(self, *, read_timeout: float | None = None) -> list[dict[str, Any]]:
        """Each job: schedule, state, problems, next due time and its newest runs.

        With `read_timeout`, the store is given that many seconds in all: jobs not read by then
        are judged from the runs last seen, with `unavailable` saying why (the health check must
        answer while the store is slow).
        """
        now = self.clock()
        deadline = None if read_timeout is None else time.monotonic() + read_timeout
        unavailable: str | None = None
        out = []
        for spec in self.specs.values():
            runs = self._seen.get(spec.name, [])
            if unavailable is None:
                try:
                    runs = await self._read_runs(spec.name, deadline)
                    self._seen[spec.name] = runs[-50:]
                except StoreUnavailable as exc:
                    unavailable = str(exc)
                except TimeoutError:
                    unavailable = f"the store did not answer within {read_timeout:g}s"
            state = assess(spec, runs, now, self.since, service=self.service)
            if state["last_success"] is not None:
                self.metrics.seen_success(spec.name, state["last_success"], now=now)
            if unavailable is not None:
                state["unavailable"] = unavailable
            out.append(state)
        return out

    async def _read_runs(self, job: str, deadline: float | None) -> list[dict[str, Any]]:
        if deadline is None:
            return await self.log.runs(job)
        return await asyncio.wait_for(self.log.runs(job), max(0.0, deadline - time.monotonic()))
