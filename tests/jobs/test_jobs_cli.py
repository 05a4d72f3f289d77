"""`readykit job ping` against a real server (the demo under uvicorn)."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from readykit.cli import cli
from readykit.serve import serve

TOKEN = "job-ping-token"


def test_job_ping_reports_runs_and_refusals_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    demo = [sys.executable, "-m", "readykit.cli", "demo", "--port", "{port}"]
    token = ["--token", TOKEN]
    with serve(demo, cwd=tmp_path, env={"READYKIT_OPS_TOKEN": TOKEN}) as app:
        refused = runner.invoke(cli, ["job", "ping", "rates.refresh", "--url", app.url])
        ok = runner.invoke(cli, ["job", "ping", "rates.refresh", "--url", app.url, *token])
        failed = runner.invoke(
            cli, ["job", "ping", "rates.refresh", "--url", app.url, "--status", "fail",
                  "--message", "upstream 503", *token],
        )  # fmt: skip
        unknown = runner.invoke(cli, ["job", "ping", "nope", "--url", app.url, *token])
        request = urllib.request.Request(
            f"{app.url}/ops/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            jobs = json.load(resp)["jobs"]
    unreachable = runner.invoke(cli, ["job", "ping", "x", "--url", "http://127.0.0.1:9"])
    assert refused.exit_code == 2  # no token: closed, like every ops endpoint
    assert "401" in refused.output
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("rates.refresh: run ")
    assert ok.output.endswith(" success\n")
    assert failed.exit_code == 0
    assert unknown.exit_code == 2
    assert "404" in unknown.output
    assert "'nope'" in unknown.output
    assert len(unknown.output.strip().splitlines()) == 1
    assert unreachable.exit_code == 3
    assert "cannot reach" in unreachable.output
    [job] = jobs
    assert [r["outcome"] for r in job["runs"][:2]] == ["failure", "success"]
    assert job["runs"][0]["error"] == "upstream 503"
