"""Background jobs you can see: scheduled in-process runs, wrapped external runs, heartbeats.

Every run is recorded (start, end, duration, outcome, redacted error); late, failing and
overlapping jobs show in the `jobs` health check, the metrics and the /ops jobs page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from readykit.health.config import HealthConfig
from readykit.health.observation import Observation
from readykit.jobs.config import JobsConfig
from readykit.jobs.execution import JobRun, JobTimeout
from readykit.jobs.metrics import JobMetrics
from readykit.jobs.pings import PINGS_PREFIX, JobPings
from readykit.jobs.runlog import MemoryRunLog, RunLog, StoreRunLog
from readykit.jobs.runner import STATUS_READ_S, Jobs
from readykit.jobs.spec import JobSpec, parse_duration
from readykit.route_table import route_path

if TYPE_CHECKING:
    from readykit.dashboard import Dashboard, DashboardFeature
    from readykit.feature import Setup
    from readykit.records import Records, RecordsFeature

__all__ = [
    "JobMetrics",
    "JobRun",
    "JobSpec",
    "JobTimeout",
    "Jobs",
    "JobsFeature",
    "MemoryRunLog",
    "RunLog",
    "StoreRunLog",
    "check_jobs",
    "install_jobs",
    "parse_duration",
]

ORDER_JOB_PINGS = 65  # inside the guards, like the privacy endpoints


async def check_jobs(jobs: Jobs, *, read_timeout: float | None = None) -> Observation:
    """The `jobs` health check: warn when a job is late, failing or overlapping, or has another
    problem (a fast clock, a name shared with another service, a store that does not answer);
    fail when a job declared critical is itself late, failing or overlapping.

    The store is given `read_timeout` seconds (default STATUS_READ_S); past it the jobs are
    judged from the runs this instance saw last, and the store's trouble only warns: the
    `store` check reports the store, and one slow store must not fail every instance at once.
    """
    timeout = STATUS_READ_S if read_timeout is None else read_timeout
    states = await jobs.status(read_timeout=timeout)
    bad = [s for s in states if s["problems"]]
    unread = next((s["unavailable"] for s in states if "unavailable" in s), None)
    if not bad and unread is None:
        return Observation(value=len(states), unit="jobs")
    notes = [f"{s['name']}: {s['problems'][0]}" for s in bad]
    if unread is not None:
        notes.append(f"runs not read ({unread}): judged from what this instance saw last")
    return Observation(
        value=len(bad),
        unit="jobs with problems",
        status="fail" if any(s["critical"] and s["state"] != "ok" for s in bad) else "warn",
        output="; ".join(notes),
    )


def install_jobs(setup: Setup, records: Records | None, dashboard: Dashboard | None) -> Jobs:
    """One runner per kit: runs kept in the kit's store (or memory without records), started and
    stopped with the kit, pings served at /ops/jobs/{name}/ping, a page on the dashboard."""
    settings = setup.section(JobsConfig)
    service = setup.section(HealthConfig).service_name
    log: RunLog = StoreRunLog(records.store) if records is not None else MemoryRunLog()

    async def jobs_health() -> Observation:
        return await check_jobs(jobs)

    def first_job() -> None:
        # critical=True here; each job's own `critical` decides between warn and fail
        setup.add_check("jobs", jobs_health, timeout=5.0, component_type="component")

    jobs = Jobs(
        log,
        JobMetrics(setup.metrics.registry),
        apm=records.writer.put if records is not None else None,
        scheduler=settings.jobs_scheduler,
        on_first_job=first_job,
        service=service,
        # the kit's own flag, set when shutdown begins (before the app's and the kit's shutdown
        # hooks run): no run starts after it
        draining=lambda: setup.draining,
    )
    setup.on_startup(jobs.start)
    setup.on_shutdown(jobs.stop)
    access = setup.access
    setup.add_guard(
        ORDER_JOB_PINGS,
        lambda app: JobPings(app, jobs=jobs, access=access),
        when=lambda scope: route_path(scope).startswith(PINGS_PREFIX),
    )
    if dashboard is not None:
        from readykit.dashboard.jobs import jobs_routes

        for path, handler in jobs_routes(dashboard, jobs).items():
            setup.add_ops_route(path, handler)
    return jobs


class JobsFeature:
    """Job monitoring as a kit feature, on `records` and `dashboard` (both installed first)."""

    name = "jobs"
    jobs: Jobs

    def __init__(self, records: RecordsFeature, dashboard: DashboardFeature) -> None:
        self._records = records
        self._dashboard = dashboard

    def install(self, setup: Setup) -> None:
        self.jobs = install_jobs(setup, self._records.records, self._dashboard.dashboard)
