"""Background jobs you can see: scheduled in-process runs, wrapped external runs, heartbeats.

Every run is recorded (start, end, duration, outcome, redacted error); late, failing and
overlapping jobs show in the `jobs` health check, the metrics and the /ops jobs page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from readykit.health.observation import Observation
from readykit.jobs.config import JobsConfig
from readykit.jobs.execution import JobRun, JobTimeout
from readykit.jobs.metrics import JobMetrics
from readykit.jobs.pings import PINGS_PREFIX, JobPings
from readykit.jobs.runlog import MemoryRunLog, RunLog, StoreRunLog
from readykit.jobs.runner import Jobs
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


async def check_jobs(jobs: Jobs) -> Observation:
    """The `jobs` health check: warn when a job is late, failing or overlapping; fail if that
    job was declared critical."""
    states = await jobs.status()
    bad = [s for s in states if s["problems"]]
    if not bad:
        return Observation(value=len(states), unit="jobs")
    return Observation(
        value=len(bad),
        unit="jobs with problems",
        status="fail" if any(s["critical"] for s in bad) else "warn",
        output="; ".join(f"{s['name']}: {s['problems'][0]}" for s in bad),
    )


def install_jobs(setup: Setup, records: Records | None, dashboard: Dashboard | None) -> Jobs:
    """One runner per kit: runs kept in the kit's store (or memory without records), started and
    stopped with the kit, pings served at /ops/jobs/{name}/ping, a page on the dashboard."""
    settings = setup.section(JobsConfig)
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
