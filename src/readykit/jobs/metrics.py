"""Job metrics: last success, run durations, failures, and each job's schedule for alerts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from readykit.jobs.spec import JobSpec
from readykit.jobs.status import CLOCK_TOLERANCE_S

DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)


class JobMetrics:
    """The `readykit_job_*` metrics on the kit's registry.

    `readykit_job_interval_seconds` and `readykit_job_grace_seconds` let one alert rule find
    late jobs: `time() - last_success > interval + grace`.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._last_success: dict[str, float] = {}
        self.last_success = Gauge(
            "readykit_job_last_success_timestamp_seconds",
            "When the job's last successful run ended (Unix time).",
            ("job_name",),
            multiprocess_mode="max",
            registry=registry,
        )
        self.duration = Histogram(
            "readykit_job_duration_seconds",
            "Duration of job runs.",
            ("job_name", "outcome"),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.failures = Counter(
            "readykit_job_failures_total",
            "Job runs that failed or timed out.",
            ("job_name",),
            registry=registry,
        )
        self.overlaps = Counter(
            "readykit_job_overlaps_total",
            "Runs that began while an earlier run of the job was still going (ticks skipped).",
            ("job_name",),
            registry=registry,
        )
        self.interval = Gauge(
            "readykit_job_interval_seconds",
            "The job's period (absent for on-demand jobs).",
            ("job_name",),
            multiprocess_mode="max",
            registry=registry,
        )
        self.grace = Gauge(
            "readykit_job_grace_seconds",
            "How late the job may be before it counts as late.",
            ("job_name",),
            multiprocess_mode="max",
            registry=registry,
        )

    def declare(self, spec: JobSpec) -> None:
        """Publish the job's schedule and zero its failure counter (so rate() sees the first)."""
        self.failures.labels(spec.name)
        if spec.every is not None:
            self.interval.labels(spec.name).set(spec.every)
            self.grace.labels(spec.name).set(spec.grace)

    def finished(self, job: str, outcome: str, duration_s: float, ended: float) -> None:
        self.duration.labels(job, outcome).observe(duration_s)
        if outcome == "success":
            self.seen_success(job, ended)
        elif outcome in ("failure", "timeout"):
            self.failures.labels(job).inc()

    def seen_success(self, job: str, ended: float, *, now: float | None = None) -> None:
        """A success another instance recorded: every instance reports the same last success.

        The gauge only moves forward, except away from the future: given `now`, a success that
        ends in the future (a fast clock wrote it) is not taken, and one taken before is
        replaced, or the `time() - last_success` alert could never fire.
        """
        shown = self._last_success.get(job, 0.0)
        if now is not None:
            if ended > now + CLOCK_TOLERANCE_S:
                return
            if shown > now + CLOCK_TOLERANCE_S:
                shown = 0.0
        if shown < ended:
            self._last_success[job] = ended
            self.last_success.labels(job).set(ended)
