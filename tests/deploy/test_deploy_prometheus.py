"""Alert rules and the scrape job against the real tools: `promtool check rules`, `promtool
test rules` (the generated unit tests: each alert fires when it should, none on a healthy
service), and `promtool check config`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from readykit import Settings
from readykit.deploy import default_settings, render, write
from support import need_binary

SETTINGS = [default_settings(), Settings(service_name="quotes", slow_request_ms=250.0)]


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = need_binary("promtool")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("settings", SETTINGS, ids=["defaults", "quotes"])
def test_promtool_checks_and_unit_tests_the_rules(settings: Settings, tmp_path: Path) -> None:
    write(tmp_path, settings)
    rules_dir = tmp_path / "prometheus"
    checked = promtool("check", "rules", "alerts.yml", cwd=rules_dir)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 11 rules found" in checked.stdout
    tested = promtool("test", "rules", "alerts.test.yml", cwd=rules_dir)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_wrong_rule_fails_the_unit_tests(tmp_path: Path) -> None:
    write(tmp_path, default_settings())
    alerts = tmp_path / "prometheus" / "alerts.yml"
    alerts.write_text(alerts.read_text().replace("> 0.05", "> 0.5"))  # a broken threshold
    tested = promtool("test", "rules", "alerts.test.yml", cwd=alerts.parent)
    assert tested.returncode != 0
    assert "ReadykitHighErrorRatio" in tested.stdout + tested.stderr


def test_every_alert_has_a_runbook_and_a_summary() -> None:
    rules = yaml.safe_load(render(default_settings())["prometheus/alerts.yml"])
    [group] = rules["groups"]
    names = {r["alert"] for r in group["rules"]}
    assert names >= {
        "ReadykitHighErrorRatio", "ReadykitSlowRoute", "ReadykitNotReady",
        "ReadykitEventLoopStalls", "ReadykitJobLate", "ReadykitJobFailing",
        "ReadykitRecordsSpilling", "ReadykitRecordsDropped", "ReadykitBackupTooOld",
    }  # fmt: skip
    for rule in group["rules"]:
        assert len(rule["annotations"]["runbook"]) > 40, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")


def test_the_scrape_job_passes_promtool_check_config(tmp_path: Path) -> None:
    write(tmp_path, Settings(service_name="quotes"))
    scrape = yaml.safe_load((tmp_path / "prometheus" / "scrape.yml").read_text())
    [job] = scrape["scrape_configs"]
    assert job["job_name"] == "quotes"
    assert job["authorization"]["credentials_file"].endswith("/quotes-ops/ops-token")
    token = tmp_path / "ops-token"
    token.write_text("t")
    job["authorization"]["credentials_file"] = str(token)  # the Secret, mounted here
    config = {"rule_files": [str(tmp_path / "prometheus" / "alerts.yml")], **scrape}
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))
    checked = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    if "field kubernetes_sd_configs not found" in checked.stdout + checked.stderr:
        # Debian builds Prometheus without Kubernetes discovery: check the rest of the job
        job["static_configs"] = [{"targets": ["127.0.0.1:8000"]}]
        del job["kubernetes_sd_configs"]
        (tmp_path / "prometheus.yml").write_text(json.dumps(config))
        checked = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
