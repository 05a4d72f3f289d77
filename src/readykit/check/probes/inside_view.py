"""inside-view: with `--ops-token`, what a readykit service saw of the check, joined with it.

Runs last, so what the other probes caused is recorded by then: event-loop stalls during the
check (with the culprit's file and line), unhandled exceptions the probes raised, slow queries,
audit events, cache hit rates, and the health details (failing checks, migrations, empty
tables). Reads only `/health` and `/ops/api/*` with the token; an API the service does not
have (404, such as `jobs`) is skipped. The token itself never reaches the report.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from readykit.check.client import Response
from readykit.check.finding import Evidence, Finding, excerpt, secret_forms
from readykit.check.probe import ProbeContext

# A busy shared host deschedules a process now and then: that reads as a stall with a random
# culprit. A defect is a stall that lasts (>= 1 s) or one culprit that stalls again and again.
STALL_WARN_MS = 1000.0
STALL_REPEATS = 3
FAILING = ("fail", "down", "unhealthy")
# answered by a guard in front of the app (body or rate limit): never the app's to audit
GUARD_REFUSALS = frozenset({413, 429})
AUDIT_PAGES = 20  # pages of 50 events read back at most


def _excerpt(ctx: ProbeContext, lines: list[str]) -> str:
    """What the service recorded, with the ops token (an echo of it, in any form) replaced
    before the text is cut: a cut token is no longer found by the report's own scrub."""
    return excerpt("\n".join(lines), 1200, secrets=secret_forms(ctx.options.ops_token or ""))


def _ev(request: str, resp: Response | None, text: str) -> Evidence:
    return Evidence(request, resp.status if resp is not None else None, text)


async def _get(ctx: ProbeContext, path: str) -> tuple[Response | None, Any]:
    token = ctx.options.ops_token or ""
    resp = await ctx.budget.try_request(
        "GET", path, headers={"Authorization": f"Bearer {token}"}, read_limit=1024 * 1024
    )
    if resp is None or resp.status not in (200, 503):  # a failing health+json is 503
        return resp, None
    return resp, resp.json()


def _recent(rows: Any, since: float) -> list[dict[str, Any]]:
    if not isinstance(rows, list):
        return []
    return [r for r in rows if isinstance(r, dict) and _number(r.get("ts")) >= since]


