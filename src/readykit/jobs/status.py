"""A job's state from its recorded runs: late, failing, overrunning or overlapping, and when it is
due next (as Sentry Crons and healthchecks.io judge a monitor)."""

from __future__ import annotations

from typing import Any

from readykit.durations import format_duration
from readykit.jobs.spec import JobSpec

SHOWN_RUNS = 20
FINISHED = ("success", "failure", "timeout", "cancelled")


def _first_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no error text"


def assess(spec: JobSpec, runs: list[dict[str, Any]], now: float, since: float) -> dict[str, Any]:
    """The job's state at `now`; `runs` oldest first; `since` is when watching began."""
    runs = sorted(runs, key=lambda r: (r["started"], r["id"]))
    real = [r for r in runs if r["outcome"] != "skipped"]
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
        if spec.scheduled and base is None and since - spec.slot(since) <= spec.grace:
            next_due = spec.slot(since)  # the current tick is still run at startup
        late_by = now - (next_due + spec.grace)
        if late_by > 0 and not overrun:
            state = "late"
            problems.append(
                f"late: due {format_duration(now - next_due)} ago "
                f"(every {format_duration(spec.every)}, grace {format_duration(spec.grace)})"
            )

    if runs and runs[-1]["outcome"] == "skipped" and state == "ok":
        state = "overlapping"
        problems.append(_first_line(runs[-1]["error"]))

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
