"""Our exposition against the real tools: promtool's linter and a real Prometheus server."""

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from readykit import ReadyKit, Settings
from readykit.serve import serve
from readykit.testing import asgi_request
from support import need_binary

pytestmark = pytest.mark.anyio


async def ok_app(scope, receive, send):  # type: ignore[no-untyped-def]
    scope["path_template"] = "/items/{item_id}"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def exposition(accept: str) -> bytes:
    kit = ReadyKit(Settings(ops_trust_loopback=True))
    kit.add_check("db", lambda: None)
    wrapped = kit.wrap(ok_app)
    for method in ("GET", "POST", "BREW"):
        await asgi_request(wrapped, method, "/items/1", body=b"abc")
    await asgi_request(wrapped, "GET", "/health/ready")
    resp = await asgi_request(wrapped, "GET", "/metrics", headers=[("Accept", accept)])
    return resp.body


async def test_openmetrics_exposition_parses_strictly() -> None:
    body = await exposition("application/openmetrics-text; version=1.0.0")
    families = {f.name: f for f in openmetrics_families(body.decode())}
    assert families["http_server_request_duration_seconds"].type == "histogram"
    assert families["readykit_health_check_status"].type == "gauge"


async def test_promtool_check_metrics_is_silent() -> None:
    promtool = need_binary("promtool")  # promtool lints the Prometheus text format (0.0.4)
    body = await exposition("text/plain")
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout == b""
    assert lint.stderr == b""


def get_json(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)  # type: ignore[no-any-return]


def test_real_prometheus_scrapes_the_demo_and_counts_requests(tmp_path: Path) -> None:
    prometheus = need_binary("prometheus")
    sent = 7
    demo = [sys.executable, "-m", "readykit.cli", "demo", "--port", "{port}"]
    token = "scrape-token-for-the-test"
    with serve(demo, cwd=tmp_path, env={"READYKIT_OPS_TOKEN": token}) as app:
        (tmp_path / "token").write_text(token)
        config = tmp_path / "prometheus.yml"
        config.write_text(  # Prometheus' standard bearer-token setting, as docs/security.md shows
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: demo\n"
            "    metrics_path: /metrics\n"
            f"    authorization: {{credentials_file: {tmp_path / 'token'}}}\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{app.port}']}}]\n"
        )
        argv = [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            "--web.listen-address=127.0.0.1:{port}",
        ]
        with serve(argv, cwd=tmp_path) as prom:
            for _ in range(sent):
                with urllib.request.urlopen(f"{app.url}/stats", timeout=5) as resp:
                    assert resp.status == 200
            query = (
                'sum(http_server_request_duration_seconds_count{job="demo",'
                'http_route="/stats",http_request_method="GET"})'
            )
            url = f"{prom.url}/api/v1/query?query={urllib.parse.quote(query)}"
            deadline = time.monotonic() + 60
            seen = None
            while time.monotonic() < deadline:  # bounded polling of a real server
                result = get_json(url)["data"]["result"]
                seen = float(result[0]["value"][1]) if result else None
                if seen == sent:
                    break
                time.sleep(0.5)
            targets = get_json(f"{prom.url}/api/v1/targets")["data"]["activeTargets"]
    assert seen == sent, f"Prometheus saw {seen}, targets: {targets}"
    assert targets[0]["health"] == "up"