def _number(value: Any) -> float:
    """A number the service reported, or 0 for anything else (the ops API is the target's
    to answer: a `"ts": "soon"` is no reason to stop the check)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0.0
    try:
        number = float(value)
    except ValueError:
        return 0.0
    return number if math.isfinite(number) else 0.0


def _health(ctx: ProbeContext, resp: Response | None, doc: Any) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("checks"), dict):
        return
    failing, empty, lines = [], [], []
    for key, results in doc["checks"].items():
        for r in results if isinstance(results, list) else []:
            if not isinstance(r, dict):
                continue
            status = str(r.get("status", "")).lower()
            value, unit = r.get("observedValue"), r.get("observedUnit")
            lines.append(f"{key}: {status} {value if value is not None else ''} {unit or ''}")
            if status in FAILING:
                failing.append(f"{key} ({r.get('output') or status})")
            elif unit == "rows" and value == 0:
                empty.append(key.split(":")[0])
    ev = _ev("GET /health (ops token)", resp, _excerpt(ctx, lines))
    for name in failing:
        check_id = "inside-view.migrations" if "migration" in name else "inside-view.health-failing"
        ctx.add(
            Finding(
                check_id,
                "inside-view",
                "blocker",
                f"health detail failing: {name}",
                ev,
                "Fix the failing dependency or run the pending migrations before routing traffic.",
            )
        )
    if empty:
        ctx.add(
            Finding(
                "inside-view.empty-tables",
                "inside-view",
                "warning",
                "health details show empty tables: " + ", ".join(empty),
                ev,
                "Load the reference data the service needs (seed, migration) before it serves.",
            )
        )


async def _entries(ctx: ProbeContext, kind: str, since: float) -> list[dict[str, Any]]:
    _, doc = await _get(ctx, f"/ops/api/entries?kind={kind}")
    return _recent(doc.get("latest") if isinstance(doc, dict) else None, since)


async def run(ctx: ProbeContext) -> None:
    """Read health details and the ops API, and report what happened during the check."""
    if not ctx.options.ops_token:
        ctx.applicable = False
        return
    since = ctx.options.started_at or (time.time() - 120)
    # /health answers anyone (details only for the token): the ops API says if the token works
    overview, _ = await _get(ctx, "/ops/api/overview")
    if overview is not None and overview.status in (401, 403):
        ctx.add(
            Finding(
                "inside-view.token-refused",
                "inside-view",
                "warning",
                f"the service refused the ops token ({overview.status})",
                _ev("GET /ops/api/overview (ops token)", overview, ""),
                "Pass the service's READYKIT_OPS_TOKEN to --ops-token.",
            )
        )
        return
    resp, doc = await _get(ctx, "/health")
    _health(ctx, resp, doc)
    stalls = await _entries(ctx, "stall", since)
    if stalls:
        worst = max(_number(s.get("duration_ms")) for s in stalls)
        counts = Counter(str(s.get("group")) for s in stalls)
        culprits = [group for group, _ in counts.most_common()]
        repeated = counts.most_common(1)[0][1] >= STALL_REPEATS
        ctx.add(
            Finding(
                "inside-view.stalls",
                "inside-view",
                "warning" if worst >= STALL_WARN_MS or repeated else "info",
                f"{len(stalls)} event-loop stall(s) during the check, the longest "
                f"{worst:.0f} ms, at " + "; ".join(culprits[:3]),
                _ev("GET /ops/api/entries?kind=stall", None, "\n".join(culprits[:10])),
                "Move the blocking call named here off the event loop "
                "(`await asyncio.to_thread(...)`, an async client).",
            )
        )
    exceptions = await _entries(ctx, "exception", since)
    if exceptions:
        groups = sorted({str(e.get("group")) for e in exceptions})
        ctx.add(
            Finding(
                "inside-view.exceptions",
                "inside-view",
                "warning",
                f"the check's requests raised {len(exceptions)} unhandled exception(s): "
                + "; ".join(groups[:3]),
                _ev("GET /ops/api/entries?kind=exception", None, _excerpt(ctx, groups)),
                "Validate input before using it; answer a client's mistake with a 4xx.",
            )
        )
    queries = await _entries(ctx, "slow_query", since)
    if queries:
        groups = sorted({str(q.get("group")) for q in queries})
        ctx.add(
            Finding(
                "inside-view.slow-queries",
                "inside-view",
                "info",
                f"{len(queries)} slow quer(ies) during the check: " + "; ".join(groups[:2]),
                _ev("GET /ops/api/entries?kind=slow_query", None, _excerpt(ctx, groups)),
                "Index or rewrite these queries.",
            )
        )
    audited, actions, readable = await _audited_ids(ctx, since)
    answered = [m for m in ctx.budget.client.sent_mutations if m[3] not in GUARD_REFUSALS]
    missing = [m for m in answered if m[0] not in audited]
    if readable and missing:
        shown = "; ".join(f"{method} {path} -> {status}" for _, method, path, status in missing[:5])
        ctx.add(
            Finding(
                "inside-view.unaudited",
                "inside-view",
                "warning",
                f"{len(missing)} of the {len(answered)} POST/PUT/PATCH requests the check sent "
                f"left no audit event: {shown}",
                _ev(
                    "GET /ops/api/audit",
                    None,
                    "request ids: " + ", ".join(m[0] for m in missing[:5]),
                ),
                "Turn on auditing of mutations (READYKIT_AUDIT_MUTATIONS=true) or record them "
                "with kit.audit.record.",
            )
        )
    elif readable:
        ctx.add(
            Finding(
                "inside-view.audit",
                "inside-view",
                "info",
                f"each of the {len(answered)} POST/PUT/PATCH requests the check sent was audited "
                "(matched by request id)"
                + (": " + ", ".join(sorted(actions)[:5]) if actions else ""),
                _ev("GET /ops/api/audit", None, ""),
            )
        )
    _, guards = await _get(ctx, "/ops/api/guards")
    cache = guards.get("cache") if isinstance(guards, dict) else None
    if isinstance(cache, dict) and cache:
        rows = [
            f"{name}: hit rate {_number(v.get('hit_rate')):.0%} "
            f"({_number(v.get('hits')):.0f} hits, {_number(v.get('misses')):.0f} misses)"
            for name, v in cache.items()
            if isinstance(v, dict)
        ]
        ctx.add(
            Finding(
                "inside-view.cache",
                "inside-view",
                "info",
                "cache: " + "; ".join(rows),
                _ev("GET /ops/api/guards", None, ""),
            )
        )
    jobs_resp, jobs = await _get(ctx, "/ops/api/jobs")
    if jobs_resp is not None and jobs_resp.status == 200 and isinstance(jobs, dict):
        bad = [
            f"{j.get('name')} ({j.get('state')}: {'; '.join(map(str, j.get('problems') or []))})"
            for j in jobs.get("jobs", [])
            if isinstance(j, dict) and j.get("state") in ("failing", "late")
        ]
        if bad:
            ctx.add(
                Finding(
                    "inside-view.jobs",
                    "inside-view",
                    "warning",
                    "jobs failing or late: " + ", ".join(bad[:5]),
                    _ev("GET /ops/api/jobs", jobs_resp, ""),
                    "See the job's last error on /ops and fix or reschedule it.",
                )
            )


async def _audited_ids(ctx: ProbeContext, since: float) -> tuple[set[str], set[str], bool]:
    """Request ids and actions of the audit events since `since`; False if unreadable."""
    ids: set[str] = set()
    actions: set[str] = set()
    when = datetime.fromtimestamp(since - 1, UTC).isoformat()
    for page in range(1, AUDIT_PAGES + 1):
        query = urlencode({"since": when, "page": page})
        resp, audit = await _get(ctx, f"/ops/api/audit?{query}")
        if resp is None or resp.status != 200 or not isinstance(audit, dict):
            return ids, actions, page > 1
        for event in audit.get("events") or []:
            if isinstance(event, dict):
                ids.add(str(event.get("request_id")))
                actions.add(str(event.get("action")))
        if not audit.get("next"):
            break
    return ids, actions, True
