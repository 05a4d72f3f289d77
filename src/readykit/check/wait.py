"""`readykit wait URL --ready`: poll a service's readiness until it passes or time runs out.

For the gap between a deploy and the gate (`readykit check --baseline`): connection refused,
resets and 503s mean "not yet"; the path is `/health/ready` (or `/health/live` with `--live`)
unless that answers 404, then the first of the field's readiness paths that answers like a
health endpoint (`/readyz`, `/-/ready`, `/actuator/health/readiness`, `/healthz`, …).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from readykit.check.client import Client, RequestFailed, Response
from readykit.check.finding import excerpt

READY_PATHS = (
    "/health/ready",
    "/readyz",
    "/-/ready",
    "/actuator/health/readiness",
    "/health/readiness",
    "/ready",
    "/healthz",
    "/health",
    "/actuator/health",
)
LIVE_PATHS = ("/health/live", "/livez", "/-/healthy", "/actuator/health/liveness", "/healthz")
FAILING = ("fail", "down", "unhealthy", "error")
REQUEST_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Outcome:
    """How the wait ended: ready or not, after how long, and the last answer seen."""

    ready: bool
    waited_s: float
    path: str | None
    last: str

    def line(self) -> str:
        where = f" ({self.path})" if self.path else ""
        if self.ready:
            return f"ready after {self.waited_s:.1f}s{where}"
        return f"not ready after {self.waited_s:.1f}s{where}: {self.last}"


def passes(resp: Response) -> bool:
    """2xx and, when the body is health JSON, a status that is not failing."""
    if not 200 <= resp.status < 300:
        return False
    doc = resp.json()
    status = doc.get("status") if isinstance(doc, dict) else None
    return not (isinstance(status, str) and status.lower() in FAILING)


def describe(resp: Response) -> str:
    return f"GET {resp.path} answered {resp.status} {excerpt(resp.body, 120)}".strip()


async def wait(
    url: str,
    *,
    timeout_s: float,
    interval_s: float = 1.0,
    live: bool = False,
    path: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Outcome:
    """Poll until the readiness path passes or `timeout_s` has gone by (on `clock`)."""
    start = clock()
    candidates = (path,) if path else (LIVE_PATHS if live else READY_PATHS)
    chosen: str | None = path
    last = "no answer yet"
    async with Client(url) as client:
        while True:
            left = timeout_s - (clock() - start)
            try:
                for candidate in (chosen,) if chosen else candidates:
                    resp = await client.send(
                        "GET", candidate, timeout_s=max(0.1, min(REQUEST_TIMEOUT_S, left))
                    )
                    last = describe(resp)
                    if resp.status in (404, 405) and chosen is None:
                        continue  # not this path: try the next one
                    chosen = candidate
                    if passes(resp):
                        return Outcome(True, clock() - start, chosen, last)
                    break
            except RequestFailed as exc:
                last = str(exc)
            left = timeout_s - (clock() - start)
            if left <= 0:
                return Outcome(False, clock() - start, chosen, last)
            # the last poll comes at the timeout, so "not ready after" is the time asked for
            await sleep(min(interval_s, left))
