"""`POST /ops/jobs/{name}/ping`: heartbeats from a cron line or a CI step, with the ops token.

`?status=start` opens a run, `success` (the default) or `fail` closes it; the body, if any,
is the run's message (its error, for `fail`). An undeclared job is 404 problem+json.
"""

from __future__ import annotations

import json
import re
from typing import get_args
from urllib.parse import parse_qs

from readykit._types import ASGIApp, Receive, Scope, Send
from readykit.access import OpsAccess
from readykit.body import BodyTooLarge, read_body
from readykit.jobs.runner import Jobs, PingStatus
from readykit.problem import refuse_unauthorized, send_bytes, send_problem
from readykit.route_table import route_path

PINGS_PREFIX = "/ops/jobs/"
PATH = re.compile(r"/ops/jobs/([^/]+)/ping")
TEMPLATE = "/ops/jobs/{name}/ping"
MAX_BODY = 4096


class JobPings:
    """Pure-ASGI layer answering job pings; everything else goes to the app."""

    def __init__(self, app: ASGIApp, *, jobs: Jobs, access: OpsAccess) -> None:
        self.app = app
        self.jobs = jobs
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = PATH.fullmatch(route_path(scope)) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        scope["path_template"] = TEMPLATE  # one metrics label for every job's pings
        if scope["method"] != "POST":
            await send_problem(send, 405, "Ping with POST.", headers=[(b"allow", b"POST")])
            return
        if not self.access.allowed(scope):
            await refuse_unauthorized(send)
            return
        name = match.group(1)
        if name not in self.jobs.specs:
            await send_problem(send, 404, f"No job named {name!r} is declared in this service.")
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        status = query.get("status", ["success"])[-1]
        if status not in get_args(PingStatus):
            await send_problem(send, 400, f"status={status!r}: use start, success or fail.")
            return
        try:
            body = await read_body(receive, MAX_BODY)
        except BodyTooLarge:
            await send_problem(send, 413, f"A ping's message is at most {MAX_BODY} bytes.")
            return
        run = await self.jobs.ping(name, status, body.decode("utf-8", "replace"))
        answer = {"job": name, "run_id": run["id"], "outcome": run["outcome"]}
        await send_bytes(send, 200, json.dumps(answer).encode(), b"application/json")
