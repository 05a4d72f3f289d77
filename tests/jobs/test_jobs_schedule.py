"""Scheduled jobs on a fake clock: one run per tick, every run recorded, failures, timeouts,
overlaps and lateness detected against the schedule, metrics and the `jobs` health check."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from io import StringIO
from typing import Any

import pytest
from jobs_support import HOUR, T0, make_kit, park, sample, started, tick
from prometheus_client import CollectorRegistry

from readykit import Settings
from readykit.jobs import JobMetrics, MemoryRunLog
from readykit.logging import configure_logging
from readykit.testing import FakeClock, asgi_request

pytestmark = pytest.mark.anyio


async def ok_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_a_job_runs_once_per_tick_and_not_before() -> None:
    kit = make_kit()
    calls: list[float] = []
    clock = FakeClock(T0 + 1000)  # 16 min past the hour: past the 6 min grace of this tick

    @kit.job("rates.refresh", every="1h")
    async def refresh() -> None:
        calls.append(clock())

    async with started(kit, clock) as jobs:
        await tick(jobs)
        clock.advance(HOUR - 1000 - 1)  # one second before the next hour
        await tick(jobs)
        assert calls == []
        clock.advance(1)
        await tick(jobs)
        await tick(jobs)  # the same tick again: nothing more
        clock.advance(HOUR + 30)
        await tick(jobs)
        [state] = await jobs.status()
    assert calls == [T0 + HOUR, T0 + 2 * HOUR + 30]
    runs = state["runs"]
    assert [r["slot"] for r in runs] == [T0 + 2 * HOUR, T0 + HOUR]  # newest first
    assert all(r["outcome"] == "success" and r["trigger"] == "schedule" for r in runs)
    assert state["next_due"] == T0 + 3 * HOUR
    assert state["state"] == "ok"


async def test_within_its_grace_at_startup_the_current_tick_still_runs() -> None:
    kit = make_kit()
    calls: list[float] = []
    clock = FakeClock(T0 + 120)  # 2 min past the hour, grace 5 min

    @kit.job("rates.refresh", every="1h", grace="5m")
    def refresh() -> None:
        calls.append(clock())

    async with started(kit, clock) as jobs:
        await tick(jobs)
    assert calls == [T0 + 120]


async def test_sync_jobs_run_in_a_worker_thread() -> None:
    kit = make_kit()
    threads: list[threading.Thread] = []
    clock = FakeClock(T0)

    @kit.job("report.build", every="1h")
    def build() -> None:
        threads.append(threading.current_thread())

    async with started(kit, clock) as jobs:
        await tick(jobs)
    assert len(threads) == 1
    assert threads[0] is not threading.main_thread()


async def test_every_run_is_recorded_with_start_end_duration_and_outcome() -> None:
    kit = make_kit()
    clock = FakeClock(T0)

    @kit.job("rates.refresh", every="1h")
    async def refresh() -> None:
        clock.advance(42)  # the run takes 42 s of fake time

    async with started(kit, clock) as jobs:
        await tick(jobs)
    # a new kit on the same store sees it: the run is in the store, not only in memory
    other = make_kit()
    other.jobs.add("rates.refresh")
    async with started(other, FakeClock(T0 + 100)) as jobs:
        [state] = await jobs.status()
    [run] = state["runs"]
    assert run["started"] == T0
    assert run["ended"] == T0 + 42
    assert run["duration_s"] == 42
    assert run["outcome"] == "success"
    assert len(run["id"]) == 32
    assert state["last_success"] == T0 + 42


async def test_a_failed_run_is_recorded_with_a_redacted_stack_counted_and_warned() -> None:
    kit = make_kit()
    clock = FakeClock(T0)

    @kit.job("rates.refresh", every="1h")
    async def refresh() -> None:
        raise ConnectionError("cannot reach postgresql://rates:hunter2@db.internal/rates")

    app = kit.wrap(ok_app)
    async with started(kit, clock) as jobs:
        await tick(jobs)
        [state] = await jobs.status()
        ready = await asgi_request(app, "GET", "/health/ready")
        detail = await asgi_request(app, "GET", "/health")
        assert kit.records is not None
        await kit.records.writer.flush()
        apm = await kit.records.store.entries("exception")
    run = state["runs"][0]
    assert run["outcome"] == "failure"
    assert "Traceback" in run["error"]
    assert "in refresh" in run["error"]
    assert "ConnectionError" in run["error"]
    assert "hunter2" not in run["error"]
    assert state["state"] == "failing"
    assert sample(kit, "readykit_job_failures_total", job_name="rates.refresh") == 1
    assert (
        sample(kit, "readykit_job_last_success_timestamp_seconds", job_name="rates.refresh") is None
    )
    assert ready.status == 200  # not critical: a warning
    body = detail.json()
    assert body["status"] == "warn"
    [check] = body["checks"]["jobs:responseTime"]
    assert check["status"] == "warn"
    assert "rates.refresh: last run failure: ConnectionError" in check["output"]
    assert "hunter2" not in detail.body.decode()
    [entry] = apm
    assert entry["data"]["job"] == "rates.refresh"
    assert entry["data"]["job_run_id"] == run["id"]
    assert "hunter2" not in json.dumps(entry)


async def test_a_critical_failing_job_fails_readiness() -> None:
    kit = make_kit(health_cache_s=0)  # every probe runs the checks afresh

    @kit.job("ledger.close", every="1h", critical=True)
    def close() -> None:
        raise RuntimeError("ledger locked")

    app = kit.wrap(ok_app)
    async with started(kit, FakeClock(T0)) as jobs:
        before = await asgi_request(app, "GET", "/health/ready")
        await tick(jobs)
        after = await asgi_request(app, "GET", "/health/ready")
    assert before.status == 200
    assert after.status == 503


async def test_a_job_that_does_not_run_becomes_late() -> None:
    kit = make_kit(jobs_scheduler=False)  # this instance only watches: nobody runs it
    clock = FakeClock(T0 + 1000)

    @kit.job("rates.refresh", every="1h", grace="5m")
    async def refresh() -> None:
        return None

    async with started(kit, clock) as jobs:
        await tick(jobs)
        clock.advance(HOUR - 1000 + 299)  # the tick was due 4:59 ago: within grace
        [on_time] = await jobs.status()
        clock.advance(2)
        [late] = await jobs.status()
    assert on_time["state"] == "ok"
    assert on_time["next_due"] == T0 + HOUR
    assert late["state"] == "late"
    assert late["problems"] == ["late: due 5m1s ago (every 1h, grace 5m)"]


async def test_a_tick_whose_previous_run_is_still_going_is_skipped_as_an_overlap() -> None:
    kit = make_kit()
    clock = FakeClock(T0)
    release, began = asyncio.Event(), asyncio.Event()
    starts: list[float] = []

    @kit.job("export.batch", every="1m", grace="5m", timeout="5m")
    async def export() -> None:
        starts.append(clock())
        began.set()
        await release.wait()

    async with started(kit, clock) as jobs:
        first = await jobs.tick()
        await began.wait()
        clock.advance(60)
        await tick(jobs)  # the first run is still going
        [state] = await jobs.status()
        release.set()
        await asyncio.gather(*first)
        clock.advance(60)
        await tick(jobs)
        [after] = await jobs.status()
    assert starts == [T0, T0 + 120]
    assert state["state"] == "overlapping"
    assert state["running"] is True
    skipped = state["runs"][0]
    assert skipped["outcome"] == "skipped"
    assert skipped["slot"] == T0 + 60
    assert "still going" in skipped["error"]
    assert sample(kit, "readykit_job_overlaps_total", job_name="export.batch") == 1
    assert [r["outcome"] for r in after["runs"]] == ["success", "skipped", "success"]
    assert after["state"] == "ok"


async def test_a_run_past_its_timeout_is_stopped_and_recorded_as_a_timeout() -> None:
    kit = make_kit()
    clock = FakeClock(T0)
    stopped = asyncio.Event()

    @kit.job("rates.refresh", every="1h", grace="5m", timeout="2m")
    async def refresh() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    async def sleep(seconds: float) -> None:
        if seconds == 120:  # the run's timeout: it passes at once
            clock.advance(seconds)
            return
        await park(seconds)

    async with started(kit, clock) as jobs:
        jobs.sleep = sleep
        await tick(jobs)
        [state] = await jobs.status()
    assert stopped.is_set()
    run = state["runs"][0]
    assert run["outcome"] == "timeout"
    assert "ran past its timeout of 2m" in run["error"]
    assert run["duration_s"] == 120
    assert sample(kit, "readykit_job_failures_total", job_name="rates.refresh") == 1


async def test_the_run_id_is_in_the_logs_written_inside_the_job() -> None:
    out = StringIO()
    configure_logging(Settings(log_format="json"), stream=out)
    kit = make_kit()

    @kit.job("rates.refresh", every="1h")
    def refresh() -> None:
        logging.getLogger("app.rates").info("fetched 43 rates")

    async with started(kit, FakeClock(T0)) as jobs:
        await tick(jobs)
        [state] = await jobs.status()
    run_id = state["runs"][0]["id"]
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    inside = [e for e in lines if e.get("event") == "fetched 43 rates"]
    assert inside
    assert inside[0]["request_id"] == run_id
    finished = [e for e in lines if e.get("event", "").startswith("job rates.refresh success")]
    assert finished
    assert finished[0]["request_id"] == run_id


async def test_metrics_last_success_and_durations() -> None:
    kit = make_kit()
    clock = FakeClock(T0)

    @kit.job("rates.refresh", every="1h")
    async def refresh() -> None:
        clock.advance(3)

    async with started(kit, clock) as jobs:
        await tick(jobs)
    job = {"job_name": "rates.refresh"}
    assert sample(kit, "readykit_job_last_success_timestamp_seconds", **job) == T0 + 3
    assert sample(kit, "readykit_job_duration_seconds_count", **job, outcome="success") == 1
    assert sample(kit, "readykit_job_duration_seconds_sum", **job, outcome="success") == 3
    assert sample(kit, "readykit_job_failures_total", **job) == 0
    assert sample(kit, "readykit_job_interval_seconds", **job) == HOUR


def test_the_last_success_gauge_does_not_keep_a_time_in_the_future() -> None:
    """The gauge only moves forward, so one success stamped by a fast clock (this instance's
    before it was corrected, or another's) kept `time() - last_success` negative for good."""
    metrics = JobMetrics(CollectorRegistry())
    metrics.finished("rates.refresh", "success", 1.0, T0 + 86400)  # the clock was a day fast
    metrics.seen_success("rates.refresh", T0 + 10, now=T0 + 20)  # status, clock put right
    shown = [metrics.last_success.labels("rates.refresh")._value.get()]
    metrics.seen_success("rates.refresh", T0 + 86400, now=T0 + 30)  # read from the store
    shown.append(metrics.last_success.labels("rates.refresh")._value.get())
    assert shown == [T0 + 10, T0 + 10]


async def test_the_runner_loop_sleeps_until_each_tick() -> None:
    kit = make_kit()
    clock = FakeClock(T0 + 1000)
    waits: list[float] = []
    third = asyncio.Event()
    runs: list[float] = []

    @kit.job("rates.refresh", every="1h")
    async def refresh() -> None:
        runs.append(clock())
        if len(runs) == 3:
            third.set()

    async def sleep(seconds: float) -> None:
        if seconds == kit.jobs.specs["rates.refresh"].timeout:
            await park(seconds)  # a run's timeout timer: never fires here
        await kit.jobs.idle()  # the tick's run is over before fake time moves on
        if len(runs) >= 3:
            await park(seconds)
        waits.append(seconds)
        clock.advance(seconds)

    kit.jobs.clock = clock
    kit.jobs.sleep = sleep
    await kit.startup()
    try:
        await third.wait()
    finally:
        await kit.shutdown()
    assert runs == [T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]
    assert waits[0] == HOUR - 1000


async def test_a_job_declared_after_startup_wakes_the_runner() -> None:
    """The runner sleeps until the earliest tick (here a day away); a job declared meanwhile
    must not wait for that sleep to end."""
    kit = make_kit()
    clock = FakeClock(T0 + 10)
    waits: list[float] = []
    asked = asyncio.Event()
    runs: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        asked.set()
        await park(seconds)

    @kit.job("backup.nightly", every="1d", grace="1m")
    def nightly() -> None:
        return None

    kit.jobs.clock = clock
    kit.jobs.sleep = sleep
    await kit.startup()
    try:
        await asyncio.wait_for(asked.wait(), 5)
        asked.clear()
        [first] = waits
        assert first > HOUR  # until the nightly tick

        @kit.job("rates.refresh", every="2s", grace="1s", timeout="1s")
        async def fast() -> None:
            runs.append(clock())

        await asyncio.wait_for(asked.wait(), 5)  # the loop woke and looked again
        await kit.jobs.idle()
    finally:
        await kit.shutdown()
    assert runs == [T0 + 10]  # its first tick (within grace) ran at once
    assert waits[-1] <= 2  # and the runner sleeps until its next one


class SlowLog(MemoryRunLog):
    """A run log whose reads hang once `slow` is set, like PostgreSQL behind a lock."""

    slow = False

    async def runs(self, job: str) -> list[dict[str, Any]]:
        if self.slow:
            await asyncio.Event().wait()
        return await super().runs(job)


async def test_a_slow_store_warns_in_the_jobs_check_unless_a_critical_job_is_failing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The `jobs` check is critical and reads the store; a slow store used to run it past its
    time limit and fail readiness on every instance at once, for a job that only warns."""
    monkeypatch.setattr("readykit.jobs.STATUS_READ_S", 0.01, raising=False)
    kit = make_kit(health_cache_s=0)
    kit.jobs.log = log = SlowLog()
    failing = False

    @kit.job("rates.refresh", every="1h", grace="5m")
    async def refresh() -> None:
        return None

    @kit.job("ledger.close", every="1h", grace="5m", critical=True)
    async def close() -> None:
        if failing:
            raise RuntimeError("ledger locked")

    app = kit.wrap(ok_app)
    clock = FakeClock(T0)
    async with started(kit, clock) as jobs:
        await tick(jobs)
        log.slow = True
        slow = await asgi_request(app, "GET", "/health/ready")
        detail = await asgi_request(app, "GET", "/health")
        log.slow, failing = False, True
        clock.advance(HOUR)
        await tick(jobs)
        log.slow = True
        critical = await asgi_request(app, "GET", "/health/ready")
        log.slow = False
    assert slow.status == 200
    [check] = detail.json()["checks"]["jobs:responseTime"]
    assert check["status"] == "warn"
    assert "the store did not answer within 0.01s" in check["output"]
    assert critical.status == 503  # known failing from the runs this instance saw
