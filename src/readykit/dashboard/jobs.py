"""The dashboard's jobs page (`/ops/jobs`) and its JSON (`/ops/api/jobs`): each job's schedule,
state, next due time and newest runs."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from readykit._types import Receive, Scope, Send
from readykit.dashboard.views import TITLES, Dashboard
from readykit.problem import send_bytes, send_problem

if TYPE_CHECKING:
    from readykit.jobs import Jobs

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


def jobs_routes(dashboard: Dashboard, jobs: Jobs) -> dict[str, Handler]:
    """`/ops/jobs` and `/ops/api/jobs`, behind the dashboard's login."""

    async def api(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_problem(send, 405, "Only GET is allowed here.")
            return
        if not await dashboard.auth.allowed(scope):
            await send_problem(send, 401, "The ops token is required.",
                               headers=[(b"www-authenticate", b"Bearer")])  # fmt: skip
            return
        body = json.dumps({"now": jobs.clock(), "jobs": await jobs.status()}, default=str)
        await send_bytes(send, 200, body.encode(), b"application/json")

    async def page(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_problem(send, 405, "Only GET is allowed here.")
            return
        if not await dashboard.auth.allowed(scope):
            await dashboard._refuse_page(scope, send)
            return
        states = await jobs.status()
        unavailable = next((s["unavailable"] for s in states if "unavailable" in s), None)
        context = {
            "page": "jobs", "kinds": TITLES, "jobs": states, "now": jobs.clock(),
            "unavailable": unavailable,
        }  # fmt: skip
        # 501 naming the extra without jinja2, as the other pages (the JSON API still serves)
        await dashboard._send_page(scope, send, 200, "jobs.html.j2", context)

    return {"/ops/jobs": page, "/ops/api/jobs": api}
