"""The jobs runner: declared jobs, their runs (recorded start to end), the schedule, the lease.

One runner per kit. Each tick of a scheduled job is claimed through a lease in the store, so
with several instances on one store at most one runs it; a tick whose previous run is still
going is skipped and recorded as an overlap. While a run is going its instance renews the lease
every HEARTBEAT_S; a lease not renewed for LEASE_S (its instance was killed, or lost the store)
is taken over by another instance, and the lost run closed. A lease claimed by an instance whose
clock is fast (its claim time is in the future) is taken over, and said so. Runs of jobs
scheduled elsewhere are wrapped with `async with jobs.run(name)`, or reported by heartbeat pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
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
# A run's lease is renewed every HEARTBEAT_S while the run is going, each time to LEASE_S ahead
# (and never short of the next tick): a lease not renewed for LEASE_S is taken over, so a run
# whose process was killed holds the job for LEASE_S, not for its whole timeout.
HEARTBEAT_S = 5.0
LEASE_S = 4 * HEARTBEAT_S


@dataclass
class _Held:
    """A lease this instance holds for a run going (or a timed-out thread): renewed by `tick`."""

    lease: dict[str, Any]
    slot: float
    renewed: float  # when it was last renewed (or tried), by this instance's clock
    beat: asyncio.Task[None] | None = None


class Jobs:
    """Declared jobs and their runs.

    Args:
        log: where runs and leases are kept (the records store, or memory).
        metrics: the `readykit_job_*` metrics.
        clock: wall-clock seconds; injected so tests move time without sleeping.
        sleep: how the runner waits for the next tick; injected with the clock.
        apm: takes an APM `exception` event for each failed run (the kit's records writer).
        scheduler: run scheduled jobs in this process; False only monitors them.
        draining: True once the service is shutting down: no run starts after that.
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
        draining: Callable[[], bool] | None = None,
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
        self._held: dict[str, _Held] = {}  # this instance's leases of runs going: heartbeats
        self._beats: set[asyncio.Task[None]] = set()
        self._recheck: dict[str, float] = {}  # a tick skipped for a run elsewhere: look again
        self._draining = draining
        self._stopping = False
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
        return spec.first_slot(now)

    def _shutting_down(self) -> bool:
        """Shutdown has begun (the service drains, or the runner stops): no run starts."""
        return self._stopping or (self._draining is not None and self._draining())

    async def tick(self) -> list[asyncio.Task[None]]:
        """Start every scheduled job whose tick has come, and renew the leases of the runs going
        here (the heartbeat); the tasks started (tests await them)."""
        now = self.clock()
        started = self._heartbeat(now)
        if self._shutting_down():
            return started
        for spec in self.specs.values():
            if not spec.scheduled or spec.name not in self._next:
                continue
            assert spec.every is not None
            if now < self._next[spec.name]:
                continue
            slot = spec.slot(now)
            self._next[spec.name] = slot + spec.every
            recheck = self._recheck.pop(spec.name, None) == slot
            task = asyncio.create_task(self._tick(spec, slot, recheck=recheck),
                                       name=f"readykit-job-{spec.name}")  # fmt: skip
            self._runs.add(task)
            task.add_done_callback(self._runs.discard)
            started.append(task)
        return started

    def _lease_end(self, spec: JobSpec, slot: float, now: float) -> float:
        """Where a lease of a run going reaches: LEASE_S ahead, and never short of the next tick
        (a tick once claimed is never claimed again)."""
        assert spec.every is not None
        return max(slot + spec.every, now + LEASE_S)

    async def _tick(self, spec: JobSpec, slot: float, *, recheck: bool = False) -> None:
        """Claim the tick and run it. `recheck`: the tick was skipped for a run elsewhere, and
        is only taken now if that run's lease has lapsed (its instance died)."""
        assert spec.every is not None
        busy = self._busy.get(spec.name)
        if busy is not None and not busy():
            if not recheck:
                await self._skip(spec, slot, "the previous run in this instance is still going")
            return
        now = self.clock()
        lease: dict[str, Any] = {"instance": self.instance, "slot": slot, "claimed": now}
        if self.service is not None:
            lease["service"] = self.service
        until = self._lease_end(spec, slot, now)
        note: dict[str, Any] | None = None
        try:
            taken = False if recheck else await self.log.claim(spec.name, lease, until=until,
                                                                 at=slot)  # fmt: skip
            if not taken:
                held = await self.log.lease(spec.name)
                if held is None:
                    pass
                elif self._from_the_future(held, now):
                    taken = not recheck and await self._take_over(spec, held, lease, until, slot)
                elif self._other_service(held):
                    if not recheck:
                        await self._shared(spec, slot, held)
                elif held.get("slot", slot) < slot:  # an earlier tick's run: lapsed, or going
                    taken = await self._take_lapsed(spec, held, lease, until, slot, recheck)
                note = {"took_over": held} if taken else None
        except StoreUnavailable as exc:
            logger.warning("job %s: tick %s not run, the store is unreachable (it holds the "
                           "lease): %s", spec.name, format_duration(slot), exc)  # fmt: skip
            return
        if not taken:
            return
        held_here = self._hold_lease(spec, lease, slot, now)
        if self._shutting_down():  # shutdown began while the tick was claimed: give it back
            await self._let_go(spec, held_here, until=slot)
            return
        lost = await self._close_lost(spec, slot)
        if note is None and lost:
            note = {"took_over": {k: lost[0].get(k) for k in ("instance", "slot")}}
        lingering: asyncio.Future[Any] | None = None
        try:
            lingering = await self._execute(spec, slot, note)
        finally:
            if lingering is None:
                await self._let_go(spec, held_here, until=slot + spec.every)
        if lingering is not None:  # a thread past its timeout: the lease is held till it returns
            holder = asyncio.create_task(self._hold(spec, held_here, lingering),
                                         name=f"readykit-job-hold-{spec.name}")  # fmt: skip
            self._holders.add(holder)
            holder.add_done_callback(self._holders.discard)

    async def _take_lapsed(
        self,
        spec: JobSpec,
        held: dict[str, Any],
        lease: dict[str, Any],
        until: float,
        slot: float,
        recheck: bool,
    ) -> bool:
        """The lease of an earlier tick's run reaches past this tick: take it if it lapsed (not
        renewed for LEASE_S), else skip the tick as an overlap, to be looked at again.

        A lease taken as usual ends at the next tick, and is moved back there when its run
        ends; one still held past that is renewed by a run going. Claimed at `now` (not at the
        tick), it is taken only once it lapsed; of several instances doing so, one wins.
        """
        assert spec.every is not None
        if recheck and not await self._still_running(spec, held):
            return False  # the run ended (its lease let go) or is a timed-out thread's
        now = self.clock()
        if await self.log.claim(spec.name, lease, until=until, at=now):
            logger.warning(
                "job %s: instance %s did not renew its lease of tick %s for %s (it was killed, "
                "or lost the store, or its clock is behind); taking the job over",
                spec.name, held.get("instance"), format_duration(float(held.get("slot", 0.0))),
                format_duration(LEASE_S), extra={"job": spec.name},
            )  # fmt: skip
            return True
        again = await self.log.lease(spec.name)
        if again is not None and again.get("slot", slot) >= slot:
            return False  # another instance took this tick meanwhile: it runs it
        if not recheck:
            await self._skip(spec, slot, "the previous run (elsewhere) is still going")
        if now + LEASE_S < slot + spec.every:  # look again once it could have lapsed
            self._recheck[spec.name] = slot
            self._next[spec.name] = min(self._next.get(spec.name, now), now + LEASE_S)
            self._wake.set()
        return False

    async def _still_running(self, spec: JobSpec, held: dict[str, Any]) -> bool:
        """The run of the lease `held` is still recorded as going."""
        runs = await self.log.runs(spec.name)
        return any(
            r["outcome"] == "running" and r.get("instance") == held.get("instance")
            and r.get("slot") == held.get("slot") for r in runs
        )  # fmt: skip

    async def _close_lost(self, spec: JobSpec, slot: float) -> list[dict[str, Any]]:
        """Record as failed the runs of earlier ticks still `running` on other instances: this
        instance holds the job's lease, so theirs lapsed (their instance was killed or lost the
        store) and they never ended. A run that does end later replaces its record."""
        try:
            runs = await self.log.runs(spec.name)
        except StoreUnavailable:
            return []
        now = self.clock()
        lost = []
        for run in runs:
            earlier = run.get("slot")
            if (
                run["outcome"] != "running"
                or run.get("trigger") != "schedule"
                or run.get("instance") == self.instance
                or not isinstance(earlier, int | float)
                or earlier >= slot
                or self._other_service(run)
            ):
                continue
            run.update(
                ended=now, duration_s=round(max(0.0, now - run["started"]), 6),
                outcome="failure",
                error=f"lost: instance {run.get('instance')} stopped renewing this run's lease "
                f"(it was killed, or lost the store) and never ended it; instance "
                f"{self.instance} took the job over",
            )  # fmt: skip
            logger.warning("job %s: run %s of instance %s was lost (its lease lapsed); recorded "
                           "as failed", spec.name, run["id"], run.get("instance"),
                           extra={"job": spec.name})  # fmt: skip
            await self._save(run)
            lost.append(run)
        return lost

    # the heartbeat

    def _hold_lease(self, spec: JobSpec, lease: dict[str, Any], slot: float, now: float) -> _Held:
        """Keep the claimed lease renewed (by `tick`) until `_let_go`."""
        held = self._held[spec.name] = _Held(lease, slot, now)
        self._wake.set()  # the loop wakes for its first heartbeat
        return held

    def _heartbeat(self, now: float) -> list[asyncio.Task[None]]:
        """Renew each lease held here that was last renewed HEARTBEAT_S ago or more."""
        started = []
        for name, held in self._held.items():
            if held.beat is None and now - held.renewed >= HEARTBEAT_S:
                held.renewed = now
                beat = asyncio.create_task(self._renew(self.specs[name], held),
                                           name=f"readykit-job-beat-{name}")  # fmt: skip
                held.beat = beat
                self._beats.add(beat)
                beat.add_done_callback(self._beats.discard)
                started.append(beat)
        return started

    def _next_beat(self) -> float | None:
        return min((h.renewed + HEARTBEAT_S for h in self._held.values()), default=None)

    async def _renew(self, spec: JobSpec, held: _Held) -> None:
        """One heartbeat: move the lease LEASE_S ahead; if another instance took it meanwhile
        (this one did not renew it in time), say so and stop renewing it."""
        try:
            until = self._lease_end(spec, held.slot, self.clock())
            if not await self.log.renew(spec.name, held.lease, until=until):
                logger.error("job %s: the lease was taken over by another instance while a run "
                             "is still going here (it was not renewed for %s): the job may run "
                             "twice", spec.name, format_duration(LEASE_S),
                             extra={"job": spec.name})  # fmt: skip
                if self._held.get(spec.name) is held:
                    del self._held[spec.name]
        except StoreUnavailable as exc:  # tried again at the next heartbeat
            logger.warning("job %s: the lease could not be renewed, the store is unreachable: "
                           "%s", spec.name, exc, extra={"job": spec.name})  # fmt: skip
        finally:
            held.beat = None

    async def _let_go(self, spec: JobSpec, held: _Held, *, until: float) -> None:
        """Stop renewing the lease and move its end to `until` (the next tick once its run is
        over; the tick itself to give an unrun tick back), unless another instance took it."""
        if self._held.get(spec.name) is held:
            del self._held[spec.name]
        if held.beat is not None:  # a renewal in flight must not land after the release
            await asyncio.wait({held.beat})
        with contextlib.suppress(StoreUnavailable):
            await self.log.renew(spec.name, held.lease, until=until)

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

    async def _hold(self, spec: JobSpec, held: _Held, work: asyncio.Future[Any]) -> None:
        """Keep the job's lease while a timed-out sync run's thread is still going (a thread
        cannot be stopped): ticks here or elsewhere are skipped as overlaps until it returns.

        The lease stays on the heartbeat, so it lapses LEASE_S after this process dies; on
        shutdown (this task cancelled) it is left to lapse likewise.
        """
        assert spec.every is not None
        await asyncio.wait({work})  # cancelled at shutdown: the lease is left to lapse
        with contextlib.suppress(BaseException):
            work.result()
        logger.warning("job %s: its timed-out run has returned", spec.name)
        if self._held.get(spec.name) is held:  # not taken elsewhere meanwhile
            await self._let_go(spec, held, until=held.slot + spec.every)

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
        self._stopping = False
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
            beat = self._next_beat()  # a run going here renews its lease on the heartbeat
            due = due if beat is None else min(due, beat)
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
        """Stop the runner: no run starts from now on; runs in flight get STOP_WAIT_S to finish,
        then are cancelled."""
        self._stopping = True
        await cancel_and_wait([self._loop])
        self._loop = None
        self._next.clear()
        self._recheck.clear()
        if self._runs:  # their leases, renewed within HEARTBEAT_S, outlast this wait
            await asyncio.wait(set(self._runs), timeout=STOP_WAIT_S)
            await cancel_and_wait(list(self._runs))
        await cancel_and_wait(list(self._holders))
        await cancel_and_wait(list(self._beats))
        self._held.clear()

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
