"""Every metric the alert rules and the dashboard use is one the kit exports (or, for backups,
the textfile `readykit backup` writes): no expression watches a name that never exists."""

from __future__ import annotations

import re

import yaml

from readykit import ReadyKit, Settings
from readykit.backup.textfile import METRICS as BACKUP_METRICS
from readykit.deploy import default_settings, render
from readykit.deploy.grafana import expressions
from readykit.deploy.options import DeployOptions, resolve

NAME = re.compile(r"\b((?:readykit|http_server)_[a-z_]+)")
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_every_metric_in_rules_and_dashboard_exists() -> None:
    settings = default_settings()
    rules = yaml.safe_load(render(settings)["prometheus/alerts.yml"])["groups"][0]["rules"]
    exprs = [r["expr"] for r in rules] + expressions(resolve(settings, DeployOptions()))
    used = {family(n) for e in exprs for n in NAME.findall(e)}
    kit = ReadyKit(Settings(configure_logging=False, rate_limits={"default": "5/minute"}))
    kit.jobs.add("rates.refresh", lambda: None, every="1h")
    exported = {m.name for m in kit.metrics.registry.collect()}
    exported |= {f"readykit_backup_{n}" for n, _ in BACKUP_METRICS}
    assert used - exported == set()
    assert {"readykit_job_last_success_timestamp_seconds", "readykit_event_loop_stalls",
            "readykit_records_dropped", "http_server_request_duration_seconds"} <= used  # fmt: skip


def test_a_stall_counts_in_the_stall_metric() -> None:
    kit = ReadyKit(Settings(configure_logging=False))
    assert kit.records is not None
    stalls = kit.records.stalls
    assert stalls.on_stall is not None
    stalls.on_stall({"kind": "stall"})  # what the watchdog thread calls for each stall
    stalls.on_stall({"kind": "stall"})
    assert kit.metrics.registry.get_sample_value("readykit_event_loop_stalls_total") == 2
