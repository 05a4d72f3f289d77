"""A Grafana dashboard for the kit's metrics: RED per route, health, stalls, jobs, records,
rate limits, cache and backups. Every expression is plain PromQL (no Grafana-only variables
but the data source), so a test evaluates each one against a real Prometheus."""

from __future__ import annotations

from typing import Any

from readykit.deploy.options import Target

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def panels(t: Target) -> list[tuple[str, str, str, list[tuple[str, str]]]]:
    """(title, unit, kind, [(PromQL, legend)]) of each panel, in order."""
    s = t.selector
    req = "http_server_request_duration_seconds"
    hits = f"sum by (cache) (rate(readykit_cache_hits_total{{{s}}}[5m]))"
    misses = f"sum by (cache) (rate(readykit_cache_misses_total{{{s}}}[5m]))"
    return [
        ("Requests per second by route", "reqps", "timeseries",
         [(f"sum by (http_route) (rate({req}_count{{{s}}}[5m]))", "{{http_route}}")]),
        ("5xx ratio by route", "percentunit", "timeseries",
         [(f'sum by (http_route) (rate({req}_count{{{s},http_response_status_code=~"5.."}}[5m]))'
           f" / sum by (http_route) (rate({req}_count{{{s}}}[5m]))", "{{http_route}}")]),
        ("p95 latency by route", "s", "timeseries",
         [(f"histogram_quantile(0.95, sum by (le, http_route) (rate({req}_bucket{{{s}}}[5m])))",
           "{{http_route}}")]),
        ("p50 latency by route", "s", "timeseries",
         [(f"histogram_quantile(0.5, sum by (le, http_route) (rate({req}_bucket{{{s}}}[5m])))",
           "{{http_route}}")]),
        ("Requests in flight", "short", "timeseries",
         [(f"sum(http_server_active_requests{{{s}}})", "in flight")]),
        ("Health checks (1 pass, 0.5 warn, 0 fail)", "short", "timeseries",
         [(f"min by (check, kind) (readykit_health_check_status{{{s}}})", "{{kind}} {{check}}")]),
        ("Event-loop stalls", "short", "timeseries",
         [(f"sum by (instance) (increase(readykit_event_loop_stalls_total{{{s}}}[5m]))",
           "{{instance}}")]),
        ("Time since each job's last success", "s", "timeseries",
         [(f"time() - max by (job_name) (readykit_job_last_success_timestamp_seconds{{{s}}})",
           "{{job_name}}")]),
        ("Job failures (1h)", "short", "timeseries",
         [(f"sum by (job_name) (increase(readykit_job_failures_total{{{s}}}[1h]))",
           "{{job_name}}")]),
        ("Job run time p95", "s", "timeseries",
         [(f"histogram_quantile(0.95, sum by (le, job_name) "
           f"(rate(readykit_job_duration_seconds_bucket{{{s}}}[1h])))", "{{job_name}}")]),
        ("Records queue, spilled, dropped", "short", "timeseries",
         [(f"sum(readykit_records_queue_depth{{{s}}})", "queued"),
          (f"sum(rate(readykit_records_spilled_total{{{s}}}[5m]))", "spilled/s"),
          (f"sum(rate(readykit_records_dropped_total{{{s}}}[5m]))", "dropped/s")]),
        ("Rate-limit rejections per second", "reqps", "timeseries",
         [(f"sum by (route, policy) (rate(readykit_rate_limit_rejections_total{{{s}}}[5m]))",
           "{{route}} {{policy}}")]),
        ("Cache hit ratio", "percentunit", "timeseries",
         [(f"{hits} / ({hits} + {misses})", "{{cache}}")]),
        ("Age of the newest backup", "s", "stat",
         [("time() - max(readykit_backup_last_success_timestamp_seconds)", "age")]),
    ]  # fmt: skip


def expressions(t: Target) -> list[str]:
    """Every PromQL expression on the dashboard."""
    return [expr for *_, targets in panels(t) for expr, _ in targets]


def dashboard(t: Target) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for i, (title, unit, kind, targets) in enumerate(panels(t)):
        out.append(
            {
                "id": i + 1,
                "title": title,
                "type": kind,
                "datasource": DATASOURCE,
                "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {
                        "refId": chr(ord("A") + j),
                        "expr": expr,
                        "legendFormat": legend,
                        "datasource": DATASOURCE,
                    }
                    for j, (expr, legend) in enumerate(targets)
                ],
            }
        )
    return {
        "title": f"{t.name} (readykit)",
        "uid": f"readykit-{t.name}"[:40],
        "tags": ["readykit"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                }
            ]
        },
        "panels": out,
    }
