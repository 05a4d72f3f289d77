"""health: liveness and readiness endpoints, their health+json bodies, and what they cost."""

from __future__ import annotations

import re
import statistics
from typing import Any

from readykit.check.client import Response
from readykit.check.finding import Evidence, Finding, excerpt
from readykit.check.probe import ProbeContext
from readykit.health.render import HEALTH_JSON

LIVENESS = (
    "/health/live",
    "/livez",
    "/healthz",
    "/health/liveness",
    "/-/healthy",
    "/actuator/health/liveness",
    "/live",
    "/ping",
)
READINESS = (
    "/health/ready",
    "/readyz",
    "/health/readiness",
    "/-/ready",
    "/actuator/health/readiness",
    "/ready",
)
GENERAL = (
    "/health",
    "/actuator/health",
    "/status",
    "/_health",
    "/_healthz",
    "/api/health",
    "/api/healthz",
    "/heartbeat",
    "/__heartbeat__",
    "/__lbheartbeat__",
    "/q/health",
)
REPEATS = 5
SLOW_MS = 100.0
TOO_SLOW_MS = 1000.0
_HEALTHY_PATH = re.compile(r"(?i)(health|alive|live|ready|heartbeat|ping|status)")
_OK_WORDS = ("ok", "healthy", "pass", "up", "alive", "ready", "pong", "true")


def _evidence(resp: Response) -> Evidence:
    return Evidence(resp.describe(), resp.status, excerpt(resp.body))


def health_doc(resp: Response) -> dict[str, Any] | None:
    """The health+json (or any JSON with a `status`) body, or None."""
    doc = resp.json()
    if isinstance(doc, dict) and isinstance(doc.get("status"), str):
        return doc
    return None


def _is_health(ctx: ProbeContext, resp: Response | None) -> bool:
    if resp is None or resp.status in (404, 405) or ctx.target.like_unknown(resp):
        return False
    if resp.status not in (200, 204, 503) and not 200 <= resp.status < 300:
        return False
    if resp.status == 204 or health_doc(resp) is not None:
        return True
    words = resp.text.strip().strip('"').lower()
    return len(words) <= 40 and any(w in words for w in _OK_WORDS)


def _discovered(ctx: ProbeContext) -> tuple[str, ...]:
    """Health-like GET paths that discovery found elsewhere (OpenAPI, crawl, --endpoint)."""
    known = set(LIVENESS) | set(READINESS) | set(GENERAL)
    return tuple(
        e.path
        for e in ctx.target.endpoints
        if e.method == "GET"
        and not e.has_path_params
        and e.path not in known
        and _HEALTHY_PATH.search(e.path)
    )[:5]


async def _first(ctx: ProbeContext, paths: tuple[str, ...]) -> Response | None:
    for path in paths:
        if not ctx.budget.has():
            return None
        resp = await ctx.budget.try_request("GET", path)
        if resp is not None and _is_health(ctx, resp):
            return resp
    return None


def _check_body(ctx: ProbeContext, resp: Response, role: str) -> None:
    doc = health_doc(resp)
    content_type = resp.content_type.encode()
    if doc is None:
        ctx.add(
            Finding(
                f"health.{role}-format",
                "health",
                "info",
                f"{resp.path} answers without a health+json body",
                _evidence(resp),
                "Return application/health+json (status pass|warn|fail, checks) so tools can "
                "read which dependency failed.",
            )
        )
        return
    status = doc["status"].lower()
    if status not in ("pass", "warn", "fail", "ok", "up", "down", "healthy", "unhealthy"):
        ctx.add(
            Finding(
                f"health.{role}-format",
                "health",
                "warning",
                f"{resp.path} reports an unknown status {doc['status']!r}",
                _evidence(resp),
                "Use the health+json statuses pass, warn and fail.",
            )
        )
    elif content_type != HEALTH_JSON:
        ctx.add(
            Finding(
                f"health.{role}-format",
                "health",
                "info",
                f"{resp.path} has a status but is served as {resp.content_type or 'no type'}",
                _evidence(resp),
                "Serve the body as application/health+json.",
            )
        )
    if status in ("fail", "down", "unhealthy") or resp.status == 503:
        ctx.add(
            Finding(
                f"health.{role}-failing",
                "health",
                "blocker",
                f"{resp.path} reports the service unhealthy ({resp.status}, {doc['status']})",
                _evidence(resp),
                "Fix the failing check named in the body before routing traffic here.",
            )
        )


