"""A job's state from its recorded runs: late, failing, overrunning or overlapping, and when it is
due next (as Sentry Crons and healthchecks.io judge a monitor)."""

from __future__ import annotations

from typing import Any

from readykit.durations import format_duration
from readykit.jobs.spec import JobSpec

SHOWN_RUNS = 20
FINISHED = ("success", "failure", "timeout", "cancelled")
# how far in the future a run's start or a lease's claim may be before the clock that wrote it is
# taken to be wrong (hosts kept by NTP are within a second of each other)
CLOCK_TOLERANCE_S = 60.0


def _first_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no error text"


def assess(
    spec: JobSpec,
    runs: list[dict[str, Any]],
    now: float,
    since: float,
    *,
    service: str | None = None,
) -> dict[str, Any]:
    """The job's state at `now`; `runs` oldest first; `since` is when watching began.

    Runs another `service` recorded under the same job name, and runs that started in the
    future (written by an instance whose clock is fast), are shown and reported as problems
    but not judged: the state is this service's schedule as kept by sane clocks.
    """
    runs = sorted(runs, key=lambda r: (r["started"], r["id"]))
    foreign = [r for r in runs if service is not None and r.get("service", service) != service]
    future = [r for r in runs if r["started"] > now + CLOCK_TOLERANCE_S and r not in foreign]
    unjudged = {r["id"] for r in (*foreign, *future)}
    judged = [r for r in runs if r["id"] not in unjudged]
    real = [r for r in judged if r["outcome"] != "skipped"]
    finished = [r for r in real if r["outcome"] in FINISHED]
    successes = [r for r in finished if r["outcome"] == "success"]
    limit = spec.timeout or spec.grace
    problems: list[str] = []
    state = "ok"

    last = finished[-1] if finished else None
    if last is not None and last["outcome"] in ("failure", "timeout"):
        state = "failing"
        problems.append(f"last run {last['outcome']}: {_first_line(last['error'])}")

    running = [r for r in real if r["outcome"] == "running"]
    overrun = [r for r in running if now > r["started"] + limit]
    if overrun:
        state = "late"
        problems.append(
            f"a run has been going for {format_duration(now - overrun[-1]['started'])}, "
            f"past its limit of {format_duration(limit)}"
        )

    next_due = None
    if spec.every is not None:
        base = real[-1] if real else None
        if base is None:
            start = spec.slot(since) if spec.scheduled else since
        elif spec.scheduled and base.get("slot") is not None:
            start = base["slot"]
        else:
            start = base["started"]
        next_due = start + spec.every
        if spec.scheduled and base is None:
            next_due = spec.first_slot(since)  # the current tick may still be run at startup
        late_by = now - (next_due + spec.grace)
        if late_by > 0 and not overrun:
            state = "late"
            problems.append(
                f"late: due {format_duration(now - next_due)} ago "
                f"(every {format_duration(spec.every)}, grace {format_duration(spec.grace)})"
            )

    newest = judged[-1] if judged else {}
    if newest.get("outcome") == "skipped" and newest.get("overlap", True) and state == "ok":
        state = "overlapping"
        problems.append(_first_line(newest["error"]))

    # reported without changing the state: the schedule itself is judged above
    if future:
        ahead = future[-1]
        problems.append(
            f"clock: a run by instance {ahead.get('instance')} starts "
            f"{format_duration(ahead['started'] - now)} from now (its clock is fast; that run is "
            "not counted): fix that instance's clock"
        )
    others = sorted({str(r.get("service")) for r in foreign})
    if others:
        problems.append(
            f"shared: service {', '.join(map(repr, others))} also records a job named "
            f"{spec.name!r} on this store (runs and leases are kept by job name): rename one of "
            "the jobs or give each service its own store"
        )

    shown = [dict(r) for r in reversed(runs[-SHOWN_RUNS:])]
    return {
        "name": spec.name,
        "schedule": spec.describe(),
        "every_s": spec.every,
        "grace_s": spec.grace,
        "timeout_s": spec.timeout,
        "critical": spec.critical,
        "in_process": spec.scheduled,
        "state": state,
        "problems": problems,
        "running": bool(running) and not overrun,
        "next_due": next_due,
        "last_success": successes[-1]["ended"] if successes else None,
        "last_run": dict(real[-1]) if real else None,
        "runs": shown,
    }
