"""One run's mechanics: starting the job's function (a task, or a thread for sync functions),
its timeout error, and what a failure leaves behind (a redacted stack, an APM entry)."""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from readykit.jobs.spec import JobSpec
from readykit.logging.redact import redact_text

MAX_ERROR_CHARS = 8000


class JobTimeout(Exception):
    """A run went past its job's timeout and was stopped."""


@dataclass(frozen=True, slots=True)
class JobRun:
    """The run being wrapped by `async with jobs.run(name)`: its id (in its logs) and start."""

    id: str
    job: str
    started: float


def error_text(exc: BaseException) -> str:
    """The redacted exception and its stack, bounded (a failure's record and its APM entry)."""
    text = "".join(traceback.format_exception(exc))
    return redact_text(text)[-MAX_ERROR_CHARS:]


def start_work(spec: JobSpec) -> tuple[asyncio.Future[Any], Callable[[], bool]]:
    """Begin the job's function: a task (async) or a worker thread (sync), and 'has it returned'."""
    assert spec.fn is not None
    fn = spec.fn
    if spec.is_async:
        task: asyncio.Future[Any] = asyncio.ensure_future(fn())
        return task, task.done
    returned = threading.Event()

    def call() -> Any:
        try:
            return fn()
        finally:
            returned.set()

    return asyncio.ensure_future(asyncio.to_thread(call)), returned.is_set


def apm_event(job: str, run: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """An APM `exception` entry for a failed run, grouped like request exceptions."""
    from readykit.records.store import new_id

    tb = traceback.extract_tb(exc.__traceback__)
    where = f"{tb[-1].filename}:{tb[-1].lineno} in {tb[-1].name}" if tb else "unknown"
    return {
        "id": new_id(),
        "kind": "exception",
        "ts": run["ended"],
        "group": f"{type(exc).__module__}.{type(exc).__qualname__} at {where}"[:300],
        "duration_ms": round((run["duration_s"] or 0) * 1000, 3),
        "data": {
            "message": redact_text(str(exc))[:500],
            "job": job,
            "job_run_id": run["id"],
            "route": f"job {job}",
        },
    }