async def _timing(ctx: ProbeContext, path: str) -> None:
    times: list[float] = []
    last: Response | None = None
    for _ in range(REPEATS):
        if not ctx.budget.has():
            break
        last = await ctx.budget.try_request("GET", path)
        if last is None:
            break
        times.append(last.elapsed_s * 1000)
    if not times or last is None:
        return
    median, fastest = statistics.median(times), min(times)
    shown = ", ".join(f"{t:.0f}" for t in times)
    ev = Evidence(f"GET {path} x{len(times)}", last.status, f"times (ms): {shown}")
    if median >= TOO_SLOW_MS:
        ctx.add(
            Finding(
                "health.slow",
                "health",
                "blocker",
                f"{path} takes {median:.0f} ms (median): probes time out at 1 s by default",
                ev,
                "Give each check a timeout and cache results briefly (health_cache_s).",
            )
        )
    elif fastest >= SLOW_MS:
        ctx.add(
            Finding(
                "health.uncached",
                "health",
                "warning",
                f"every call to {path} costs >= {fastest:.0f} ms: results are not cached",
                ev,
                "Cache check results for a second or two so many probes do not each cost "
                "real dependency calls.",
            )
        )


async def run(ctx: ProbeContext) -> None:
    """Find liveness and readiness, read their bodies, time readiness."""
    live = await _first(ctx, LIVENESS)
    ready = await _first(ctx, READINESS)
    general = await _first(ctx, GENERAL) if live is None or ready is None else None
    if live is None and ready is None and general is None:
        general = await _first(ctx, _discovered(ctx))
    if live is None and ready is None and general is None:
        ctx.add(
            Finding(
                "health.missing",
                "health",
                "warning",
                "no health endpoint found",
                Evidence(
                    "GET " + ", ".join((*LIVENESS, *READINESS, *GENERAL)),
                    None,
                    "none answered like a health endpoint",
                ),
                "Serve /health/live (process alive) and /health/ready (dependencies reachable); "
                "ReadyKit serves both.",
            )
        )
        return
    if live is None or ready is None:
        found = live or ready or general
        assert found is not None
        ctx.add(
            Finding(
                "health.split",
                "health",
                "warning",
                f"only one health endpoint ({found.path}): liveness and readiness are not separate",
                _evidence(found),
                "Serve liveness (never checks dependencies) and readiness (does) separately, so "
                "a database outage takes the instance out of rotation without restarting it.",
            )
        )
    readiness = ready or general or live  # a lone endpoint serves as both
    if live is not None:
        _check_body(ctx, live, "liveness")
    if readiness is not None and readiness is not live:
        _check_body(ctx, readiness, "readiness")
    if readiness is not None:
        doc = health_doc(readiness)
        # health+json `checks`; Spring Actuator `components`; MicroProfile `checks` (a list)
        checks = (doc.get("checks") or doc.get("components") or doc.get("details")) if doc else None
        if doc is not None and not checks:
            ctx.add(
                Finding(
                    "health.readiness-no-checks",
                    "health",
                    "warning",
                    f"{readiness.path} lists no dependency checks",
                    _evidence(readiness),
                    "Register a check per dependency (database, cache, queue) so readiness "
                    "reflects them.",
                )
            )
        await _timing(ctx, readiness.path)
    if readiness is not None and not any(f.severity != "info" for f in ctx.findings):
        paths = [r.path for r in (live, ready) if r is not None]
        ctx.add(
            Finding(
                "health.ok",
                "health",
                "info",
                "health endpoints found: " + ", ".join(paths),
                _evidence(readiness),
            )
        )
