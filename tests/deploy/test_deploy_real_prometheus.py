"""A real Prometheus scrapes the demo with the generated alert rules loaded: every dashboard
and alert expression evaluates without error, and every rule evaluates healthy."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from readykit import Settings
from readykit.deploy import render
from readykit.deploy.grafana import expressions
from readykit.deploy.options import DeployOptions, resolve
from readykit.serve import serve
from support import need_binary

DEMO = "readykit-demo"  # the demo's service name: the scrape job's name, as deployed


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def query(prom: str, expr: str) -> tuple[int, dict[str, Any]]:
    return get_json(f"{prom}/api/v1/query?query={urllib.parse.quote(expr)}")


def poll(check: Any, what: str, seconds: float = 60) -> Any:
    """Bounded polling of a real server until `check()` is truthy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_every_dashboard_and_alert_expression_evaluates_on_a_real_prometheus(
    tmp_path: Path,
) -> None:
    prometheus = need_binary("prometheus")
    settings = Settings.model_construct(service_name=DEMO)
    files = render(settings)
    (tmp_path / "alerts.yml").write_text(files["prometheus/alerts.yml"])
    rules = yaml.safe_load(files["prometheus/alerts.yml"])["groups"][0]["rules"]
    dashboard = json.loads(files["grafana/dashboard.json"])
    panel_exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert panel_exprs == expressions(resolve(settings, DeployOptions()))
    demo = [sys.executable, "-m", "readykit.cli", "demo", "--port", "{port}"]
    token = "deploy-scrape-token"
    (tmp_path / "token").write_text(token)
    with serve(demo, cwd=tmp_path, env={"READYKIT_OPS_TOKEN": token}) as app:
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [alerts.yml]\n"
            "scrape_configs:\n"
            f"  - job_name: {DEMO}\n"
            f"    authorization: {{credentials_file: {tmp_path / 'token'}}}\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{app.port}']}}]\n"
        )
        argv = [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                "--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
        with serve(argv, cwd=tmp_path) as prom:
            for path in ("/health/ready", "/stats", "/rates", "/rates", "/nope"):
                with contextlib.suppress(urllib.error.HTTPError):  # a 404 is traffic too
                    urllib.request.urlopen(f"{app.url}{path}", timeout=5).close()
            ping = urllib.request.Request(
                f"{app.url}/ops/jobs/rates.refresh/ping",
                method="POST",
                headers={"Authorization": f"Bearer {token}"},
            )
            urllib.request.urlopen(ping, timeout=5).close()
            rate = f'sum(rate(http_server_request_duration_seconds_count{{job="{DEMO}"}}[5m]))'
            poll(lambda: query(prom.url, rate)[1]["data"]["result"], "two scrapes of the demo")
            for metric in ("readykit_job_last_success_timestamp_seconds",
                           "readykit_health_check_status"):  # fmt: skip
                poll(lambda m=metric: query(prom.url, m)[1]["data"]["result"], metric)

            def all_rules_evaluated() -> list[dict[str, Any]]:
                got = get_json(f"{prom.url}/api/v1/rules")[1]["data"]["groups"]
                evaluated = [r for g in got for r in g["rules"]
                             if not r["lastEvaluation"].startswith("0001")]  # fmt: skip
                return evaluated if len(evaluated) == len(rules) else []

            evaluated = poll(all_rules_evaluated, "every rule evaluated once")
            answers = {e: query(prom.url, e) for e in [*panel_exprs, *(r["expr"] for r in rules)]}
            broken = query(prom.url, "sum(rate(http_server_request_duration_seconds_count[5m]")
    errors = {e: body.get("error") for e, (status, body) in answers.items()
              if status != 200 or body["status"] != "success"}  # fmt: skip
    assert errors == {}
    assert broken[0] == 400  # a wrong expression does fail here: the check above is real
    assert {r["name"]: r["health"] for r in evaluated} == {r["alert"]: "ok" for r in rules}
    with_data = [e for e, (_, body) in answers.items() if body["data"]["result"]]
    assert any("http_route" in e for e in with_data)  # RED panels show the demo's traffic
    assert any("readykit_job_last_success" in e for e in with_data)
    assert any("readykit_health_check_status" in e for e in with_data)
