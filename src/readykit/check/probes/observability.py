"""observability: a metrics endpoint that parses, and request ids echoed back."""

from __future__ import annotations

import secrets

from readykit.check.client import Response
from readykit.check.finding import Evidence, Finding, excerpt
from readykit.check.probe import ProbeContext

METRICS_PATHS = ("/metrics", "/prometheus", "/actuator/prometheus", "/api/metrics")
ID_HEADERS = ("x-request-id", "request-id", "x-correlation-id", "x-amzn-trace-id", "traceparent")


def parse_metrics(text: str) -> int:
    """How many metric families a Prometheus text exposition holds; raises ValueError if broken."""
    from prometheus_client.parser import text_string_to_metric_families

    families = list(text_string_to_metric_families(text))
    if not families:
        raise ValueError("no metric families")
    return len(families)


async def _metrics(ctx: ProbeContext) -> None:
    protected: Response | None = None
    for path in METRICS_PATHS:
        if not ctx.budget.has():
            return
        resp = await ctx.budget.try_request("GET", path, read_limit=4 * 1024 * 1024)
        if resp is None or ctx.target.like_unknown(resp) or resp.status == 404:
            continue
        if resp.status in (401, 403):
            protected = protected or resp
            continue
        if not 200 <= resp.status < 300:
            continue
        try:
            count = parse_metrics(resp.text)
        except (ValueError, TypeError, IndexError, KeyError):
            if resp.text.lstrip().startswith("# HELP") or "_total" in resp.text:
                ctx.add(
                    Finding(
                        "observability.metrics-unparsable",
                        "observability",
                        "warning",
                        f"{path} looks like metrics but does not parse as Prometheus text",
                        Evidence(resp.describe(), resp.status, excerpt(resp.body, 200)),
                        "Serve the Prometheus text exposition format (prometheus_client).",
                    )
                )
                return
            continue
        ctx.add(
            Finding(
                "observability.metrics",
                "observability",
                "info",
                f"{path} serves {count} metric families that parse",
                Evidence(resp.describe(), resp.status, excerpt(resp.body, 200)),
            )
        )
        ctx.add(  # routes, traffic, versions and internals, to anyone who asks
            Finding(
                "exposure.metrics-open",
                "exposure",
                "warning",
                f"{path} answers without credentials",
                Evidence(resp.describe(), resp.status, excerpt(resp.body, 200)),
                "Require a token for the scrape (Prometheus' `authorization` setting; "
                "readykit: READYKIT_OPS_TOKEN) or serve metrics on a private port or network.",
            )
        )
        return
    if protected is not None:
        ctx.add(
            Finding(
                "observability.metrics-protected",
                "observability",
                "info",
                f"{protected.path} exists but needs credentials ({protected.status})",
                Evidence(protected.describe(), protected.status, excerpt(protected.body, 200)),
            )
        )
        return
    ctx.add(
        Finding(
            "observability.no-metrics",
            "observability",
            "warning",
            "no metrics endpoint found",
            Evidence("GET " + ", ".join(METRICS_PATHS), None, "none served Prometheus text"),
            "Expose request metrics (ReadyKit serves /metrics with the OTel HTTP conventions).",
        )
    )


async def _request_ids(ctx: ProbeContext) -> None:
    sent = f"readykit-check-{secrets.token_hex(8)}"
    path = next((e.concrete() for e in ctx.target.gets(1)), "/")
    if not ctx.budget.has():
        return
    resp = await ctx.budget.try_request("GET", path, headers={"X-Request-ID": sent})
    if resp is None:
        return
    found = {h: resp.header(h) for h in ID_HEADERS if resp.header(h)}
    shown = "\n".join(f"{h}: {v}" for h, v in found.items()) or "no request id header"
    ev = Evidence(resp.describe(), resp.status, shown)
    if any(v == sent for v in found.values()):
        ctx.add(
            Finding(
                "observability.request-id",
                "observability",
                "info",
                "the request id sent is echoed back",
                ev,
            )
        )
    elif found:
        ctx.add(
            Finding(
                "observability.request-id-not-kept",
                "observability",
                "info",
                "responses carry a request id, but not the one the caller sent",
                ev,
                "Keep a well-formed incoming X-Request-ID so ids join across services.",
            )
        )
    else:
        ctx.add(
            Finding(
                "observability.no-request-id",
                "observability",
                "warning",
                "responses carry no request id",
                ev,
                "Echo or generate X-Request-ID and log it with every line (ReadyKit does).",
            )
        )


async def run(ctx: ProbeContext) -> None:
    """Look for metrics and request ids."""
    await _metrics(ctx)
    await _request_ids(ctx)
