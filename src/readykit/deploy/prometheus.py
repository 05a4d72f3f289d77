"""Prometheus artifacts: the scrape job (with the ops token), alert rules for the kit's metrics,
each with a runbook line, and promtool unit tests for the rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from readykit.deploy.options import Target

BACKUP_MAX_AGE_H = 26  # a daily backup, with two hours of slack


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    runbook: str


def alerts(t: Target) -> list[Alert]:
    """The alert rules of one service; `{s}` in their PromQL is its series selector."""
    s = t.selector
    requests = "http_server_request_duration_seconds"
    slow_s = t.settings.slow_request_ms / 1000
    return [
        Alert("ReadykitTargetDown", f"up{{{s}}} == 0", "2m", "critical",
              "{{ $labels.instance }} of " + t.name + " cannot be scraped",
              "Check the pod (kubectl describe pod, logs); if it runs, check the ops token "
              "Secret the scrape job reads."),
        Alert("ReadykitHighErrorRatio",
              f'sum(rate({requests}_count{{{s},http_response_status_code=~"5.."}}[5m]))'
              f" / sum(rate({requests}_count{{{s}}}[5m])) > 0.05",
              "5m", "critical", f"More than 5% of {t.name}'s requests fail with 5xx",
              "Open /ops (Exceptions) for the failing routes and their stacks; roll back the "
              "last deploy if it started with it."),
        Alert("ReadykitSlowRoute",
              f"histogram_quantile(0.95, sum by (le, http_route) "
              f"(rate({requests}_bucket{{{s}}}[5m]))) > {slow_s:g}",
              "10m", "warning",
              "p95 of {{ $labels.http_route }} is above " + f"{slow_s:g}s",
              "Open /ops (Slow requests, Slow queries) for the route; check its dependencies' "
              "latency and the event-loop stalls."),
        Alert("ReadykitNotReady",
              f'min by (instance, check) (readykit_health_check_status{{{s},kind="readiness"}})'
              " == 0",
              "5m", "critical",
              "Readiness check {{ $labels.check }} fails on {{ $labels.instance }}",
              "GET /health with the ops token names the failing dependency and its error; fix or "
              "fail over that dependency."),
        Alert("ReadykitEventLoopStalls",
              f"sum by (instance) (increase(readykit_event_loop_stalls_total{{{s}}}[10m])) > 5",
              "0m", "warning", "The event loop of {{ $labels.instance }} keeps stalling",
              "Open /ops (Event-loop stalls): each stall names the blocking line; move that "
              "call off the loop (asyncio.to_thread)."),
        Alert("ReadykitJobLate",
              f"time() - max by (job_name) (readykit_job_last_success_timestamp_seconds{{{s}}})"
              f" > max by (job_name) (readykit_job_interval_seconds{{{s}}}"
              f" + readykit_job_grace_seconds{{{s}}})",
              "5m", "warning", "Job {{ $labels.job_name }} has not succeeded on schedule",
              "Open /ops/jobs: see its last runs and errors; if nothing ran, check that an "
              "instance runs jobs (READYKIT_JOBS_SCHEDULER) and that the store is reachable."),
        Alert("ReadykitJobFailing",
              f"sum by (job_name) (increase(readykit_job_failures_total{{{s}}}[1h])) > 0",
              "0m", "warning", "Job {{ $labels.job_name }} failed in the last hour",
              "Open /ops/jobs for the run's redacted stack (also under Exceptions); fix the "
              "cause, then wait for the next tick or ping a manual run."),
        Alert("ReadykitJobsUnhealthy",
              f'min by (instance) (readykit_health_check_status{{{s},check="jobs"}}) < 1',
              "15m", "warning", "The jobs health check warns on {{ $labels.instance }}",
              "GET /health with the ops token: the jobs check names each late or failing job "
              "(including jobs that never ran)."),
        Alert("ReadykitRecordsSpilling",
              f"sum by (instance) (increase(readykit_records_spilled_total{{{s}}}[10m])) > 0",
              "5m", "warning", "{{ $labels.instance }} spills records to disk",
              "The records store is slow or down: check the store health check and its "
              "database; spilled records are replayed when it is back."),
        Alert("ReadykitRecordsDropped",
              f"sum by (instance) (increase(readykit_records_dropped_total{{{s}}}[10m])) > 0",
              "0m", "critical", "{{ $labels.instance }} drops audit/APM records",
              "The queue is full with records_full_policy=drop: restore the store, or switch "
              "the policy to spill; dropped records are lost."),
        Alert("ReadykitBackupTooOld",
              f"time() - max by (repo) (readykit_backup_last_success_timestamp_seconds)"
              f" > {BACKUP_MAX_AGE_H * 3600}",
              "30m", "critical",
              "The newest backup in {{ $labels.repo }} is older than " + f"{BACKUP_MAX_AGE_H}h",
              "Run `readykit backup list --repo` and the backup job's logs; run `readykit "
              "backup create` by hand, then fix the schedule."),
    ]  # fmt: skip


def rules(t: Target) -> dict[str, Any]:
    """The rule file: one group of alerts for the service."""
    return {
        "groups": [
            {
                "name": f"readykit-{t.name}",
                "rules": [
                    {
                        "alert": a.name,
                        "expr": a.expr,
                        "for": a.for_,
                        "labels": {"severity": a.severity, "service": t.name},
                        "annotations": {"summary": a.summary, "runbook": a.runbook},
                    }
                    for a in alerts(t)
                ],
            }
        ]
    }


def scrape_config(t: Target) -> dict[str, Any]:
    """The scrape job: pods annotated prometheus.io/scrape, with the ops token as bearer."""
    meta = "__meta_kubernetes_pod_"
    return {
        "scrape_configs": [
            {
                "job_name": t.name,
                "authorization": {
                    "type": "Bearer",
                    "credentials_file": f"/etc/prometheus/secrets/{t.token_secret}/ops-token",
                },
                "kubernetes_sd_configs": [{"role": "pod"}],
                "relabel_configs": [
                    {
                        "source_labels": [f"{meta}label_app_kubernetes_io_name"],
                        "regex": t.name,
                        "action": "keep",
                    },
                    {
                        "source_labels": [f"{meta}annotation_prometheus_io_scrape"],
                        "regex": "true",
                        "action": "keep",
                    },
                    {
                        "source_labels": [f"{meta}annotation_prometheus_io_path"],
                        "regex": "(.+)",
                        "target_label": "__metrics_path__",
                    },
                    {
                        "source_labels": ["__address__", f"{meta}annotation_prometheus_io_port"],
                        "regex": r"([^:]+)(?::\d+)?;(\d+)",
                        "replacement": "$1:$2",
                        "target_label": "__address__",
                    },
                    {"source_labels": [f"{meta}name"], "target_label": "pod"},
                ],
            }
        ]
    }


def _series(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}}"


def _annotations(alert: Alert, labels: dict[str, str]) -> dict[str, str]:
    summary = alert.summary
    for key, value in labels.items():
        summary = summary.replace("{{ $labels." + key + " }}", value)
    return {"summary": summary, "runbook": alert.runbook}


def rule_tests(t: Target) -> dict[str, Any]:
    """promtool unit tests: each alert fires on the series that should fire it, and a healthy
    service fires none."""
    by_name = {a.name: a for a in alerts(t)}
    base = {"job": t.name, "instance": "pod-a:8000"}
    http = {**base, "http_request_method": "GET", "http_route": "/quotes"}
    job = {**base, "job_name": "rates.refresh"}

    def fired(name: str, labels: dict[str, str]) -> dict[str, Any]:
        alert = by_name[name]
        exp = {"severity": alert.severity, "service": t.name, **labels}
        return {"exp_labels": exp, "exp_annotations": _annotations(alert, exp)}

    backup = {
        "series": _series("readykit_backup_last_success_timestamp_seconds",
                          {"job": "node", "instance": "host:9100", "repo": "/backups"}),
        "values": f"0x{(BACKUP_MAX_AGE_H + 3) * 60}",  # one sample a minute
    }  # fmt: skip
    failing = [
        {"series": _series("up", base), "values": "1 0x20"},
        {"series": _series("http_server_request_duration_seconds_count",
                           {**http, "http_response_status_code": "500"}), "values": "0+6x20"},
        {"series": _series("http_server_request_duration_seconds_count",
                           {**http, "http_response_status_code": "200"}), "values": "0+54x20"},
        {"series": _series("readykit_job_last_success_timestamp_seconds", job), "values": "0x20"},
        {"series": _series("readykit_job_interval_seconds", job), "values": "300x20"},
        {"series": _series("readykit_job_grace_seconds", job), "values": "60x20"},
        {"series": _series("readykit_job_failures_total", job), "values": "0 1x20"},
        {"series": _series("readykit_records_dropped_total", base), "values": "0 5x20"},
        backup,
    ]  # fmt: skip
    healthy = [
        {"series": _series("up", base), "values": "1x20"},
        {"series": _series("http_server_request_duration_seconds_count",
                           {**http, "http_response_status_code": "200"}), "values": "0+60x20"},
        {"series": _series("readykit_job_last_success_timestamp_seconds", job),
         "values": "0+60x20"},
        {"series": _series("readykit_job_interval_seconds", job), "values": "300x20"},
        {"series": _series("readykit_job_grace_seconds", job), "values": "60x20"},
        {"series": _series("readykit_job_failures_total", job), "values": "0x20"},
        {"series": _series("readykit_records_dropped_total", base), "values": "0x20"},
    ]  # fmt: skip
    at = "15m"
    return {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": failing,
                "alert_rule_test": [
                    {"eval_time": at, "alertname": "ReadykitTargetDown",
                     "exp_alerts": [fired("ReadykitTargetDown", base)]},
                    {"eval_time": at, "alertname": "ReadykitHighErrorRatio",
                     "exp_alerts": [fired("ReadykitHighErrorRatio", {})]},
                    {"eval_time": at, "alertname": "ReadykitJobLate",
                     "exp_alerts": [fired("ReadykitJobLate", {"job_name": "rates.refresh"})]},
                    {"eval_time": at, "alertname": "ReadykitJobFailing",
                     "exp_alerts": [fired("ReadykitJobFailing", {"job_name": "rates.refresh"})]},
                    {"eval_time": "5m", "alertname": "ReadykitRecordsDropped",
                     "exp_alerts": [fired("ReadykitRecordsDropped",
                                          {"instance": base["instance"]})]},
                    {"eval_time": at, "alertname": "ReadykitBackupTooOld",
                     "exp_alerts": []},  # 15 minutes after 1970: not 26 hours old yet
                ],
            },
            {
                "interval": "1m",
                "input_series": [backup],
                "alert_rule_test": [
                    {"eval_time": f"{BACKUP_MAX_AGE_H + 2}h", "alertname": "ReadykitBackupTooOld",
                     "exp_alerts": [fired("ReadykitBackupTooOld", {"repo": "/backups"})]},
                ],
            },
            {
                "interval": "1m",
                "input_series": healthy,
                "alert_rule_test": [
                    {"eval_time": at, "alertname": name, "exp_alerts": []} for name in by_name
                ],
            },
        ],
    }  # fmt: skip
